# errors and the traffic layer, for Starlette apps:
pip install errorkit
# with FastAPI, and uvicorn to serve it:
pip install "errorkit[fastapi]" "uvicorn[standard]"
