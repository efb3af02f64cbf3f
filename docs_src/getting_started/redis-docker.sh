docker run -d -p 6379:6379 redis:7   # on 127.0.0.1:6379
