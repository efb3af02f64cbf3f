import os

bind = "0.0.0.0:8000"
workers = 4
worker_class = "uvicorn_worker.UvicornWorker"  # uvicorn inside gunicorn's process manager
graceful_timeout = 20  # seconds a worker has to finish its requests after SIGTERM


def child_exit(server, worker):
    """A worker exited: its values leave the metrics' live gauges (multiprocess mode only)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
