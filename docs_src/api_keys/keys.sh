export REDIS_URL=redis://127.0.0.1:6379/0
TOKEN=$(errorkit keys issue --workspace ws_1 --scope campaigns:write --plan Growth --expires 30d)
READER=$(errorkit keys issue --workspace ws_1 --scope campaigns:read)  # a second key, read-only
errorkit keys list --workspace ws_1
