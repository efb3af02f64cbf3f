redis-server --daemonize yes   # in the background, on 127.0.0.1:6379
redis-cli ping                 # PONG
