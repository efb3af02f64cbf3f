export REDIS_URL=redis://127.0.0.1:6379/0
errorkit store init      # --url URL instead of $REDIS_URL; --prefix P if the app sets RedisBackend(prefix=P)
errorkit store check     # exit 0: reachable and marked; exit 1 and one line saying why not
