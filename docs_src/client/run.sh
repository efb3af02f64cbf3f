# in the folder of shop_errors.py, shop_server.py and the clients:
uvicorn shop_server:app   # on http://127.0.0.1:8000
# in a second terminal, in the same folder:
python async_client.py
python sync_client.py
