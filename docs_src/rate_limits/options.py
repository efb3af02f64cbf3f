from fastapi import FastAPI

import errorkit
from errorkit import APIKeyAuth, ErrorKit, RateLimiter

store = errorkit.backend_from_env()
app = FastAPI()


@app.get("/reports")
async def list_reports() -> list[str]:
    return ["r_1"]


@app.post("/reports", status_code=202)
@errorkit.limit("10/minute", cost=5)  # each report weighs 5 of the 10: two a minute
async def create_report() -> dict[str, str]:
    return {"report": "queued"}


limiter = RateLimiter(
    store,
    limits="100/minute",
    algorithm="fixed",  # calendar windows instead of GCRA
    ietf_headers=True,  # also the draft RateLimit and RateLimit-Policy fields
)
ErrorKit(format="envelope").install(app, auth=APIKeyAuth(store), rate_limit=limiter)
