import itertools

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

import errorkit
from errorkit import APIKeyAuth, ErrorKit, Quotas

store = errorkit.backend_from_env()  # REDIS_URL: redis://127.0.0.1:6379/0, or memory:// for one process
kit = ErrorKit(format="envelope")
app = FastAPI()
widgets: dict[str, str] = {}  # widget id -> name: your database
widget_ids = itertools.count(1)


class Widget(BaseModel):
    name: str


@app.post("/widgets", status_code=201)
async def create_widget(widget: Widget) -> dict[str, str]:
    widget_id = f"w_{next(widget_ids)}"
    widgets[widget_id] = widget.name
    return {"id": widget_id, "name": widget.name}


@app.delete("/widgets/{widget_id}", status_code=204)
async def delete_widget(widget_id: str) -> None:
    if widgets.pop(widget_id, None) is None:
        raise HTTPException(404)  # 2xx only when a widget was removed: a 2xx gives a unit back


quotas = Quotas(
    store,
    limits={"widgets": {"free": 3, "pro": 1000, "enterprise": None}},  # quota group -> plan -> maximum
    creates={"POST /widgets": "widgets"},  # holds a unit while the creation runs
    deletes={"DELETE /widgets/{widget_id}": "widgets"},  # gives one back on a 2xx
)
kit.install(app, auth=APIKeyAuth(store), quotas=quotas)
