from fastapi import FastAPI
from pydantic import BaseModel

import errorkit
from errorkit import APIKeyAuth, ErrorKit, RateLimiter, ReferencePage

store = errorkit.backend_from_env()  # REDIS_URL, e.g. redis://127.0.0.1:6379/0
kit = ErrorKit(format="problem", doc_url="https://api.example.com/errors/{code}")  # where /errors is mounted
kit.define(
    "widget_not_found",
    status=404,
    message="No widget {widget_id}.",
    when="No widget of your workspace has this id.",
    fix="Check the id; GET /widgets lists your widgets.",
    details={"widget_id": str},
)
app = FastAPI()
WIDGETS = {"w_1": "first"}


class Widget(BaseModel):
    name: str


@app.get("/widgets")
async def list_widgets() -> list[Widget]:
    return [Widget(name=name) for name in WIDGETS.values()]


@app.post("/widgets", status_code=201)
async def create_widget(widget: Widget) -> Widget:
    return widget


@app.get("/widgets/{widget_id}")
@errorkit.raises("widget_not_found")  # the page (and /openapi.json) name this route for the code
async def read_widget(widget_id: str) -> Widget:
    if widget_id not in WIDGETS:
        raise kit.error("widget_not_found", widget_id=widget_id)
    return Widget(name=WIDGETS[widget_id])


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


page = ReferencePage(
    title="Widgets API errors",
    intro=["Send your API key in the X-API-Key header. Every error body is application/problem+json."],
)
app.mount("/errors", kit.reference_app(page))  # /errors/: this app's page; /errors/{code}: one code's
kit.install(
    app,
    auth=APIKeyAuth(store, public_paths=["/health", "/errors*", "/docs*", "/openapi.json", "/redoc"]),
    rate_limit=RateLimiter(store, limits="100/minute"),
)
