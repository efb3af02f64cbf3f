docker compose up -d --build
docker compose exec app errorkit keys issue --workspace ws_1 --plan free   # prints the key, once
curl localhost:8000/health
