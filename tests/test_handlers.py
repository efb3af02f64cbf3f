"""Every kind of error an app can produce leaves in the kit's format, on Starlette and FastAPI."""

import json
import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

import errorkit
from errorkit import ErrorKit, catalogs
from tests.apps.routes import SECRET, build_app

RID = {"X-Request-ID": "req-1"}


def client(framework: str, format: str = "detail", *, debug: bool = False, **kit_options: object) -> TestClient:
    catalog = catalogs.ENVELOPE_API if format == "envelope" else catalogs.DETAIL_API
    kit = ErrorKit(catalog=catalog, format=format, **kit_options)  # type: ignore[arg-type]
    return TestClient(build_app(framework, kit, debug=debug), raise_server_exceptions=False)


def test_registry_error_detail_shape(framework: str) -> None:
    r = client(framework).get("/raise/workspace_forbidden", headers=RID)
    assert r.status_code == 403
    assert r.json() == {
        "detail": "Workspace not accessible by this API key",
        "code": "workspace_forbidden",
        "request_id": "req-1",
    }
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-request-id"] == "req-1"
    assert r.headers["x-ratelimit-limit"] == "100"


def test_registry_error_envelope_shape(framework: str) -> None:
    r = client(framework, "envelope").get("/raise/quota_exceeded", headers=RID)
    assert r.status_code == 402
    assert r.json() == {
        "error": {
            "code": "quota_exceeded",
            "message": "The workspace has reached the limit for a resource on its current plan.",
            "doc_url": "https://docs.orq.ai/errors/quota_exceeded",
            "details": {"usage": 3, "limit": 3},
            "request_id": "req-1",
        }
    }


def test_registry_error_problem_shape(framework: str) -> None:
    c = client(framework, "problem", doc_url="https://docs.example.com/errors/{code}")
    r = c.get("/raise/campaign_locked", headers=RID)
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "https://docs.example.com/errors/campaign_locked",
        "title": "Campaign locked",
        "status": 409,
        "detail": "Lifecycle action invalid for current status (e.g., starting an already-completed campaign)",
        "instance": "/raise/campaign_locked",
        "code": "campaign_locked",
        "request_id": "req-1",
    }


def test_unknown_route_is_formatted_404(framework: str) -> None:
    r = client(framework).get("/no/such/route", headers=RID)
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found", "code": "not_found", "request_id": "req-1"}
    assert r.headers["x-ratelimit-limit"] == "100"


def test_wrong_method_is_405_with_allow(framework: str) -> None:
    r = client(framework, "envelope").delete("/topics", headers=RID)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.json() == {
        "error": {
            "code": "method_not_allowed",
            "message": "Method Not Allowed",
            "doc_url": "https://docs.orq.ai/errors/method_not_allowed",
            "request_id": "req-1",
        }
    }


def test_http_exception_keeps_its_headers(framework: str) -> None:
    c = client(framework)
    r = c.get("/http/401", headers=RID)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'
    assert r.json() == {"detail": "Unauthorized", "code": "unauthorized", "request_id": "req-1"}
    r = c.get("/http/503", headers=RID)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "7"
    assert r.json() == {"detail": "Service Unavailable", "code": "service_unavailable", "request_id": "req-1"}


def test_http_exception_maps_to_the_catalog_code_of_its_status(framework: str) -> None:
    r = client(framework, "envelope").get("/http/401", headers=RID)
    assert r.json()["error"]["code"] == "authentication_required"
    r = client(framework).get("/http/429", headers=RID)
    assert r.json() == {"detail": "Per-workspace rate limit exceeded", "code": "rate_limited", "request_id": "req-1"}


def test_http_exception_with_unmapped_status(framework: str) -> None:
    r = client(framework).get("/http/418", headers=RID)
    assert r.status_code == 418
    assert r.json() == {"detail": "I'm a Teapot", "code": "im_a_teapot", "request_id": "req-1"}


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_carry_no_body(framework: str, status: int) -> None:
    r = client(framework).get(f"/http/{status}", headers=RID)
    assert r.status_code == status
    assert r.content == b""
    assert "content-type" not in r.headers
    assert r.headers["x-request-id"] == "req-1"


def test_body_validation_detail_shape_is_fastapis(framework: str) -> None:
    r = client(framework).post("/topics", json={"weight": "heavy"}, headers=RID)
    assert r.status_code == 422
    assert r.json() == {
        "detail": [
            {"loc": ["body", "name"], "msg": "Field required", "type": "missing"},
            {
                "loc": ["body", "weight"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "type": "int_parsing",
            },
        ],
        "request_id": "req-1",
    }


def test_body_validation_envelope_is_invalid_request_body(framework: str) -> None:
    r = client(framework, "envelope").post("/topics", json={"name": ""}, headers=RID)
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "code": "invalid_request_body",
            "message": "The request body failed schema validation.",
            "doc_url": "https://docs.orq.ai/errors/invalid_request_body",
            "details": {
                "issues": [
                    {
                        "loc": ["body", "name"],
                        "msg": "String should have at least 1 character",
                        "type": "string_too_short",
                    }
                ]
            },
            "request_id": "req-1",
        }
    }


def test_body_validation_problem_shape(framework: str) -> None:
    r = client(framework, "problem").post("/topics", json={}, headers=RID)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "about:blank",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "Unprocessable Entity",
        "instance": "/topics",
        "code": "validation_error",
        "details": {"issues": [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}]},
        "request_id": "req-1",
    }


def test_validation_does_not_echo_input_by_default(framework: str) -> None:
    r = client(framework).post("/topics", json={"name": "", "password": SECRET}, headers=RID)
    assert r.status_code == 422
    assert SECRET not in r.text
    assert "input" not in r.json()["detail"][0]


def test_validation_input_can_be_enabled(framework: str) -> None:
    r = client(framework, validation_input=True).post("/topics", json={"name": ""}, headers=RID)
    assert r.json()["detail"] == [
        {
            "loc": ["body", "name"],
            "msg": "String should have at least 1 character",
            "type": "string_too_short",
            "input": "",
        }
    ]


@pytest.mark.parametrize(
    ("format", "expected_status", "expected"),
    [
        (
            "detail",
            400,
            {"detail": "The request body is not valid JSON.", "code": "invalid_json", "request_id": "req-1"},
        ),
        (
            "envelope",
            400,
            {
                "error": {
                    "code": "invalid_request_body",
                    "message": "The request body failed schema validation.",
                    "doc_url": "https://docs.orq.ai/errors/invalid_request_body",
                    "details": {"issues": [{"loc": ["body", 9], "msg": "JSON decode error", "type": "json_invalid"}]},
                    "request_id": "req-1",
                }
            },
        ),
    ],
)
def test_malformed_json_is_400_never_500(framework: str, format: str, expected_status: int, expected: object) -> None:
    r = client(framework, format).post(
        "/topics", content=b'{"name": ', headers={**RID, "content-type": "application/json"}
    )
    assert r.status_code == expected_status
    assert r.json() == expected


MALFORMED_BODIES = {
    "invalid utf-8": (b"\xff\xfe{", ["body", 2]),  # a UTF-16 BOM, then half a character
    "invalid utf-8 after valid": (b'{"name": "\xff"}', ["body", 10]),
    "nested 100000 deep": (b"[" * 100_000 + b"]" * 100_000, ["body"]),  # (3.13 parses 5000 deep)
    "integer of 4301 digits": (b'{"name": ' + b"9" * 4301 + b"}", ["body"]),
}


@pytest.mark.parametrize("kind", MALFORMED_BODIES)
def test_every_malformed_body_is_400_in_the_apps_format(
    framework: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    body, loc = MALFORMED_BODIES[kind]
    headers = {**RID, "content-type": "application/json"}
    with caplog.at_level(logging.ERROR, logger="errorkit"):
        r = client(framework).post("/topics", content=body, headers=headers)
        enveloped = client(framework, "envelope").post("/topics", content=body, headers=headers)
    assert (r.status_code, r.json()) == (
        400,
        {"detail": "The request body is not valid JSON.", "code": "invalid_json", "request_id": "req-1"},
    )
    assert enveloped.status_code == 400
    assert enveloped.json()["error"]["details"] == {
        "issues": [{"loc": loc, "msg": "JSON decode error", "type": "json_invalid"}]
    }
    assert not caplog.records  # the client's fault: no crash logged, no traceback


def test_a_decoding_error_of_the_apps_own_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    """Only an error that parsing the client's body raises too is the client's fault."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    async def upstream(request: Request) -> None:
        await request.json()  # the client's body is fine...
        json.loads(b"{broken upstream reply")  # ...the app's own parsing is not

    app = Starlette(routes=[Route("/x", upstream, methods=["POST"])])
    ErrorKit().install(app)
    with caplog.at_level(logging.ERROR, logger="errorkit"):
        r = TestClient(app, raise_server_exceptions=False).post("/x", json={"ok": 1}, headers=RID)
    assert (r.status_code, r.json()) == (
        500,
        {"detail": "Internal Server Error", "code": "internal_error", "request_id": "req-1"},
    )
    assert [rec.exc_info[0] for rec in caplog.records if rec.exc_info] == [json.JSONDecodeError]


def test_crash_is_formatted_500_without_leaking(framework: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="errorkit"):
        r = client(framework).get("/boom", headers={**RID, "Origin": "https://app.example"})
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal Server Error", "code": "internal_error", "request_id": "req-1"}
    assert SECRET not in r.text and "Traceback" not in r.text
    # headers added by the app's middleware are on the 500 too
    assert r.headers["x-ratelimit-limit"] == "100"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["x-request-id"] == "req-1"
    # logged exactly once, with the request id and the exception for error trackers
    records = [rec for rec in caplog.records if rec.name == "errorkit"]
    assert len(records) == 1
    assert records[0].request_id == "req-1"  # type: ignore[attr-defined]
    assert "req-1" in records[0].getMessage()
    assert records[0].exc_info is not None and str(records[0].exc_info[1]) == SECRET


@pytest.mark.parametrize("debug", [False, True])
def test_500_keeps_middleware_headers_under_debug(framework: str, debug: bool) -> None:
    r = client(framework, "envelope", debug=debug).get("/boom", headers={**RID, "Origin": "https://app.example"})
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-ratelimit-limit"] == "100"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.json() == {
        "error": {
            "code": "internal_error",
            "message": "An unexpected error occurred inside Orq.ai.",
            "doc_url": "https://docs.orq.ai/errors/internal_error",
            "request_id": "req-1",
        }
    }


@pytest.mark.parametrize("debug", [False, True])
def test_crash_inside_a_middleware(framework: str, debug: bool, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        r = client(framework, debug=debug).get("/middleware-crash", headers=RID)
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal Server Error", "code": "internal_error", "request_id": "req-1"}
    assert r.headers["x-request-id"] == "req-1"
    assert SECRET not in r.text
    assert len([rec for rec in caplog.records if rec.exc_info]) == 1


def test_crash_in_streaming_response_before_first_chunk(framework: str) -> None:
    r = client(framework).get("/stream-early", headers=RID)
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal Server Error", "code": "internal_error", "request_id": "req-1"}
    assert r.headers["x-ratelimit-limit"] == "100"


def test_crash_in_streaming_response_after_first_chunk_is_logged(
    framework: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="errorkit"):
        r = client(framework).get("/stream-late", headers=RID)
    # the status was sent with the first chunk; the body is cut short (see test_uvicorn for the wire)
    assert r.status_code == 200
    assert SECRET not in r.text
    records = [rec for rec in caplog.records if rec.name == "errorkit"]
    assert len(records) == 1 and records[0].request_id == "req-1"  # type: ignore[attr-defined]


def test_pydantic_validation_error_raised_in_handler() -> None:
    r = client("fastapi").get("/manual-validation", headers=RID)
    assert r.status_code == 422
    assert r.json() == {
        "detail": [
            {"loc": ["body", "name"], "msg": "String should have at least 1 character", "type": "string_too_short"}
        ],
        "request_id": "req-1",
    }


def test_response_validation_error_is_formatted_500(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="errorkit"):
        r = client("fastapi").get("/bad-response", headers=RID)
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal Server Error", "code": "internal_error", "request_id": "req-1"}
    assert "nonsense" not in r.text
    assert [rec.exc_info[0].__name__ for rec in caplog.records if rec.exc_info] == ["ResponseValidationError"]


def test_parameter_errors_mapped_by_location() -> None:
    c = client("fastapi", "envelope")
    r = c.get("/items/abc?limit=1000", headers=RID)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_request_parameters"
    assert [(i["loc"], i["type"]) for i in error["details"]["issues"]] == [
        (["path", "item_id"], "int_parsing"),
        (["query", "limit"], "less_than_equal"),
        (["header", "x-tenant"], "missing"),
    ]
    r = client("fastapi").get("/items/1", headers={**RID, "X-Tenant": "ab"})
    assert r.status_code == 422
    assert r.json() == {
        "detail": [
            {
                "loc": ["header", "x-tenant"],
                "msg": "String should have at least 3 characters",
                "type": "string_too_short",
            }
        ],
        "request_id": "req-1",
    }


def test_non_json_content_type_where_json_expected() -> None:
    r = client("fastapi").post("/topics", content=b'{"name": "x"}', headers={**RID, "content-type": "text/plain"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body"]


def test_retryable_error_carries_retry_after(framework: str) -> None:
    r = client(framework, "envelope").get("/raise/rate_limit_exceeded", headers=RID)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "30"
    assert r.json()["error"]["details"] == {"retry_after_seconds": 30, "limit": 100}


def test_success_carries_request_id_and_other_headers(framework: str) -> None:
    r = client(framework).get("/ok", headers=RID)
    assert r.status_code == 200
    assert r.json() == {"ok": True}
    assert r.headers["x-request-id"] == "req-1"
    assert r.headers["x-ratelimit-limit"] == "100"


@pytest.mark.parametrize("format", ["detail", "envelope", "problem"])
def test_a_catalog_made_without_generic_still_answers_a_bad_request_with_its_code(format: str) -> None:
    """The handlers answer validation and malformed JSON by code: a catalog of the app's own codes
    alone gets GENERIC's definitions of those, not a 500 (UnknownCode) for every bad request."""
    from fastapi import FastAPI
    from pydantic import BaseModel

    shop = errorkit.Registry("shop")
    shop.define("out_of_stock", status=409, message="Out of stock")
    kit = errorkit.ErrorKit(catalog=shop, format=format)
    app = FastAPI()
    kit.install(app)

    class Item(BaseModel):
        name: str

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    client = TestClient(app)
    invalid = client.post("/items", json={}, headers={"X-Request-ID": "r"})
    malformed = client.post("/items", content=b"{", headers={"content-type": "application/json", "X-Request-ID": "r"})
    expected = {
        "detail": ((422, None), (400, "invalid_json")),
        "envelope": ((400, "invalid_request_body"), (400, "invalid_request_body")),
        "problem": ((422, "validation_error"), (400, "invalid_json")),
    }[format]

    def code(r: Any) -> str | None:
        body = r.json()
        return body["error"]["code"] if format == "envelope" else body.get("code")

    assert ((invalid.status_code, code(invalid)), (malformed.status_code, code(malformed))) == expected


def test_generic_answers_only_what_the_catalog_lacks_and_is_not_the_kits() -> None:
    """GENERIC stands behind a catalog made without it: the kit may still define those codes itself,
    and they are neither listed nor counted as the kit's."""
    shop = errorkit.Registry("shop")
    shop.define("out_of_stock", status=409, message="Out of stock")
    kit = errorkit.ErrorKit(catalog=shop)
    assert kit.registry["invalid_json"] is catalogs.GENERIC["invalid_json"]
    assert [d.code for d in kit.registry] == ["out_of_stock"] and "invalid_json" not in kit.registry

    own = kit.define("validation_error", status=422, message="The request is not valid.")
    assert kit.registry["validation_error"] is own


def test_a_stage_crashing_before_the_app_runs_is_a_500_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    """A bug in a store of the app's own (not a `StoreError`): the catch-all answers, in the app's format."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    class BuggyCounters(errorkit.MemoryBackend):
        async def count(self, *args: Any) -> Any:  # (a custom store's own defect)
            raise KeyError(SECRET)

    async def ok(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/", ok)])
    ErrorKit().install(app, rate_limit=errorkit.RateLimiter(BuggyCounters()))
    with caplog.at_level(logging.ERROR, logger="errorkit"):
        r = TestClient(app, raise_server_exceptions=False).get("/", headers=RID)
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal Server Error", "code": "internal_error", "request_id": "req-1"}
    assert r.headers["x-request-id"] == "req-1"
    assert "x-ratelimit-limit" not in r.headers
    assert SECRET not in r.text
    assert len([rec for rec in caplog.records if rec.exc_info]) == 1
