from fastapi import FastAPI
from pydantic import BaseModel

from errorkit import ErrorKit


class Campaign(BaseModel):
    name: str
    budget: int


def make_app(format: str) -> FastAPI:
    kit = ErrorKit(format=format, doc_url="https://docs.example.com/errors/{code}")
    SynthesisPending = kit.define(
        "synthesis_pending",
        status=409,
        message="Campaign {campaign_id} hasn't completed synthesis yet",
        details={"campaign_id": str},
    )
    app = FastAPI()
    kit.install(app)

    @app.get("/campaigns/{campaign_id}/report")
    async def report(campaign_id: str):
        raise SynthesisPending(campaign_id=campaign_id)

    @app.post("/campaigns", status_code=201)
    async def create(campaign: Campaign) -> Campaign:
        return campaign

    return app


detail_app = make_app("detail")  # uvicorn app:detail_app
envelope_app = make_app("envelope")
problem_app = make_app("problem")
