-- POST /objects without a key (the bare baseline)
wrk.method = "POST"
wrk.body = '{"name": "widget", "size": 3}'
wrk.headers["Content-Type"] = "application/json"
