from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import errorkit

kit = errorkit.ErrorKit(format="envelope")
app = FastAPI()


@app.get("/campaigns/{campaign_id}")
async def campaign(campaign_id: str) -> dict[str, str]:
    return {"campaign_id": campaign_id}


def custom_openapi() -> dict:
    if app.openapi_schema is None:
        app.openapi_schema = get_openapi(title="Campaigns", version="2.1", routes=app.routes)
        app.openapi_schema["info"]["x-logo"] = {"url": "https://example.com/logo.png"}
    return app.openapi_schema


app.openapi = custom_openapi  # before install(), which wraps it
kit.install(app)
