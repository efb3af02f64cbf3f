from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

import errorkit

kit = errorkit.ErrorKit(format="envelope", doc_url="https://docs.example.com/errors/{code}")


class LockedDetails(BaseModel):
    campaign_id: str = Field(examples=["c_42"])
    status: str = Field(examples=["completed"])


CampaignLocked = kit.define(
    "campaign_locked",
    status=409,
    message="Campaign {campaign_id} is {status}: it cannot be started again",
    details=LockedDetails,
)
kit.define("campaign_not_found", status=404, message="No campaign {campaign_id}", details={"campaign_id": str})


@errorkit.raises("campaign_not_found")  # every route using this dependency can answer it
async def campaign(campaign_id: str) -> str:
    return campaign_id


app = FastAPI(title="Campaigns", version="1")


@app.post("/campaigns/{campaign_id}/start")
@errorkit.raises(CampaignLocked)  # by class or by code, under the route decorator
async def start(campaign_id: str = Depends(campaign)) -> dict[str, str]:
    return {"campaign_id": campaign_id, "status": "running"}


kit.install(app)
