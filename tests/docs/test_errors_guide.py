"""guides/errors.md: every snippet of docs_src/errors/ run, every response and output the page shows checked.

An ```http block holds the request a reader sends and the response it gets; the test sends that very
request and compares the answer (`check_exchange` of tests/docs/support.py).
"""

import json
import logging
import re
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.responses import StreamingResponse

import errorkit
from errorkit import catalogs
from errorkit.catalogs.traffic import STAGE_CODES
from tests.docs.support import assert_lines, check_exchange, exchange, fence_starting, load, section

PAGE = "guides/errors.md"


# -- the page ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_module() -> dict[str, Any]:
    return load("errors/app.py")


@pytest.fixture(scope="module")
def client(app_module: dict[str, Any]) -> Any:
    with TestClient(app_module["app"]) as client:
        yield client


def test_raised_by_class(client: TestClient) -> None:
    check_exchange(exchange(PAGE, "GET /campaigns/c_1/report HTTP/1.1"), client)


def test_raised_by_code(client: TestClient) -> None:
    check_exchange(exchange(PAGE, "POST /campaigns HTTP/1.1"), client)


def test_retry_after_and_headers_given_when_raised(client: TestClient) -> None:
    check_exchange(exchange(PAGE, "GET /completions HTTP/1.1"), client)


def test_the_definition_gives_retry_after_unless_the_raise_does(app_module: dict[str, Any]) -> None:
    overloaded = app_module["ProviderOverloaded"](provider="openai")
    assert overloaded.retry_after == 30
    assert overloaded.message == "openai is overloaded."  # the optional region, not given, is left out
    assert overloaded.details == {"provider": "openai"}
    assert app_module["ProviderOverloaded"](provider="openai", region="eu").details == {
        "provider": "openai",
        "region": "eu",
    }
    assert app_module["ProviderOverloaded"].definition.retryable is True
    assert app_module["SynthesisPending"].definition.retryable is False


def test_a_retry_after_seconds_detail_sets_retry_after() -> None:
    kit = errorkit.ErrorKit()
    Busy = kit.define("busy", status=429, message="Busy", details={"retry_after_seconds": float})
    assert Busy(retry_after_seconds=2.2).retry_after == 3  # rounded up
    NotRetryable = kit.define("nope", status=409, message="No", retry_after=5)
    assert NotRetryable().retry_after is None  # a delay only for a retryable error...
    assert NotRetryable(retry_after=5).retry_after == 5  # ...unless given when raised


def test_catching_by_class(app_module: dict[str, Any]) -> None:
    kit = app_module["kit"]
    with pytest.raises(app_module["SynthesisPending"]):
        raise kit.error("synthesis_pending", campaign_id="c_1")
    error = app_module["SynthesisPending"](campaign_id="c_1", message="Still working on c_1")
    assert (error.code, error.status, error.message, error.details) == (
        "synthesis_pending",
        409,
        "Still working on c_1",
        {"campaign_id": "c_1"},
    )
    assert isinstance(error, errorkit.APIError) and isinstance(error, errorkit.ErrorkitError)


def test_reserved_names_cannot_be_details() -> None:
    with pytest.raises(ValueError, match="cannot be detail names"):
        errorkit.ErrorKit().define("x", status=400, message="x", details={"message": str})
    with pytest.raises(ValueError, match=r"message refers to \{campaign\}"):
        errorkit.ErrorKit().define("x", status=400, message="{campaign}", details={"campaign_id": str})
    with pytest.raises(ValueError, match="snake_case"):
        errorkit.ErrorKit().define("Quota-Exceeded", status=400, message="x")
    with pytest.raises(ValueError, match="400-599"):
        errorkit.ErrorKit().define("moved", status=301, message="x")


def test_http_exception_keeps_its_message(client: TestClient) -> None:
    check_exchange(exchange(PAGE, "GET /campaigns/c_9 HTTP/1.1"), client)


def test_a_crash_of_a_post_says_not_to_retry(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="errorkit"):
        check_exchange(exchange(PAGE, "POST /campaigns/c_1/export HTTP/1.1"), client)
    (record,) = caplog.records  # logged once
    assert record.name == "errorkit" and record.exc_info is not None
    # with an Idempotency-Key, a retry is safe: the same 500 says true
    response = client.post("/campaigns/c_1/export", headers={"Idempotency-Key": "k-1"})
    assert (response.status_code, response.headers["x-should-retry"]) == (500, "true")
    # a 503 is never an answer to work done: true even for a POST without a key (ProviderOverloaded)
    assert "db:5432" not in response.text


def test_mistakes_print_what_the_page_shows(capsys: pytest.CaptureFixture[str]) -> None:
    load("errors/mistakes.py")
    assert_lines(fence_starting(PAGE, "text", "invalid details"), capsys.readouterr().out)


def test_the_same_definition_twice_is_fine() -> None:
    kit = errorkit.ErrorKit()
    fields: dict[str, Any] = {"status": 409, "message": "Locked", "details": {"campaign_id": str}}
    assert kit.define("campaign_locked", **fields) is kit.define("campaign_locked", **fields)


def test_composed_catalogs() -> None:
    module = load("errors/composing.py")
    kit, shop = module["kit"], module["shop"]
    assert {"card_declined", "address_undeliverable", "not_found", "validation_error"} <= set(kit.registry._classes)
    assert set(shop._classes) == set(kit.registry._classes)
    assert kit.format.name == "problem"
    app = FastAPI()
    kit.install(app)

    @app.post("/pay")
    async def pay() -> None:
        raise module["CardDeclined"](decline_code="insufficient_funds")

    with TestClient(app) as client:
        check_exchange(exchange(PAGE, "POST /pay HTTP/1.1"), client)
    with pytest.raises(errorkit.DuplicateCode):
        errorkit.Registry("other", include=[module["billing"]]).define("card_declined", status=400, message="No")


def test_built_in_catalogs() -> None:
    module = load("errors/builtin.py")
    assert (module["detail_kit"].format.name, module["detail_kit"].doc_url) == ("detail", None)
    assert (module["envelope_kit"].format.name, module["envelope_kit"].doc_url) == (
        "envelope",
        "https://docs.orq.ai/errors/{code}",
    )
    assert "synthesis_pending" in module["detail_kit"].registry and "quota_exceeded" in module["envelope_kit"].registry
    assert (module["problem_kit"].format.name, len(module["problem_kit"].registry)) == (
        "problem",
        len(catalogs.GENERIC),
    )
    assert errorkit.ErrorKit().format.name == "detail"  # generic's format


def test_a_doc_url_template_names_the_code() -> None:
    with pytest.raises(ValueError, match="must contain"):
        errorkit.ErrorKit(doc_url="https://docs.example.com/errors")
    kit = errorkit.ErrorKit(doc_url="https://docs.example.com/errors/{code}")
    own = kit.define("moved_on", status=410, message="Gone", doc_url="https://example.com/moved")
    assert kit.doc_url_for(own.definition) == "https://example.com/moved"
    assert kit.doc_url_for(kit.registry["not_found"].definition) == "https://docs.example.com/errors/not_found"


# -- what every failure becomes, format by format (the table) -----------------------------------


class Campaign(BaseModel):
    name: str


TABLE = {  # failure: (detail, envelope, problem): status and code (None: the `{"detail": [...]}` array)
    "registry": ((402, "quota_exceeded"), (402, "quota_exceeded"), (402, "quota_exceeded")),
    "http_exception": ((409, "conflict"), (409, "conflict"), (409, "conflict")),
    "body": ((422, None), (400, "invalid_request_body"), (422, "validation_error")),
    "query": ((422, None), (400, "invalid_request_parameters"), (422, "validation_error")),
    "json": ((400, "invalid_json"), (400, "invalid_request_body"), (400, "invalid_json")),
    "route": ((404, "not_found"), (404, "not_found"), (404, "not_found")),
    "method": ((405, "method_not_allowed"), (405, "method_not_allowed"), (405, "method_not_allowed")),
    "crash": ((500, "internal_error"), (500, "internal_error"), (500, "internal_error")),
    "response_validation": ((500, "internal_error"), (500, "internal_error"), (500, "internal_error")),
}


def table_app(format: str, **options: Any) -> FastAPI:
    kit = errorkit.ErrorKit(format=format, **options)
    kit.define("quota_exceeded", status=402, message="Quota", details={"usage": int})
    app = FastAPI()
    kit.install(app)

    @app.get("/registry")
    async def registry() -> None:
        raise kit.error("quota_exceeded", usage=3)

    @app.get("/http_exception")
    async def http_exception() -> None:
        raise HTTPException(409, detail="Already started", headers={"X-Campaign": "c_1"})

    @app.get("/not_modified")
    async def not_modified() -> None:
        raise HTTPException(304)

    @app.post("/body")
    async def body(campaign: Campaign) -> None: ...

    @app.get("/query")
    async def query(limit: int = Query()) -> None: ...

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret")

    @app.get("/response_validation", response_model=Campaign)
    async def response_validation() -> Any:
        return {"title": "no name"}

    @app.get("/stream_early")
    async def stream_early() -> StreamingResponse:
        async def chunks() -> Any:
            raise RuntimeError("before the first chunk")
            yield b""

        return StreamingResponse(chunks())

    return app


def code_of(format: str, body: Any) -> str | None:
    if format == "envelope":
        return body["error"]["code"]
    return body.get("code")


@pytest.mark.parametrize("column", [0, 1, 2], ids=["detail", "envelope", "problem"])
def test_every_failure_in_every_format(column: int) -> None:
    format = ("detail", "envelope", "problem")[column]
    media_type = "application/problem+json" if format == "problem" else "application/json"
    requests = {
        "registry": ("GET", "/registry", {}),
        "http_exception": ("GET", "/http_exception", {}),
        "body": ("POST", "/body", {"json": {"name": 1, "password": "hunter2"}}),
        "query": ("GET", "/query?limit=ten", {}),
        "json": ("POST", "/body", {"content": b'{"name": ', "headers": {"content-type": "application/json"}}),
        "route": ("GET", "/nowhere", {}),
        "method": ("DELETE", "/body", {}),
        "crash": ("GET", "/crash", {}),
        "response_validation": ("GET", "/response_validation", {}),
    }
    with TestClient(table_app(format)) as client:
        for failure, (method, path, options) in requests.items():
            response = client.request(method, path, **options)
            status, code = TABLE[failure][column]
            body = response.json()
            assert (response.status_code, code_of(format, body)) == (status, code), failure
            assert response.headers["content-type"] == media_type
            request_id = body["error"]["request_id"] if format == "envelope" else body["request_id"]
            assert request_id == response.headers["x-request-id"] and len(request_id) == 32
            assert "secret" not in response.text and "hunter2" not in response.text, failure
            if failure in ("body", "query"):
                issues = body["detail"] if format == "detail" else code_of(format, body) and _details(format, body)
                assert [issue["loc"][0] for issue in issues] == ["body" if failure == "body" else "query"]
                assert all("input" not in issue for issue in issues)
        assert client.get("/http_exception").headers["x-campaign"] == "c_1"
        message = client.get("/http_exception").json()
        assert "Already started" in json.dumps(message)
        assert client.delete("/body").headers["allow"] == "POST"
        not_modified = client.get("/not_modified")
        assert (not_modified.status_code, not_modified.content) == (304, b"")
        early = client.get("/stream_early")
        assert (early.status_code, code_of(format, early.json())) == (500, "internal_error")


def _details(format: str, body: Any) -> Any:
    return body["error"]["details"]["issues"] if format == "envelope" else body["details"]["issues"]


def test_validation_input_is_shown_only_when_asked() -> None:
    with TestClient(table_app("problem", validation_input=True)) as client:
        issues = client.post("/body", json={"name": 1}).json()["details"]["issues"]
    assert issues == [
        {"loc": ["body", "name"], "msg": "Input should be a valid string", "type": "string_type", "input": 1}
    ]


def test_request_ids() -> None:
    with TestClient(table_app("detail")) as client:
        kept = client.get("/nowhere", headers={"X-Request-ID": "req-" + "x" * 124})
        assert kept.headers["x-request-id"] == "req-" + "x" * 124 == kept.json()["request_id"]
        for bad in (b"x" * 129, b"has space", "é".encode()):
            new = client.get("/nowhere", headers={"X-Request-ID": bad})
            assert re.fullmatch(r"[0-9a-f]{32}", new.headers["x-request-id"]), bad
        assert "x-request-id" in client.get("/openapi.json").headers  # on every response, not only errors


# -- crashes, middleware ---------------------------------------------------------------------------


def test_a_crash_keeps_the_middleware_headers_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    module = load("errors/middleware.py")
    with caplog.at_level(logging.ERROR, logger="errorkit"), TestClient(module["app"]) as client:
        check_exchange(exchange(PAGE, "GET /reports/r_1 HTTP/1.1"), client)
    (record,) = caplog.records
    assert record.getMessage() == "Unhandled ZeroDivisionError in GET /reports/r_1 (request id req-42)"
    assert record.request_id == "req-42"  # type: ignore[attr-defined]
    assert isinstance(record.exc_info[1], ZeroDivisionError)  # type: ignore[index]
    assert fence_starting(PAGE, "text", "Unhandled").splitlines()[0] == record.getMessage()


def test_debug_shows_no_traceback_page() -> None:
    kit = errorkit.ErrorKit()
    app = FastAPI(debug=True)
    kit.install(app)

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret")

    with TestClient(app) as client:
        response = client.get("/crash")
    assert response.json() == {
        "detail": "Internal Server Error",
        "code": "internal_error",
        "request_id": response.headers["x-request-id"],
    }


# -- retry hints -----------------------------------------------------------------------------------


def test_retry_hints_of_the_409s() -> None:
    for code in ("synthesis_pending", "graph_not_ready", "campaign_locked"):
        assert catalogs.DETAIL_API[code].definition.retryable is False
    assert STAGE_CODES["idempotency_response_unavailable"].definition.retryable is False

    # the in-flight 409 says: retry in a second
    app = FastAPI()
    errorkit.ErrorKit().install(app)

    @app.post("/in_flight")
    async def in_flight() -> None:
        raise STAGE_CODES["idempotency_key_in_use"]()

    with TestClient(app) as client:
        response = client.post("/in_flight")
    assert response.status_code == 409
    hints = (response.headers["retry-after"], response.headers["retry-after-ms"], response.headers["x-should-retry"])
    assert hints == ("1", "1000", "true")


def test_a_status_without_a_code_is_named_after_its_phrase() -> None:
    app = FastAPI()
    errorkit.ErrorKit(format="envelope").install(app)

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418)

    with TestClient(app) as client:
        assert client.get("/teapot").json()["error"]["code"] == "im_a_teapot"


def test_an_optional_detail_left_out_takes_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    """A None default: not sent, an empty string in the message; any other default: sent."""
    module = load("errors/optional_details.py")
    assert_lines(fence_starting(PAGE, "text", "{'provider'"), capsys.readouterr().out)
    assert module["left_out"].details == {"provider": "openai", "tier": "standard"}
    app = FastAPI()
    errorkit.ErrorKit(format="envelope").install(app)

    @app.get("/overloaded")
    async def overloaded() -> None:
        raise module["ProviderOverloaded"](provider="openai")

    with TestClient(app) as client:  # the body sends the details the error holds
        error = client.get("/overloaded").json()["error"]
    assert error["details"] == {"provider": "openai", "tier": "standard"}
    assert error["message"] == "openai is overloaded in region '' (standard tier)."


def test_a_503_of_a_post_says_retry_and_a_502_does_not(app_module: dict[str, Any]) -> None:
    kit = errorkit.ErrorKit()
    app = FastAPI()
    kit.install(app)

    @app.post("/overloaded")
    @app.patch("/overloaded")
    async def overloaded() -> None:
        raise kit.error("service_unavailable")

    @app.post("/bad_gateway")
    @app.patch("/bad_gateway")
    @app.put("/bad_gateway")
    async def bad_gateway() -> None:
        raise kit.error("bad_gateway")

    with TestClient(app) as client:
        assert client.post("/overloaded").headers["x-should-retry"] == "true"
        assert client.patch("/overloaded").headers["x-should-retry"] == "true"
        assert client.post("/bad_gateway").headers["x-should-retry"] == "false"
        assert client.patch("/bad_gateway").headers["x-should-retry"] == "false"
        assert client.put("/bad_gateway").headers["x-should-retry"] == "true"  # PUT is idempotent
        assert client.post("/bad_gateway", headers={"Idempotency-Key": "k"}).headers["x-should-retry"] == "true"


def test_a_details_model_is_used_as_it_is() -> None:
    from pydantic import ConfigDict

    class Lax(BaseModel):
        usage: int

    class Strict(BaseModel):
        model_config = ConfigDict(strict=True, extra="forbid")
        usage: int

    kit = errorkit.ErrorKit()
    assert kit.define("lax", status=402, message="x", details=Lax)(usage="3", other=1).details == {"usage": 3}
    with pytest.raises(errorkit.InvalidDetails):
        kit.define("strict", status=402, message="x", details=Strict)(usage="3")
    with pytest.raises(errorkit.InvalidDetails):
        kit.define("strict_extra", status=402, message="x", details=Strict)(usage=3, other=1)


def test_get_request_id_inside_the_app() -> None:
    from starlette.requests import Request

    app = FastAPI()
    errorkit.ErrorKit().install(app)

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, str | None]:
        return {"request_id": errorkit.get_request_id(request.scope)}

    with TestClient(app) as client:
        response = client.get("/whoami", headers={"X-Request-ID": "req-9"})
    assert response.json() == {"request_id": "req-9"} and response.headers["x-request-id"] == "req-9"


# -- a catalog made without GENERIC ---------------------------------------------------------------


def test_a_catalog_without_generic_still_answers_validation_with_generic_codes() -> None:
    own = errorkit.Registry("own")
    own.define("out_of_stock", status=409, message="Out of stock")
    kit = errorkit.ErrorKit(catalog=own, format="envelope")
    app = FastAPI()
    kit.install(app)

    @app.post("/campaigns")
    async def create(campaign: Campaign) -> None: ...

    @app.get("/conflict")
    async def conflict() -> None:
        raise HTTPException(409)

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret")

    with TestClient(app, raise_server_exceptions=False) as client:
        answers = [
            client.post("/campaigns", json={}),
            client.post("/campaigns", content=b"{", headers={"content-type": "application/json"}),
            client.get("/conflict"),
            client.get("/nowhere"),
            client.get("/crash"),
        ]
    assert [(r.status_code, r.json()["error"]["code"]) for r in answers] == [
        (400, "invalid_request_body"),
        (400, "invalid_request_body"),
        (409, "conflict"),
        (404, "not_found"),
        (500, "internal_error"),
    ]
    assert "validation_error" not in kit.registry  # GENERIC answers behind the catalog, without being in it


# -- changing errorkit's own refusals --------------------------------------------------------------

REFUSALS = "## Changing how errorkit's own refusals look"


def test_the_apps_definition_of_a_stage_code_wins() -> None:
    module = load("errors/refusals.py")
    with TestClient(module["app"]) as client:
        assert [client.get("/reports").status_code for _ in range(2)] == [200, 200]
        response = check_exchange(exchange(PAGE, "GET /reports HTTP/1.1"), client)
    # the limiter's exact wait in ms, below the 30 s (rounded up) of Retry-After
    assert 29_000 < int(response.headers["retry-after-ms"]) <= 30_000
    assert response.json()["error"]["details"] == {"retry_after_seconds": 30}  # `limit`, not declared: dropped
    assert STAGE_CODES["rate_limit_exceeded"].definition.detail_fields == {"retry_after_seconds": True, "limit": False}


def test_details_that_do_not_fit_the_definition_are_all_left_out() -> None:
    kit = errorkit.ErrorKit(format="envelope")
    kit.define(  # `plan` is not a detail the limiter sends, and has no default
        "rate_limit_exceeded",
        status=429,
        message="Wait {retry_after_seconds} s ({plan} plan).",
        details={"retry_after_seconds": int, "plan": str},
    )
    app = FastAPI()

    @app.get("/reports")
    async def reports() -> list[str]:
        return []

    kit.install(app, rate_limit=errorkit.RateLimiter(errorkit.MemoryBackend(), limits="1/minute"))
    with TestClient(app) as client:
        client.get("/reports")
        refused = client.get("/reports")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
    error = refused.json()["error"]
    assert "details" not in error and error["message"] == "Wait  s ( plan)."


def stage_rows() -> list[tuple[list[str], int, list[str]]]:
    """The table of the section: (codes of its first cell, status, detail names of its last cell)."""
    table = section(PAGE, REFUSALS).split("| code | status | refused by | details the stage sends |\n")[1]
    rows = []
    for line in table.split("\n\n")[0].splitlines()[1:]:
        code, status, _, details = (cell.strip() for cell in line.strip("|").split(" | "))
        codes = re.findall(r"`(\w+)`", code)
        rows.append((codes, int(status), [] if details == "none" else re.findall(r"`(\w+)`", details)))
    return rows


def test_the_table_lists_errorkits_stage_codes_as_defined() -> None:
    rows = stage_rows()
    listed = {code for codes, _, _ in rows for code in codes}
    assert set(STAGE_CODES._classes) <= listed  # every code of errorkit's stages is in the table
    for codes, status, details in rows:
        for code in codes:
            if code in STAGE_CODES:
                definition = STAGE_CODES[code].definition
                assert definition.status == status, code
                sent = set(details) - {"resource"}  # (`resource`: sent, declared by no default definition)
                assert set(definition.detail_fields) == sent, code
            elif code in catalogs.GENERIC:  # the catalog's code for the status
                assert catalogs.GENERIC[code].definition.status == status, code


def test_the_first_code_the_catalog_defines_wins() -> None:
    """A missing key: `authentication_required`, else `invalid_api_key`, else the catalog's 401; the rate
    limiter: `rate_limited`, else `rate_limit_exceeded`."""

    def refusals(kit: errorkit.ErrorKit) -> tuple[str, str]:
        app = FastAPI()

        @app.get("/reports")
        async def reports() -> list[str]:
            return []

        store = errorkit.MemoryBackend()
        auth = errorkit.APIKeyAuth(store, public_paths=["/reports"])
        kit.install(app, auth=auth, rate_limit=errorkit.RateLimiter(store, limits="1/minute"))

        @app.get("/private")
        async def private() -> None: ...

        with TestClient(app) as client:
            missing = client.get("/private")  # (counted too, for the client's address)
            limited = client.get("/reports")
        assert (limited.status_code, missing.status_code) == (429, 401)
        return code_of(kit.format.name, limited.json()), code_of(kit.format.name, missing.json())

    assert refusals(errorkit.ErrorKit()) == ("rate_limit_exceeded", "unauthorized")
    own = errorkit.ErrorKit()
    own.define("invalid_api_key", status=401, message="Bad key")
    assert refusals(own)[1] == "invalid_api_key"
    assert refusals(errorkit.ErrorKit(catalog=catalogs.ENVELOPE_API))[1] == "authentication_required"
    assert refusals(errorkit.ErrorKit(catalog=catalogs.DETAIL_API))[0] == "rate_limited"
