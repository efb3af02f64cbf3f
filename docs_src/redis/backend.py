from errorkit import RedisBackend, Timeouts

# the same store, with a command deadline of 100 ms and keys under billing:...
store = RedisBackend("redis://127.0.0.1:6379/0", timeout=0.1, prefix="billing")

# every deadline set (seconds): a number as timeout= is Timeouts(command=...), the others their defaults
patient = RedisBackend(
    "redis://127.0.0.1:6379/0",
    timeout=Timeouts(command=0.2, connect=2.0, dead_after=3.0, backoff=0.1, backoff_cap=5.0),
    prefix="billing",
)
