from fastapi import FastAPI

from errorkit import APIKeyAuth, ErrorKit, Quotas, RateLimiter, backend_from_env

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


@app.post("/widgets", status_code=201)
async def create_widget() -> dict[str, str]:
    return {"id": "w_1"}


@app.delete("/widgets/{widget_id}", status_code=204)
async def delete_widget(widget_id: str) -> None:
    return None


store = backend_from_env()
ErrorKit().install(
    app,
    auth=APIKeyAuth(store, public_paths=["/health", "/docs*", "/openapi.json"]),
    rate_limit=RateLimiter(store, limits="100/minute", routes={"POST /widgetz": "5/minute"}),  # a typo
    quotas=Quotas(
        store,
        limits={"widgets": {"free": 3}},
        creates={"POST /widgets": "widgets"},
        deletes={"DELETE /widgets/{widget_id}": "widgets"},
    ),
)
