sudo apt-get install redis-server   # Debian and Ubuntu: installs Redis and starts it, on 127.0.0.1:6379
redis-cli ping                      # PONG: Redis answers
