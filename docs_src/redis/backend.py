from errorkit import RedisBackend

# the same store, with a command deadline of 100 ms and keys under billing:...
store = RedisBackend("redis://127.0.0.1:6379/0", timeout=0.1, prefix="billing")
