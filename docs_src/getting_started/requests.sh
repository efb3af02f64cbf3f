# --8<-- [start:create]
curl -i -X POST localhost:8000/widgets \
     -H "X-API-Key: $KEY" -H "Idempotency-Key: w-1" \
     -H "content-type: application/json" -d '{"name": "first"}'
# --8<-- [end:create]
# --8<-- [start:no_key]
curl -i -X POST localhost:8000/widgets \
     -H "content-type: application/json" -d '{"name": "first"}'
# --8<-- [end:no_key]
# --8<-- [start:health]
curl -i localhost:8000/health
# --8<-- [end:health]
# --8<-- [start:replay]
curl -i -X POST localhost:8000/widgets \
     -H "X-API-Key: $KEY" -H "Idempotency-Key: w-1" \
     -H "content-type: application/json" -d '{"name": "first"}'
# --8<-- [end:replay]
# --8<-- [start:more]
curl -i -X POST localhost:8000/widgets \
     -H "X-API-Key: $KEY" -H "Idempotency-Key: w-2" \
     -H "content-type: application/json" -d '{"name": "second"}'
curl -i -X POST localhost:8000/widgets \
     -H "X-API-Key: $KEY" -H "Idempotency-Key: w-3" \
     -H "content-type: application/json" -d '{"name": "third"}'
# --8<-- [end:more]
# --8<-- [start:quota]
curl -i -X POST localhost:8000/widgets \
     -H "X-API-Key: $KEY" -H "Idempotency-Key: w-4" \
     -H "content-type: application/json" -d '{"name": "fourth"}'
# --8<-- [end:quota]
# --8<-- [start:rate_limit]
curl -i -X POST localhost:8000/widgets \
     -H "X-API-Key: $KEY" -H "Idempotency-Key: w-5" \
     -H "content-type: application/json" -d '{"name": "fifth"}'
# --8<-- [end:rate_limit]
