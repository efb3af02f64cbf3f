from fastapi import FastAPI

import errorkit
from errorkit import MemoryBackend, RateLimiter

kit = errorkit.ErrorKit(format="envelope", doc_url="https://docs.example.com/errors/{code}")

# errorkit's own 429, defined by the app: this definition wins over errorkit's
kit.define(
    "rate_limit_exceeded",
    status=429,
    message="Slow down: try again in {retry_after_seconds} s.",
    when="The workspace sent more requests than its plan allows.",
    fix="Wait retry_after_seconds, or move to a plan with a higher limit.",
    details={"retry_after_seconds": int},  # the limiter's `limit` is not declared: it is not sent
)

store = MemoryBackend()
app = FastAPI()


@app.get("/reports")
async def reports() -> list[str]:
    return []


kit.install(app, rate_limit=RateLimiter(store, limits="2/minute"))
