from starlette.applications import Starlette

from errorkit import ErrorKit

kit = ErrorKit(doc_url="https://docs.example.com/errors/{code}")
kit.define(
    "campaign_locked",
    status=409,
    message="The campaign cannot change while it runs.",
    when="A lifecycle action is not valid for the campaign's current status.",
    fix="Wait for the campaign to finish, or stop it first.",
)

app = Starlette()
kit.install(app)
