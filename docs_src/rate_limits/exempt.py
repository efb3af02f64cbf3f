from fastapi import FastAPI

from errorkit import ErrorKit, RateLimiter, backend_from_env

store = backend_from_env()
app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/status")
async def status() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/status")
async def report(note: str = "") -> dict[str, str]:
    return {"note": note}


@app.post("/webhooks/{provider}")
async def webhook(provider: str) -> dict[str, str]:
    return {"received": provider}


limiter = RateLimiter(
    store,
    limits="10/second",
    routes={"GET /status": None},  # a route (its template), one method: POST /status stays limited
    exempt=["/health", "/webhooks/*"],  # paths: exact, or a prefix ending in *; replaces ("/health",)
)
ErrorKit().install(app, rate_limit=limiter)
