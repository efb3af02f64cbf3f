export REDIS_URL=memory://
uvicorn widgets:app
