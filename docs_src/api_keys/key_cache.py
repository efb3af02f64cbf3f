from errorkit import APIKeyAuth, KeyCache, backend_from_env

store = backend_from_env()
# no change feed: a record is reused for 5 s (a revocation takes up to 5 s in each worker)
auth = APIKeyAuth(store, cache=KeyCache(ttl=5.0, track=False))
