curl -i -X POST localhost:8000/workspaces/ws_1/campaigns -H "X-API-Key: $TOKEN"
curl -i -X POST localhost:8000/workspaces/ws_1/campaigns -H "Authorization: Bearer $TOKEN"
