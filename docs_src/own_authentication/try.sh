export REDIS_URL=redis://127.0.0.1:6379/0
errorkit store init  # once per Redis: mark it as holding errorkit's data
TOKEN=$(python mint.py alice --tenant acme --plan Free --scope widgets:write)
curl -i localhost:8000/whoami -H "Authorization: Bearer $TOKEN"
curl -i -X POST localhost:8000/widgets -H "Authorization: Bearer $TOKEN" -H "Idempotency-Key: w-1"
