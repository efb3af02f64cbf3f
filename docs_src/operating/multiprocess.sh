export PROMETHEUS_MULTIPROC_DIR=/tmp/errorkit-metrics
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"   # empty at each start
uvicorn metrics:app --workers 2
