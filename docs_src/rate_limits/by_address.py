from fastapi import FastAPI
from starlette.types import Scope

from errorkit import APIKeyAuth, ErrorKit, Principal, RateLimiter, TrustedProxies, backend_from_env

store = backend_from_env()
proxies = TrustedProxies(["10.0.0.0/8"])  # your load balancers: their X-Forwarded-For is believed


def client_address(scope: Scope, principal: Principal | None) -> str | None:
    """Every request by the address it comes from, with a key or without."""
    return "ip:" + proxies.client_address(scope)


app = FastAPI()


@app.get("/search")
async def search(q: str = "") -> dict[str, object]:
    return {"q": q, "results": []}


ErrorKit().install(
    app,
    auth=APIKeyAuth(store),
    rate_limit=RateLimiter(store, limits="60/minute", identity=client_address),
)
