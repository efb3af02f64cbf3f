# AUTH and in-transit encryption (port 6378): the instance's server CA, downloaded to a file
export REDIS_URL='rediss://:my-auth-string@10.0.0.3:6378/0?ssl_ca_certs=/etc/memorystore/server-ca.pem'
