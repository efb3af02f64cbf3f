pip install gunicorn uvicorn-worker
gunicorn app:app -c gunicorn.conf.py
