sudo apt-get install redis-server   # Debian and Ubuntu
redis-server --daemonize yes        # on 127.0.0.1:6379
