# the clients: errorkit, with httpx (async_client.py) and requests (sync_client.py)
pip install errorkit httpx requests
# the server (shop_server.py): FastAPI, and uvicorn to serve it
pip install "errorkit[fastapi]" "uvicorn[standard]"
