"""guides/formats.md: the same error and the same validation failure answered by each format, and the custom format."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from errorkit import ErrorKit, ParsedBody, catalogs
from errorkit.client import error_from_response
from tests.docs.support import check_exchange, exchanges, load

PAGE = "guides/formats.md"
FORMATS = ("detail", "envelope", "problem")


@pytest.fixture(scope="module")
def apps() -> dict[str, Any]:
    module = load("formats/app.py")
    return {format: module[f"{format}_app"] for format in FORMATS}


def test_the_same_error_in_each_format(apps: dict[str, Any]) -> None:
    shown = exchanges(PAGE, "GET /campaigns/c_1/report HTTP/1.1")
    assert len(shown) == 4  # the three tabs, then the custom format
    for format, exchange in zip(FORMATS, shown, strict=False):
        with TestClient(apps[format]) as client:
            check_exchange(exchange, client)  # (the body's request id is the X-Request-ID header's)


def test_validation_in_each_format(apps: dict[str, Any]) -> None:
    shown = exchanges(PAGE, "POST /campaigns HTTP/1.1")
    assert len(shown) == 3
    for format, exchange in zip(FORMATS, shown, strict=True):
        with TestClient(apps[format]) as client:
            check_exchange(exchange, client)
            created = client.post("/campaigns", json={"name": "Spring launch", "budget": 100})
            assert (created.status_code, created.json()) == (201, {"name": "Spring launch", "budget": 100})


def test_parameters_and_malformed_json_in_each_format() -> None:
    expected = {
        "detail": ((422, None), (400, "invalid_json")),
        "envelope": ((400, "invalid_request_parameters"), (400, "invalid_request_body")),
        "problem": ((422, "validation_error"), (400, "invalid_json")),
    }
    from fastapi import FastAPI, Query

    for format, (parameters, malformed) in expected.items():
        app = FastAPI()
        ErrorKit(format=format).install(app)

        @app.post("/campaigns")
        async def create(campaign: dict[str, int], limit: int = Query(1)) -> None: ...

        with TestClient(app) as client:
            for response, (status, code) in (
                (client.post("/campaigns?limit=x", json={}), parameters),
                (client.post("/campaigns", content=b"{", headers={"content-type": "application/json"}), malformed),
            ):
                body = response.json()
                got = body["error"]["code"] if format == "envelope" else body.get("code")
                assert (response.status_code, got) == (status, code), format
                if format == "envelope" and code == "invalid_request_body":
                    assert body["error"]["details"]["issues"][0]["type"] == "json_invalid"


def test_default_formats() -> None:
    assert ErrorKit().format.name == "detail"
    assert ErrorKit(catalog=catalogs.DETAIL_API).format.name == "detail"
    assert ErrorKit(catalog=catalogs.ENVELOPE_API).format.name == "envelope"
    assert ErrorKit(catalog=catalogs.ENVELOPE_API, format="problem").format.name == "problem"


def test_problem_without_doc_url_is_about_blank() -> None:
    from fastapi import FastAPI

    app = FastAPI()
    kit = ErrorKit(format="problem")
    Pending = kit.define("synthesis_pending", status=409, message="Pending")
    kit.install(app)

    @app.get("/pending")
    async def pending() -> None:
        raise Pending()

    with TestClient(app) as client:
        response = client.get("/pending")
    assert response.json() == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "Pending",
        "instance": "/pending",
        "code": "synthesis_pending",
        "request_id": response.headers["x-request-id"],
    }


def test_a_format_of_your_own() -> None:
    module = load("formats/jsonapi.py")
    (_, _, _, exchange) = exchanges(PAGE, "GET /campaigns/c_1/report HTTP/1.1")
    format = module["JSONAPIFormat"]()
    with TestClient(module["app"]) as client:
        response = check_exchange(exchange, client)
        document = client.get("/openapi.json").json()
        missing = client.get("/nowhere")
    assert document["components"]["schemas"]["Error"] == format.schema()
    assert missing.json()["errors"][0]["code"] == "not_found"
    assert missing.headers["content-type"] == "application/vnd.api+json"

    # read back by the client parser
    error = error_from_response(response, module["kit"].registry, format=format)
    assert type(error) is module["SynthesisPending"]
    assert (error.message, error.details, error.request_id) == (
        "Campaign c_1 hasn't completed synthesis yet",
        {"campaign_id": "c_1"},
        response.headers["x-request-id"],
    )
    assert format.parse(response.json()) == ParsedBody(
        "synthesis_pending",
        "Campaign c_1 hasn't completed synthesis yet",
        {"campaign_id": "c_1"},
        response.headers["x-request-id"],
        "https://docs.example.com/errors/synthesis_pending",
    )
    for junk in (None, [], {"errors": []}, {"errors": ["x"]}, {"errors": [{"meta": 3, "links": []}]}, {"detail": "x"}):
        parsed = format.parse(junk)
        assert parsed is None or parsed == ParsedBody(None, None, {}, None, None), junk


def test_a_format_of_your_own_answers_validation_with_the_default() -> None:
    module = load("formats/jsonapi.py")
    from fastapi import FastAPI

    app = FastAPI()
    ErrorKit(format=module["JSONAPIFormat"]()).install(app)

    @app.get("/items")
    async def items(limit: int) -> None: ...

    with TestClient(app) as client:
        (item,) = client.get("/items?limit=x").json()["errors"]
    assert (item["status"], item["code"]) == ("422", "validation_error")
    assert item["meta"]["details"]["issues"][0]["loc"] == ["query", "limit"]


def test_render_reads_the_definition_of_the_errors_class() -> None:
    """`error.definition` is the class's: the ErrorDefinition `kit.define()` made, its title the rendered one."""
    from errorkit import ErrorContext, ErrorDefinition

    module = load("formats/jsonapi.py")
    error = module["SynthesisPending"](campaign_id="c_1")
    assert isinstance(error.definition, ErrorDefinition) and error.definition is module["SynthesisPending"].definition
    assert (error.definition.code, error.definition.title, error.definition.status) == (
        "synthesis_pending",
        "Synthesis pending",
        409,
    )
    context = ErrorContext(request_id="r-1", path="/campaigns/c_1/report", doc_url=None)
    (item,) = module["JSONAPIFormat"]().render(error, context)["errors"]
    assert item["title"] == error.definition.title and "links" not in item
