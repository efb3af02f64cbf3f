errorkit store check                 # a new Redis: not marked yet (exit 1)
errorkit store init
errorkit store check
redis-cli -u "$REDIS_URL" FLUSHALL   # errorkit's data is gone...
errorkit store check                 # ...and the check says so (exit 1)
errorkit store init                  # adopt this Redis as it is
errorkit store check --url memory://
