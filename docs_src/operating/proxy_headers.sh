# either: uvicorn rewrites the client address from your load balancers' X-Forwarded-For
uvicorn app:app --forwarded-allow-ips 10.0.0.5,10.0.0.6
# or: uvicorn leaves it, and errorkit reads X-Forwarded-For from the trusted_proxies= networks
uvicorn proxies:app --no-proxy-headers
