pytest -q                                         # in memory: the Redis test is skipped
REDIS_URL=redis://127.0.0.1:6379/15 pytest -q     # the same tests, and the one on a real Redis
