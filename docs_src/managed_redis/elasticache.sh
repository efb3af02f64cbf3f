# cluster mode disabled: the primary endpoint, in-transit encryption, the AUTH token as the password
export REDIS_URL='rediss://:my-auth-token@master.orders.abc123.use1.cache.amazonaws.com:6379/0'
# with role-based access control (RBAC): a user and its password
export REDIS_URL='rediss://orders-app:my-password@master.orders.abc123.use1.cache.amazonaws.com:6379/0'
# cluster mode enabled: the configuration endpoint, as the seed node of a Redis Cluster
export REDIS_URL='rediss+cluster://:my-auth-token@clustercfg.orders.abc123.use1.cache.amazonaws.com:6379'
