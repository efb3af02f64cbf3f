from fastapi import FastAPI

import errorkit

kit = errorkit.ErrorKit(
    format="envelope",
    doc_url="https://docs.example.com/errors/{code}",
)

# an error of your API: code, status, message, documentation, details
SynthesisPending = kit.define(
    "synthesis_pending",
    status=409,
    message="Campaign {campaign_id} hasn't completed synthesis yet",
    when="The campaign is still synthesizing.",
    fix="Wait for the campaign to finish.",
    details={"campaign_id": str},
)

app = FastAPI()
# from here on, every error of the app leaves in the envelope format
kit.install(app)


@app.post("/campaigns/{campaign_id}/report")
async def report(campaign_id: str) -> None:
    raise SynthesisPending(campaign_id=campaign_id)
