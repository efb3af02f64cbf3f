# the endpoint and password of the database's page: TLS, the user "default"
export REDIS_URL='rediss://default:my-password@eu1-example-12345.upstash.io:6379'
