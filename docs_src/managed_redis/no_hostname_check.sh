# nodes announced by an address their certificate does not name: the chain checked, not the name
export REDIS_URL='rediss+cluster://:my-auth-token@clustercfg.orders.abc123.use1.cache.amazonaws.com:6379?ssl_check_hostname=false'
