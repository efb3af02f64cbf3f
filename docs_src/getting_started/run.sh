# where app.py and the errorkit command find Redis:
export REDIS_URL=redis://127.0.0.1:6379/0
# a new key of workspace ws_1, on the free plan (shown once):
KEY=$(errorkit keys issue --workspace ws_1 --plan free)
# the server, in the background of this shell:
uvicorn app:app --workers 4 &
