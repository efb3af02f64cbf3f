"""The built-in catalogs say exactly what the two published documents say.

The documents are kept verbatim in tests/spec/; these tests parse them, so a catalog
that drifts from its document fails here.
"""

import re
from http import HTTPStatus
from pathlib import Path

import pytest

from errorkit import catalogs
from errorkit.catalogs.envelope_api import PLAN_LIMITS

SPEC = Path(__file__).parent / "spec"
ENVELOPE_DOC = (SPEC / "api-errors-envelope-shape.txt").read_text()
DETAIL_DOC = (SPEC / "api-errors-detail-shape.txt").read_text()

_ENTRY = re.compile(
    r"\n\n(?P<code>[a-z_]+)\n\nHTTP status: (?P<status>\d+) When this occurs: (?P<when>.*?) How to fix it: (?P<fix>.*?)"
    r"(?=\n\n[a-z_]+\n\nHTTP|\n\n[A-Z][a-z ]+\n\n[a-z_]+\n\nHTTP|\Z)",
    re.S,
)
_GROUP = re.compile(r"\n\n([A-Z][A-Za-z ]+)\n\n(?=[a-z_]+\n\nHTTP)")
GROUP_NAMES = {
    "Authentication errors": "authentication",
    "Quota": "quota",
    "Validation errors": "validation",
    "Not found": "not_found",
    "Rate limiting": "rate_limiting",
    "Provider errors": "provider",
    "Server errors": "server",
}


def envelope_entries() -> list[dict[str, str]]:
    headers = [(g.start(), g.group(1)) for g in _GROUP.finditer(ENVELOPE_DOC)]
    entries = []
    for match in _ENTRY.finditer(ENVELOPE_DOC):
        group = [name for start, name in headers if start <= match.start()][-1]
        entries.append({**match.groupdict(), "group": GROUP_NAMES[group]})
    return entries


def test_envelope_document_has_23_codes_in_7_groups() -> None:
    entries = envelope_entries()
    assert len(entries) == 23
    assert len({e["group"] for e in entries}) == 7


@pytest.mark.parametrize("entry", envelope_entries(), ids=lambda e: e["code"])
def test_envelope_code_matches_document(entry: dict[str, str]) -> None:
    d = catalogs.ENVELOPE_API[entry["code"]].definition
    assert d.status == int(entry["status"])
    assert d.when == entry["when"]
    assert d.group == entry["group"]
    if entry["code"] == "quota_exceeded":  # the plan table is PLAN_LIMITS, the prose around it is the fix
        before, _, after = entry["fix"].partition(" Plan limits:\n")
        table_rows, prose = after.rsplit("\n", 1)[0], after.rsplit("\n", 1)[1]
        assert d.fix == f"{before} {prose}"
        assert table_rows == "EntityDeveloperGrowthEnterprise\n" + "\n".join(
            name + "".join("Unlimited" if v is None else str(v) for v in plans.values())
            for name, plans in PLAN_LIMITS.items()
        )
    else:
        assert d.fix == entry["fix"]
    # the message is the documented one, else the first sentence of "when"
    if entry["code"] == "invalid_api_key":
        assert d.message == "The provided API key is invalid."
    else:
        assert entry["when"].startswith(d.message) and d.message.endswith(".")


# Detail fields each entry's "when" text names.
ENVELOPE_DETAILS = {
    "authentication_required": {},
    "invalid_api_key": {},
    "expired_api_key": {"expired_at": True},
    "insufficient_scope": {"required_permission": True, "key_scope": True},
    "wrong_project": {"key_project_id": True, "resource_project_id": True},
    "workspace_disabled": {"reason": False},
    "quota_exceeded": {"usage": True, "limit": True},
    "invalid_request_body": {"issues": True},
    "unsupported_engine": {"engine": True, "supported": True},
    "variant_not_resolved": {"context_keys": True},
    "model_configuration_missing": {"model_db_id": True},
    "provider_credential_invalid": {"provider": True, "field": True},
    "deployment_not_found": {"key": True},
    "integration_not_found": {"identifier": True},
    "prompt_snippet_not_found": {"key": True},
    "rate_limit_exceeded": {"retry_after_seconds": True, "limit": False},
    "provider_error": {"provider": True, "provider_status": False, "raw": False},
    "provider_timeout": {"provider": True, "timeout_ms": True},
    "provider_overloaded": {"provider": True},
    "internal_error": {},
    "not_implemented": {"feature": True},
    "service_unavailable": {"dependency": False},
    "request_timeout": {"timeout_ms": True},
}


@pytest.mark.parametrize("entry", envelope_entries(), ids=lambda e: e["code"])
def test_envelope_detail_fields(entry: dict[str, str]) -> None:
    fields = catalogs.ENVELOPE_API[entry["code"]].definition.detail_fields
    assert fields == ENVELOPE_DETAILS[entry["code"]]
    # "may include"/"optionally"/"when available" in the text is exactly the optional ones
    for name, required in fields.items():
        if not required:
            assert re.search(r"may include|optionally|when available", entry["when"])
        elif name in entry["when"]:
            assert f"optionally {name}" not in entry["when"]


def detail_codes() -> list[tuple[str, str]]:
    section = DETAIL_DOC.split("codeMeaning\n", 1)[1].split("\n\nIdempotency", 1)[0]
    return [tuple(re.match(r"([a-z_]+)(.*)", line).groups()) for line in section.splitlines()]  # type: ignore[union-attr,misc]


def test_detail_document_has_7_codes() -> None:
    assert [code for code, _ in detail_codes()] == [
        "invalid_api_key",
        "insufficient_scope",
        "workspace_forbidden",
        "synthesis_pending",
        "graph_not_ready",
        "campaign_locked",
        "rate_limited",
    ]


STATUS_OF_DETAIL_CODES = {  # shared/spec/README.md's table
    "invalid_api_key": 401,
    "insufficient_scope": 403,
    "workspace_forbidden": 403,
    "synthesis_pending": 409,
    "graph_not_ready": 409,
    "campaign_locked": 409,
    "rate_limited": 429,
}


def status_rows() -> dict[int, str]:
    """Status -> its "Meaning" and "What to do" columns run together, as the text has them."""
    section = DETAIL_DOC.split("CodeMeaningWhat to do\n", 1)[1].split("\n\nCommon error codes", 1)[0]
    rows = {}
    for line in section.splitlines():
        status = int(line[:3])
        prefix = f"{status} {HTTPStatus(status).phrase}"
        assert line.startswith(prefix), line
        rows[status] = line[len(prefix) :]
    return rows


@pytest.mark.parametrize(("code", "meaning"), detail_codes())
def test_detail_code_matches_document(code: str, meaning: str) -> None:
    d = catalogs.DETAIL_API[code].definition
    assert d.status == STATUS_OF_DETAIL_CODES[code]
    assert d.when == meaning
    # "what to do" of the status row
    assert status_rows()[d.status].endswith(d.fix)
    expected_message = "Workspace not accessible by this API key" if code == "workspace_forbidden" else meaning
    assert d.message == expected_message
    assert d.detail_fields == {}


def test_detail_example_body_matches_document() -> None:
    assert '"detail": "Workspace not accessible by this API key",\n  "code": "workspace_forbidden"' in DETAIL_DOC


GENERIC_ROWS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


@pytest.mark.parametrize(("status", "code"), GENERIC_ROWS.items())
def test_generic_code_for_each_status_row(status: int, code: str) -> None:
    row = status_rows()[status]
    d = catalogs.GENERIC.for_status(status).definition
    assert d.code == code
    assert row == d.when + d.fix  # the "Meaning" and "What to do" columns, run together in the text
    assert catalogs.DETAIL_API[code].definition is d


def test_document_error_status_rows_are_all_covered() -> None:
    assert {s for s in status_rows() if s >= 400} == set(GENERIC_ROWS)


def test_catalog_sizes() -> None:
    envelope_codes = {e["code"] for e in envelope_entries()}
    assert envelope_codes <= {d.code for d in catalogs.ENVELOPE_API}
    assert set(STATUS_OF_DETAIL_CODES) <= {d.code for d in catalogs.DETAIL_API}
    assert set(GENERIC_ROWS.values()) <= {d.code for d in catalogs.GENERIC}
