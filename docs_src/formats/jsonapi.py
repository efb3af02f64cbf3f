from typing import Any

from fastapi import FastAPI

from errorkit import APIError, ErrorContext, ErrorKit, Format, ParsedBody


class JSONAPIFormat(Format):
    """JSON:API error objects: `{"errors": [{"status", "code", "title", "detail", "links", "meta"}]}`."""

    name = "jsonapi"
    media_type = "application/vnd.api+json"

    def render(self, error: APIError, context: ErrorContext) -> dict[str, Any]:
        item: dict[str, Any] = {
            "status": str(error.status),
            "code": error.code,
            "title": error.definition.title,
            "detail": error.message,
        }
        if context.doc_url is not None:
            item["links"] = {"about": context.doc_url}
        item["meta"] = {"details": error.details, "request_id": context.request_id}
        return {"errors": [item]}

    def schema(self) -> dict[str, Any]:
        text = {"type": "string"}
        item = {
            "type": "object",
            "required": ["status", "code", "title", "detail"],
            "properties": {
                "status": text,
                "code": text,
                "title": text,
                "detail": text,
                "links": {"type": "object", "properties": {"about": text}},
                "meta": {"type": "object", "properties": {"details": {"type": "object"}, "request_id": text}},
            },
        }
        return {"type": "object", "required": ["errors"], "properties": {"errors": {"type": "array", "items": item}}}

    def parse(self, body: Any) -> ParsedBody | None:
        """Read a body back (for errorkit.client); None when it is not one of ours. Never raises."""
        errors = body.get("errors") if isinstance(body, dict) else None
        if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
            return None
        item = errors[0]
        meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
        links = item.get("links") if isinstance(item.get("links"), dict) else {}
        details = meta.get("details")
        return ParsedBody(
            code=_text(item.get("code")),
            message=_text(item.get("detail")),
            details=dict(details) if isinstance(details, dict) else {},
            request_id=_text(meta.get("request_id")),
            doc_url=_text(links.get("about")),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


kit = ErrorKit(format=JSONAPIFormat(), doc_url="https://docs.example.com/errors/{code}")
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
