uvicorn minimal:app   # on http://127.0.0.1:8000
# in a second terminal:
curl -i -X POST localhost:8000/campaigns/c_1/report
