from fastapi import FastAPI
from pydantic import BaseModel

import errorkit
from errorkit import APIKeyAuth, ErrorKit, Idempotency, Quotas, RateLimiter

# REDIS_URL names the store: redis://127.0.0.1:6379/0, or memory://
store = errorkit.backend_from_env()
kit = ErrorKit(format="envelope")
app = FastAPI()


class Widget(BaseModel):
    name: str


@app.post("/widgets", status_code=201)
@errorkit.limit("5/minute")  # beside the route, under its decorator
async def create_widget(widget: Widget) -> Widget:
    return widget


@app.get("/health")  # public: no key needed, never rate limited
async def health() -> dict[str, str]:
    return {"status": "ok"}


kit.install(
    app,
    auth=APIKeyAuth(store),
    # every other route: 100 requests a minute per workspace
    rate_limit=RateLimiter(store, limits="100/minute"),
    idempotency=Idempotency(store),
    quotas=Quotas(
        store,
        limits={"widgets": {"free": 3, "pro": 1000}},
        creates={"POST /widgets": "widgets"},
    ),
    # start-up fails, naming the URL and why, if Redis cannot be reached
    check_stores=True,
)
