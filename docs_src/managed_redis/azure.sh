# Azure Cache for Redis: TLS on port 6380, an access key as the password ("/" in it written %2F)
export REDIS_URL='rediss://:abc%2Fdef+ghi=@orders.redis.cache.windows.net:6380/0'
