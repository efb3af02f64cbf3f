"""Definitions, the registry, raising by class and by code."""

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

import errorkit
from errorkit import APIError, DuplicateCode, ErrorKit, InvalidDetails, UnknownCode, catalogs


def synthesis_kit() -> tuple[ErrorKit, type[APIError]]:
    kit = ErrorKit(format="envelope", doc_url="https://docs.example.com/errors/{code}")
    cls = kit.define(
        "synthesis_pending",
        status=409,
        message="Campaign {campaign_id} hasn't completed synthesis yet",
        when="The campaign is still synthesizing.",
        fix="Wait for the campaign to finish.",
        details={"campaign_id": str},
    )
    return kit, cls


def test_define_returns_a_raisable_class_with_typed_details() -> None:
    _, SynthesisPending = synthesis_kit()
    with pytest.raises(SynthesisPending) as caught:
        raise SynthesisPending(campaign_id="c_1")
    error = caught.value
    assert isinstance(error, APIError)
    assert SynthesisPending.__name__ == "SynthesisPending"
    assert (error.code, error.status) == ("synthesis_pending", 409)
    assert error.message == "Campaign c_1 hasn't completed synthesis yet"
    assert error.details == {"campaign_id": "c_1"}
    assert str(error) == "Campaign c_1 hasn't completed synthesis yet"


def test_definition_holds_every_documented_field() -> None:
    kit, SynthesisPending = synthesis_kit()
    d = SynthesisPending.definition
    assert (d.when, d.fix, d.group, d.title, d.retryable) == (
        "The campaign is still synthesizing.",
        "Wait for the campaign to finish.",
        "general",
        "Synthesis pending",
        False,
    )
    assert d.detail_fields == {"campaign_id": True}
    assert kit.doc_url_for(d) == "https://docs.example.com/errors/synthesis_pending"
    assert kit.registry["synthesis_pending"] is SynthesisPending


def test_raising_by_code_gives_the_same_class() -> None:
    kit, SynthesisPending = synthesis_kit()
    error = kit.error("synthesis_pending", campaign_id="c_2")
    assert type(error) is SynthesisPending
    with pytest.raises(SynthesisPending):
        raise error


def test_builtin_code_by_name_and_by_class() -> None:
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API)
    error = kit.error("quota_exceeded", usage=3, limit=3)
    assert error.details == {"usage": 3, "limit": 3}
    assert isinstance(error, catalogs.ENVELOPE_API["quota_exceeded"])


@pytest.mark.parametrize(
    ("details", "problem"),
    [
        ({}, "campaign_id: Field required"),
        ({"campaign_id": 7}, "campaign_id: Input should be a valid string"),
        ({"campaign_id": "c", "extra": 1}, "extra: Extra inputs are not permitted"),
    ],
)
def test_wrong_or_missing_details_fail_loudly(details: dict[str, Any], problem: str) -> None:
    _, SynthesisPending = synthesis_kit()
    with pytest.raises(InvalidDetails) as caught:
        SynthesisPending(**details)
    assert str(caught.value) == f"invalid details for error 'synthesis_pending': {problem}"


def test_invalid_details_are_a_500_not_a_validation_error() -> None:
    kit, SynthesisPending = synthesis_kit()

    async def bug(request: Request) -> None:
        raise SynthesisPending(campaign_id=123)

    app = Starlette(routes=[Route("/bug", bug)])
    kit.install(app)
    r = TestClient(app).get("/bug", headers={"X-Request-ID": "r"})
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"


def test_optional_details_and_models() -> None:
    kit = ErrorKit()

    class Window(BaseModel):
        limit: int
        resets_at: datetime

    Limited = kit.define("window_full", status=429, message="Limit {limit} reached", details=Window)
    assert Limited(limit=5, resets_at=datetime(2026, 1, 1, tzinfo=UTC)).details == {
        "limit": 5,
        "resets_at": "2026-01-01T00:00:00Z",
    }
    Gone = kit.define("thing_gone", status=410, message="Gone{reason}", details={"reason": (str | None, None)})
    assert Gone().details == {}
    assert Gone().message == "Gone"


def test_same_definition_twice_is_accepted_different_is_rejected() -> None:
    kit, SynthesisPending = synthesis_kit()
    again = kit.define(
        "synthesis_pending",
        status=409,
        message="Campaign {campaign_id} hasn't completed synthesis yet",
        when="The campaign is still synthesizing.",
        fix="Wait for the campaign to finish.",
        details={"campaign_id": str},
    )
    assert again is SynthesisPending
    with pytest.raises(DuplicateCode) as caught:
        kit.define(
            "synthesis_pending",
            status=400,
            message="Campaign {campaign_id} hasn't completed synthesis yet",
            when="The campaign is still synthesizing.",
            fix="Wait for the campaign to finish.",
            details={"campaign_id": str},
        )
    assert str(caught.value) == (
        "error code 'synthesis_pending' is already defined by 'app' with a different definition "
        "(status 400 here vs 409 there); pick another code or declare it identically"
    )


def test_app_code_clashing_with_a_catalog_is_rejected() -> None:
    kit = ErrorKit(catalog=catalogs.DETAIL_API)
    with pytest.raises(DuplicateCode, match="'rate_limited' is already defined by 'detail_api'"):
        kit.define("rate_limited", status=429, message="Slow down")


def test_including_a_clashing_catalog_is_rejected() -> None:
    kit = ErrorKit(catalog=catalogs.DETAIL_API)
    with pytest.raises(DuplicateCode, match="'invalid_api_key' is already defined by 'detail_api'"):
        kit.include(catalogs.ENVELOPE_API)


@pytest.mark.parametrize(
    ("code", "spec", "message"),
    [
        ("BadCode", {"status": 400, "message": "x"}, "error code 'BadCode' must be snake_case"),
        ("double__underscore", {"status": 400, "message": "x"}, "must be snake_case"),
        ("ok_code", {"status": 200, "message": "x"}, "status 200 is not an HTTP error status"),
        ("ok_code", {"status": 400, "message": "Missing {thing}"}, "message refers to {thing}, which is not one of"),
    ],
)
def test_bad_definitions_are_rejected_at_declaration(code: str, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}").replace("(", r"\(")):
        ErrorKit().define(code, **spec)


def test_unknown_code_suggests_close_ones() -> None:
    kit = ErrorKit(catalog=catalogs.ENVELOPE_API)
    with pytest.raises(
        UnknownCode, match="no error code 'quota_exceded' in registry 'app'; did you mean 'quota_exceeded'"
    ):
        kit.error("quota_exceded")


def test_apierror_base_cannot_be_raised_bare() -> None:
    with pytest.raises(TypeError, match="APIError is a base class"):
        APIError()


def test_doc_url_per_code_overrides_template() -> None:
    kit = ErrorKit(format="envelope", doc_url="https://docs.example.com/e/{code}")
    Special = kit.define("special_case", status=400, message="Special", doc_url="https://example.com/special")
    assert kit.doc_url_for(Special.definition) == "https://example.com/special"
    assert kit.doc_url_for(kit.registry["not_found"].definition) == "https://docs.example.com/e/not_found"
    with pytest.raises(ValueError, match="must contain"):
        ErrorKit(doc_url="https://docs.example.com/errors")


def test_retry_after_from_definition_and_details() -> None:
    kit = ErrorKit()
    Busy = kit.define("busy", status=503, message="Busy", retry_after=5)
    assert Busy().retry_after == 5
    Waiting = kit.define("waiting", status=429, message="Wait", details={"retry_after_seconds": float})
    assert Waiting(retry_after_seconds=0.2).retry_after == 1  # at least one second, rounded up
    NotRetryable = kit.define("nope", status=400, message="No", retry_after=5)
    assert NotRetryable().retry_after is None


def test_one_line_selects_a_document() -> None:
    detail = ErrorKit(catalog=catalogs.DETAIL_API)
    envelope = ErrorKit(catalog=catalogs.ENVELOPE_API)
    assert (detail.format.name, detail.doc_url) == ("detail", None)
    assert (envelope.format.name, envelope.doc_url) == ("envelope", "https://docs.orq.ai/errors/{code}")
    assert detail.registry.for_status(429).definition.code == "rate_limited"
    assert envelope.registry.for_status(429).definition.code == "rate_limit_exceeded"
    assert envelope.registry.for_status(401).definition.code == "authentication_required"
    assert ErrorKit().registry.for_status(429).definition.code == "too_many_requests"


def test_custom_format() -> None:
    class Flat(errorkit.Format):
        name = "flat"

        def render(self, error: APIError, context: errorkit.ErrorContext) -> dict[str, Any]:
            return {"err": error.code, "why": error.message, "rid": context.request_id}

    kit = ErrorKit(format=Flat())

    async def missing(request: Request) -> None:
        raise kit.error("not_found")

    app = Starlette(routes=[Route("/x", missing)])
    kit.install(app)
    r = TestClient(app).get("/x", headers={"X-Request-ID": "abc"})
    assert r.status_code == 404
    assert r.json() == {"err": "not_found", "why": "Not Found", "rid": "abc"}
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        ErrorKit(format="xml")


def test_install_twice_is_refused() -> None:
    kit = ErrorKit()
    app = Starlette()
    kit.install(app)
    with pytest.raises(RuntimeError, match="already installed"):
        kit.install(app)


def test_public_names_are_sorted_and_exist() -> None:
    assert errorkit.__all__ == sorted(errorkit.__all__)
    for name in errorkit.__all__:
        assert getattr(errorkit, name) is not None
