redis-server --appendonly yes --maxmemory-policy noeviction
