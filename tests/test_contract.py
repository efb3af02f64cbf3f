"""`errorkit contract save|check`: lock files of catalogs and apps, and every kind of change they report."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from errorkit import ErrorKit, Registry, catalogs, raises
from errorkit._app.cli import main, reference_of
from errorkit._app.contract_command import github_line
from errorkit._errors.contract import BREAKING, INFORMATION, Change, Contract, accepts, diff

ROOT = Path(__file__).parent.parent
THIS = sys.modules[__name__]
BUILT_IN = {"detail_api": catalogs.DETAIL_API, "envelope_api": catalogs.ENVELOPE_API}
LOCK = "errors.lock.json"
TARGET = "tests.test_contract:SUBJECT"  # (an attribute `compare` sets)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `errorkit ...` in this process: its exit status, standard output and standard error."""
    try:
        status = main(list(argv))
    except SystemExit as exc:  # (argparse's usage errors)
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def redefined(catalog: Registry, code: str, **changes: Any) -> Registry:
    """A copy of `catalog` with `code` declared again, with `changes` to its definition."""
    d = catalog[code].definition
    fields: dict[str, Any] = {
        "status": d.status,
        "message": d.message,
        "when": d.when,
        "fix": d.fix,
        "group": d.group,
        "doc_url": d.doc_url,
        "title": d.title,
        "retryable": d.retryable,
        "retry_after": d.retry_after,
        "details": d.details,
    }
    copy = catalog.without(code)
    copy.define(code, **{**fields, **changes})
    return copy


def with_format(catalog: Registry, format: str | None = None, doc_url: str | None = None) -> Registry:
    copy = catalog.without()
    copy.format = format or catalog.format
    copy.doc_url = doc_url or catalog.doc_url
    return copy


@pytest.fixture
def compare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[object, object], tuple[int, str]]:
    """Save the contract of `old` (a built-in name or an object), check `new` against it: (status, report).
    Both are the same target, `tests.test_contract:SUBJECT`, as an app is before and after a change."""
    monkeypatch.chdir(tmp_path)

    def run(old: object, new: object) -> tuple[int, str]:
        monkeypatch.setattr(THIS, "SUBJECT", BUILT_IN.get(old, old) if isinstance(old, str) else old, raising=False)
        status, _, err = cli(capsys, "contract", "save", TARGET, "-o", LOCK)
        assert (status, err) == (0, "")
        monkeypatch.setattr(THIS, "SUBJECT", BUILT_IN.get(new, new) if isinstance(new, str) else new)
        status, out, err = cli(capsys, "contract", "check", TARGET, LOCK)
        assert err == ""
        return status, out

    return run


# -- One test per kind of change, on the built-in catalogs ------------------------------------


def test_a_code_removed(compare: Callable[[object, object], tuple[int, str]]) -> None:
    assert compare("detail_api", catalogs.DETAIL_API.without("gone")) == (
        1,
        "breaking: gone: code removed (status 410: clients matching it will get another code in its place)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )
    assert compare("envelope_api", catalogs.ENVELOPE_API.without("deployment_not_found")) == (
        1,
        "breaking: deployment_not_found: code removed (status 404: clients matching it will get another code in its place)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


def test_a_status_changed(compare: Callable[[object, object], tuple[int, str]]) -> None:
    assert compare("envelope_api", redefined(catalogs.ENVELOPE_API, "quota_exceeded", status=429)) == (
        1,
        "breaking: quota_exceeded: status 402 -> 429 (clients branching on 402 will miss it)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


def test_a_required_detail_added(compare: Callable[[object, object], tuple[int, str]]) -> None:
    changed = redefined(catalogs.DETAIL_API, "campaign_locked", details={"campaign_id": str})
    assert compare("detail_api", changed) == (
        1,
        "breaking: campaign_locked: new required detail campaign_id (string) (every raise of campaign_locked must now pass it)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


def test_a_detail_made_required(compare: Callable[[object, object], tuple[int, str]]) -> None:
    changed = redefined(
        catalogs.ENVELOPE_API, "rate_limit_exceeded", details={"retry_after_seconds": int, "limit": int | None}
    )
    assert compare("envelope_api", changed) == (
        1,
        "breaking: rate_limit_exceeded: detail limit now required (every raise of rate_limit_exceeded must now pass it)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


def test_a_detail_removed(compare: Callable[[object, object], tuple[int, str]]) -> None:
    changed = redefined(catalogs.ENVELOPE_API, "quota_exceeded", message="Quota exceeded.", details={"usage": int})
    assert compare("envelope_api", changed) == (
        1,
        "breaking: quota_exceeded: detail limit removed (clients reading it will not find it)\n"
        'info: quota_exceeded: message "The workspace has reached the limit for a resource on its current plan." -> "Quota exceeded."\n'
        "errorkit contract: 1 breaking change, 1 other change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )
    assert compare("detail_api", redefined(catalogs.DETAIL_API, "service_unavailable", details=None)) == (
        1,
        "breaking: service_unavailable: detail dependency removed (clients reading it will not find it)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


def test_a_detail_made_optional(compare: Callable[[object, object], tuple[int, str]]) -> None:
    changed = redefined(
        catalogs.ENVELOPE_API, "wrong_project", details={"key_project_id": (str, None), "resource_project_id": str}
    )
    assert compare("envelope_api", changed) == (
        1,
        "breaking: wrong_project: detail key_project_id no longer always present (clients reading it may not find it)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


def test_a_detail_given_a_default_is_still_always_present(compare: Callable[[object, object], tuple[int, str]]) -> None:
    """A default that is not None is in every body (a body leaves out only the details that are None)."""
    defaulted = redefined(
        catalogs.ENVELOPE_API, "wrong_project", details={"key_project_id": (str, "unknown"), "resource_project_id": str}
    )
    assert compare("envelope_api", defaulted) == (0, "errorkit contract: no change from errors.lock.json\n")
    listed = redefined(catalogs.DETAIL_API, "conflict", details={"ids": (list[str], Field(default_factory=list))})
    assert compare(listed, redefined(catalogs.DETAIL_API, "conflict", details={"ids": list[str]})) == (
        1,
        "breaking: conflict: detail ids now required (every raise of conflict must now pass it)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


def test_a_detail_type_widened(compare: Callable[[object, object], tuple[int, str]]) -> None:
    nullable = redefined(
        catalogs.DETAIL_API, "validation_error", details={"issues": (list[dict[str, Any]] | str | None, None)}
    )
    assert compare("detail_api", nullable) == (
        1,
        "breaking: validation_error: detail issues type list of object or null -> list of object or string or null "
        "(clients reading it as list of object or null may get a value they cannot parse)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )
    scopes = Literal["PUBLIC", "WORKSPACE", "PROJECT", "ORGANIZATION"]
    more = redefined(
        catalogs.ENVELOPE_API, "insufficient_scope", details={"required_permission": str, "key_scope": scopes}
    )
    assert compare("envelope_api", more) == (
        1,
        'breaking: insufficient_scope: detail key_scope type one of "PUBLIC", "WORKSPACE", "PROJECT" -> '
        'one of "PUBLIC", "WORKSPACE", "PROJECT", "ORGANIZATION" (clients reading it as one of "PUBLIC", '
        '"WORKSPACE", "PROJECT" may get a value they cannot parse)\n'
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


def test_a_detail_type_narrowed(compare: Callable[[object, object], tuple[int, str]]) -> None:
    narrower = redefined(
        catalogs.ENVELOPE_API,
        "insufficient_scope",
        details={"required_permission": str, "key_scope": Literal["WORKSPACE", "PROJECT"]},
    )
    assert compare("envelope_api", narrower) == (
        1,
        'breaking: insufficient_scope: detail key_scope type one of "PUBLIC", "WORKSPACE", "PROJECT" -> '
        'one of "WORKSPACE", "PROJECT" (narrower: clients read it as before, but a raise of insufficient_scope '
        "with a value it no longer allows fails)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )
    text = redefined(catalogs.DETAIL_API, "conflict", details={"name": str})
    short = redefined(catalogs.DETAIL_API, "conflict", details={"name": Annotated[str, Field(max_length=10)]})
    assert compare(text, short) == (
        1,
        "breaking: conflict: detail name schema changed, still string (narrower: clients read it as before, "
        "but a raise of conflict with a value it no longer allows fails)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )
    assert compare(short, text) == (
        1,
        "breaking: conflict: detail name schema changed, still string "
        "(clients reading it as string may get a value they cannot parse)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


class Counted(BaseModel):
    n: int = Field(alias="count")


class CountedAsText(BaseModel):
    n: str = Field(alias="count")


def test_a_detail_with_an_alias(compare: Callable[[object, object], tuple[int, str]]) -> None:
    """A body holds details by field name (the details model's dump): the name's schema is the one stored."""
    counted = redefined(catalogs.DETAIL_API, "conflict", details=Counted)
    assert Contract.of(ErrorKit(catalog=counted).reference(), "x").codes["conflict"].details["n"].json_schema == {
        "type": "integer"
    }
    assert compare(counted, redefined(catalogs.DETAIL_API, "conflict", details=CountedAsText)) == (
        1,
        "breaking: conflict: detail n type integer -> string (clients reading it as integer may get a value they cannot parse)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


class Point(BaseModel):
    x: int
    y: int


class PointReordered(BaseModel):
    y: int
    x: int


def test_the_same_type_written_otherwise(compare: Callable[[object, object], tuple[int, str]]) -> None:
    """Fields reordered, a Literal's values reordered, a union's members reordered: no change."""
    for before, after in [
        (Point, PointReordered),
        (Literal["a", "b"], Literal["b", "a"]),
        (int | str, str | int),
        (dict[str, Any], dict[str, Any]),
    ]:
        old = redefined(catalogs.DETAIL_API, "conflict", details={"value": before})
        new = redefined(catalogs.DETAIL_API, "conflict", details={"value": after})
        assert compare(old, new) == (0, "errorkit contract: no change from errors.lock.json\n"), (before, after)


def test_a_schema_in_normal_form() -> None:
    """Keywords at JSON Schema's default left out (pydantic 2.14 writes `additionalProperties: true` for a
    dict[str, Any], 2.10 does not), sets sorted: the lock file is the same with every supported pydantic."""
    catalog = redefined(
        catalogs.DETAIL_API,
        "conflict",
        details={"extra": dict[str, Any], "pair": Point, "kind": Literal["b", "a"], "id": int | str | None},
    )
    details = Contract.of(ErrorKit(catalog=catalog).reference(), "x").codes["conflict"].details
    assert {name: detail.json_schema for name, detail in details.items()} == {
        "extra": {"type": "object"},
        "pair": {
            "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
            "required": ["x", "y"],
            "type": "object",
        },
        "kind": {"enum": ["a", "b"], "type": "string"},
        "id": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
    }
    assert {name: detail.type for name, detail in details.items()} == {
        "extra": "object",
        "pair": "Point",
        "kind": 'one of "b", "a"',
        "id": "integer or string or null",
    }


def test_retryable_switched_off(compare: Callable[[object, object], tuple[int, str]]) -> None:
    changed = redefined(catalogs.ENVELOPE_API, "provider_overloaded", retryable=False)
    assert compare("envelope_api", changed) == (
        1,
        "breaking: provider_overloaded: no longer retryable (x-should-retry is now false: clients that retried it will give up)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


def test_the_format_changed(compare: Callable[[object, object], tuple[int, str]]) -> None:
    assert compare("detail_api", with_format(catalogs.DETAIL_API, "problem")) == (
        1,
        "breaking: every code: format detail (application/json) -> problem (application/problem+json) "
        "(every error body changes shape: clients reading detail bodies will not find the code, message or details where they were)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )
    assert compare("envelope_api", with_format(catalogs.ENVELOPE_API, "detail")) == (
        1,
        "breaking: every code: format envelope -> detail "
        "(every error body changes shape: clients reading envelope bodies will not find the code, message or details where they were)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


def test_a_new_code(compare: Callable[[object, object], tuple[int, str]]) -> None:
    assert compare(catalogs.DETAIL_API.without("gone"), "detail_api") == (
        0,
        "info: gone: new code (status 410)\nerrorkit contract: no breaking change, 1 other change from errors.lock.json\n",
    )


def test_an_optional_detail_added(compare: Callable[[object, object], tuple[int, str]]) -> None:
    changed = redefined(
        catalogs.ENVELOPE_API, "quota_exceeded", details={"usage": int, "limit": int, "plan": (str | None, None)}
    )
    assert compare("envelope_api", changed) == (
        0,
        "info: quota_exceeded: new optional detail plan (string or null)\n"
        "errorkit contract: no breaking change, 1 other change from errors.lock.json\n",
    )


def test_message_and_documentation_texts(compare: Callable[[object, object], tuple[int, str]]) -> None:
    changed = redefined(
        catalogs.DETAIL_API,
        "gone",
        message="This resource is gone.",
        title="Resource gone",
        when="Deleted.",
        fix="Stop.",
    )
    assert compare("detail_api", changed) == (
        0,
        'info: gone: message "Gone" -> "This resource is gone."\n'
        'info: gone: title "Gone" -> "Resource gone"\n'
        "info: gone: documentation text changed (when, fix)\n"
        "errorkit contract: no breaking change, 3 other changes from errors.lock.json\n",
    )


def test_doc_urls(compare: Callable[[object, object], tuple[int, str]]) -> None:
    moved = with_format(catalogs.ENVELOPE_API, doc_url="https://docs.example.com/errors/{code}")
    assert compare("envelope_api", moved) == (
        0,
        "info: every code: doc URL template https://docs.orq.ai/errors/{code} -> https://docs.example.com/errors/{code}\n"
        "errorkit contract: no breaking change, 1 other change from errors.lock.json\n",
    )
    own = redefined(catalogs.ENVELOPE_API, "quota_exceeded", doc_url="https://docs.example.com/billing#quotas")
    assert compare("envelope_api", own) == (
        0,
        "info: quota_exceeded: doc URL none -> https://docs.example.com/billing#quotas\n"
        "errorkit contract: no breaking change, 1 other change from errors.lock.json\n",
    )


def test_retry_hints_switched_on(compare: Callable[[object, object], tuple[int, str]]) -> None:
    changed = redefined(catalogs.DETAIL_API, "conflict", retryable=True, retry_after=5)
    assert compare("detail_api", changed) == (
        0,
        "info: conflict: now retryable (x-should-retry: true)\n"
        "info: conflict: Retry-After none -> 5 s\n"
        "errorkit contract: no breaking change, 2 other changes from errors.lock.json\n",
    )


def test_no_change(compare: Callable[[object, object], tuple[int, str]]) -> None:
    for name in BUILT_IN:
        assert compare(name, BUILT_IN[name].without()) == (0, "errorkit contract: no change from errors.lock.json\n")


# -- Routes: an app's codes, by route ---------------------------------------------------------


def shop(*, defined: bool = True, read_locks: bool = True, delete_locks: bool = False, create: bool = False) -> FastAPI:
    """A small app: `order_locked` (unless not `defined`) returned by GET (unless not `read_locks`) and by
    DELETE with `delete_locks`; a POST with `create`."""
    kit = ErrorKit()
    if defined:
        kit.define("order_locked", status=409, message="Order {order_id} is locked.", details={"order_id": str})
    app = FastAPI()

    async def read(order_id: str) -> dict[str, str]:
        return {"id": order_id}

    app.get("/orders/{order_id}")(raises("order_locked")(read) if read_locks else read)

    async def delete(order_id: str) -> None:
        return None

    app.delete("/orders/{order_id}", status_code=204)(raises("order_locked")(delete) if delete_locks else delete)
    if create:

        @app.post("/orders", status_code=201)
        async def create_order(name: str) -> dict[str, str]:
            return {"name": name}

    kit.install(app)
    return app


def test_a_route_gained_a_code(compare: Callable[[object, object], tuple[int, str]]) -> None:
    assert compare(shop(), shop(delete_locks=True)) == (
        1,
        "breaking: order_locked: now returned by DELETE /orders/{order_id}, which did not document it "
        "(clients of that route do not expect it)\n"
        "errorkit contract: 1 breaking change from errors.lock.json (if intended, save the contract again and commit it)\n",
    )


def test_a_route_dropped_a_code(compare: Callable[[object, object], tuple[int, str]]) -> None:
    assert compare(shop(delete_locks=True), shop()) == (
        0,
        "info: order_locked: no longer returned by DELETE /orders/{order_id}\n"
        "errorkit contract: no breaking change, 1 other change from errors.lock.json\n",
    )


def test_routes_added_and_removed(compare: Callable[[object, object], tuple[int, str]]) -> None:
    assert compare(shop(), shop(create=True)) == (
        0,
        "info: POST /orders: new route\nerrorkit contract: no breaking change, 1 other change from errors.lock.json\n",
    )
    assert compare(shop(create=True), shop()) == (
        0,
        "info: validation_error: no longer returned by POST /orders\n"
        "info: POST /orders: route removed\n"
        "errorkit contract: no breaking change, 2 other changes from errors.lock.json\n",
    )


def test_a_code_no_route_declares_yet(
    compare: Callable[[object, object], tuple[int, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A code `kit.define` adds before any route raises it is declared by none (`[]`), not returned by any route
    (`"any"`, as 404 is): a route that declares it later gained it."""
    before, defined, raised = shop(defined=False, read_locks=False), shop(read_locks=False), shop()
    assert compare(before, defined) == (
        0,
        "info: order_locked: new code (status 409)\n"
        "errorkit contract: no breaking change, 1 other change from errors.lock.json\n",
    )
    routes = {code: c["routes"] for code, c in json.loads(cli(capsys, "contract", "save", TARGET)[1])["codes"].items()}
    assert routes == {
        "internal_error": "any",
        "method_not_allowed": "any",
        "not_found": "any",
        "order_locked": [],
        "validation_error": ["DELETE /orders/{order_id}", "GET /orders/{order_id}"],
    }
    gained = (
        "breaking: order_locked: now returned by GET /orders/{order_id}, which did not document it "
        "(clients of that route do not expect it)\n"
    )
    assert compare(defined, raised) == (
        1,
        gained + "errorkit contract: 1 breaking change from errors.lock.json "
        "(if intended, save the contract again and commit it)\n",
    )
    assert compare(before, raised) == (
        1,
        gained + "info: order_locked: new code (status 409)\n"
        "errorkit contract: 1 breaking change, 1 other change from errors.lock.json "
        "(if intended, save the contract again and commit it)\n",
    )
    assert compare(raised, defined) == (
        0,
        "info: order_locked: no longer returned by GET /orders/{order_id}\n"
        "errorkit contract: no breaking change, 1 other change from errors.lock.json\n",
    )


def test_a_code_from_any_route_where_routes_were_named() -> None:
    old = Contract.of(reference_of("tests.test_contract:SHOP"), "tests.test_contract:SHOP")
    code = old.codes["order_locked"]

    def routed(routes: Any) -> Contract:
        return old.model_copy(
            update={"codes": {**old.codes, "order_locked": code.model_copy(update={"routes": routes})}}
        )

    anywhere, nowhere = routed("any"), routed(())
    assert [str(change) for change in diff(old, anywhere)] == [
        "order_locked: now returned by any route (was only GET /orders/{order_id}: clients of the others do not expect it)"
    ]
    assert [(c.kind, c.breaking, str(c)) for c in diff(anywhere, old)] == [
        ("route_dropped_code", False, "order_locked: now returned only by GET /orders/{order_id} (was any route)")
    ]
    assert [(c.kind, c.breaking, str(c)) for c in diff(nowhere, anywhere)] == [
        ("route_gained_code", True, "order_locked: now returned by any route (was none: no client expects it)")
    ]
    assert [(c.kind, c.breaking, str(c)) for c in diff(anywhere, nowhere)] == [
        ("route_dropped_code", False, "order_locked: now returned by no route (was any route)")
    ]


SHOP = shop()


def test_every_kind_is_tested() -> None:
    """The kinds above are all the kinds there are (a new kind needs a test of its own)."""
    assert BREAKING == (
        "format_changed",
        "code_removed",
        "status_changed",
        "detail_removed",
        "detail_type_widened",
        "detail_type_narrowed",
        "detail_now_optional",
        "detail_required_added",
        "detail_now_required",
        "retryable_off",
        "route_gained_code",
    )
    assert INFORMATION == (
        "doc_url_changed",
        "code_added",
        "detail_optional_added",
        "message_changed",
        "title_changed",
        "doc_text_changed",
        "retryable_on",
        "retry_after_changed",
        "route_dropped_code",
        "route_added",
        "route_removed",
    )


# -- Comparing detail types -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "accepted"),
    [
        ({"type": "integer"}, {"type": "integer"}, True),
        ({"type": "number"}, {"type": "integer"}, True),  # narrower
        ({"type": "integer"}, {"type": "number"}, False),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, {"type": "integer"}, True),
        ({"type": "integer"}, {"anyOf": [{"type": "integer"}, {"type": "null"}]}, False),
        ({"type": "string"}, {"type": "string", "enum": ["a", "b"]}, True),
        ({"type": "string", "enum": ["a"]}, {"type": "string"}, False),
        ({"type": "string"}, {"type": "string", "format": "date-time"}, True),
        ({"type": "string", "format": "date-time"}, {"type": "string"}, False),
        ({"type": "array", "items": {"type": "string"}}, {"type": "array", "items": {"type": "integer"}}, False),
        ({"type": "array", "items": {"type": "number"}}, {"type": "array", "items": {"type": "integer"}}, True),
        ({}, {"type": "object"}, True),
        ({"type": "object"}, {}, False),
        ({"type": "string", "maxLength": 10}, {"type": "string", "maxLength": 20}, False),
        (
            {"type": "object", "additionalProperties": True},
            {"type": "object", "additionalProperties": {"type": "string"}},
            True,
        ),
        ({"type": "object", "additionalProperties": {"type": "string"}}, {"type": "object"}, False),
        ({"type": "object", "additionalProperties": False}, {"type": "object", "additionalProperties": False}, True),
        ({"type": "object", "additionalProperties": False}, {"type": "object"}, False),
        ({"type": "integer"}, False, True),  # (a schema no value fits)
    ],
)
def test_which_detail_types_a_client_still_reads(old: dict[str, Any], new: dict[str, Any], accepted: bool) -> None:
    assert accepts(old, new) is accepted


# -- The lock file ----------------------------------------------------------------------------


def test_the_lock_file_is_stable_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in BUILT_IN:
        lock = tmp_path / f"{name}.json"
        assert cli(capsys, "contract", "save", name, "-o", str(lock)) == (
            0,
            f"{lock}: the error contract of {name} ({len(reference_of(name).codes())} codes)\n",
            "",
        )
        text = lock.read_text()
        data = json.loads(text)
        assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        assert data["errorkit_contract"] == 1
        assert list(data["codes"]) == sorted(reference_of(name).codes())
        assert cli(capsys, "contract", "save", name) == (0, text, "")  # (standard output: the same text)
        assert Contract.from_json(text) == Contract.of(reference_of(name), name)

    data = json.loads((tmp_path / "envelope_api.json").read_text())
    assert data["target"] == "envelope_api"
    assert data["format"] == {"media_type": "application/json", "name": "envelope"}
    assert data["doc_url"] == "https://docs.orq.ai/errors/{code}"
    assert data["operations"] == []
    assert data["codes"]["insufficient_scope"] == {
        "details": {
            "key_scope": {
                "always_present": True,
                "json_schema": {"enum": ["PROJECT", "PUBLIC", "WORKSPACE"], "type": "string"},
                "required": True,
                "type": 'one of "PUBLIC", "WORKSPACE", "PROJECT"',
            },
            "required_permission": {
                "always_present": True,
                "json_schema": {"type": "string"},
                "required": True,
                "type": "string",
            },
        },
        "doc_url": None,
        "fix": catalogs.ENVELOPE_API["insufficient_scope"].definition.fix,
        "message": catalogs.ENVELOPE_API["insufficient_scope"].definition.message,
        "retry_after": None,
        "retryable": False,
        "routes": "any",
        "status": 403,
        "title": "Insufficient scope",
        "when": catalogs.ENVELOPE_API["insufficient_scope"].definition.when,
    }


# -- The examples: their committed lock files -------------------------------------------------

EXAMPLES = ["detail_api", "envelope_api"]


@pytest.fixture
def in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "memory://")
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    monkeypatch.chdir(ROOT)


@pytest.mark.usefixtures("in_memory")
@pytest.mark.parametrize("example", EXAMPLES)
def test_the_examples_lock_files_are_current(example: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = f"examples/{example}.errors.lock.json"
    assert cli(capsys, "contract", "check", f"examples.{example}:app", lock) == (
        0,
        f"errorkit contract: no change from {lock}\n",
        "",
    )
    saved = tmp_path / "saved.json"
    assert cli(capsys, "contract", "save", f"examples.{example}:app", "-o", str(saved))[0] == 0
    assert saved.read_text() == (ROOT / lock).read_text()
    # the same list as the app's reference page
    data = json.loads(saved.read_text())
    reference = reference_of(f"examples.{example}:app")
    assert sorted(data["codes"]) == sorted(reference.codes())
    assert {code: c["routes"] for code, c in data["codes"].items() if c["routes"] not in ("any", [])} == {
        code: sorted(routes) for code, routes in reference.returned_by.items()
    }
    assert {code for code, c in data["codes"].items() if c["routes"] == "any"} == reference.anywhere


@pytest.mark.usefixtures("in_memory")
def test_a_breaking_change_to_an_example_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The lock file as it would have been before the app gained `campaign_locked` on a route and a code."""
    data = json.loads((ROOT / "examples/detail_api.errors.lock.json").read_text())
    start = "POST /workspaces/{workspace_id}/campaigns/{campaign_id}/start"
    data["codes"]["campaign_locked"]["routes"].remove(start)
    data["codes"]["campaign_locked"]["status"] = 423
    del data["codes"]["too_many_concurrent_requests"]
    lock = tmp_path / "old.json"
    lock.write_text(json.dumps(data))
    status, out, err = cli(capsys, "contract", "check", "examples.detail_api:app", str(lock))
    assert (status, err) == (1, "")
    assert out == (
        "breaking: campaign_locked: status 423 -> 409 (clients branching on 423 will miss it)\n"
        f"breaking: campaign_locked: now returned by {start}, which did not document it (clients of that route do not expect it)\n"
        "breaking: too_many_concurrent_requests: now returned by POST /workspaces/{workspace_id}/campaigns/{campaign_id}/export, "
        "which did not document it (clients of that route do not expect it)\n"
        "info: too_many_concurrent_requests: new code (status 429)\n"
        f"errorkit contract: 3 breaking changes, 1 other change from {lock} (if intended, save the contract again and commit it)\n"
    )


# -- GitHub annotations -----------------------------------------------------------------------


def test_github_annotations(
    compare: Callable[[object, object], tuple[int, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A summary first (GitHub shows at most 10 errors of a step), then one annotation per change; the whole
    report in Markdown added to the step summary GitHub gives."""
    changed = redefined(catalogs.DETAIL_API, "rate_limited", status=503, message="Over 100% of your quota")
    compare("detail_api", changed)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "summary.md")
    Path("summary.md").write_text("# Earlier step\n\n")
    assert cli(capsys, "contract", "check", TARGET, LOCK, "--format", "github") == (
        1,
        "::error file=errors.lock.json,title=errorkit contract::errorkit contract: 1 breaking change, 1 other change "
        "from errors.lock.json (if intended, save the contract again and commit it)\n"
        "::error file=errors.lock.json,title=errorkit contract::rate_limited: status 429 -> 503 (clients branching on 429 will miss it)\n"
        '::notice file=errors.lock.json,title=errorkit contract::rate_limited: message "Per-workspace rate limit exceeded" -> "Over 100%25 of your quota"\n'
        "errorkit contract: 1 breaking change, 1 other change from errors.lock.json (if intended, save the contract again and commit it)\n",
        "",
    )
    assert Path("summary.md").read_text() == (
        "# Earlier step\n\n"
        "## errorkit contract\n\n"
        "errorkit contract: 1 breaking change, 1 other change from errors.lock.json "
        "(if intended, save the contract again and commit it)\n\n"
        "- **breaking**: rate\\_limited: status 429 -\\> 503 (clients branching on 429 will miss it)\n"
        '- info: rate\\_limited: message "Per-workspace rate limit exceeded" -\\> "Over 100% of your quota"\n\n'
    )
    compare("detail_api", "detail_api")
    assert cli(capsys, "contract", "check", TARGET, LOCK, "--format", "github") == (
        0,
        "errorkit contract: no change from errors.lock.json\n",
        "",
    )
    assert (
        Path("summary.md")
        .read_text()
        .endswith("## errorkit contract\n\nerrorkit contract: no change from errors.lock.json\n\n")
    )
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "missing/summary.md")
    status, out, err = cli(capsys, "contract", "check", TARGET, LOCK, "--format", "github")
    assert (status, out) == (2, "")
    assert (
        err.splitlines()[-1]
        == "errorkit contract check: error: cannot write missing/summary.md: No such file or directory"
    )


def test_github_escapes() -> None:
    change = Change("message_changed", "x", False, 'message "a\r\nb: 5%, c" -> "d"')
    assert github_line(change, Path("locks/a:b,c.json")) == (
        '::notice file=locks/a%3Ab%2Cc.json,title=errorkit contract::x: message "a%0D%0Ab: 5%25, c" -> "d"'
    )


# -- Usage errors: exit 2, one line, no traceback ---------------------------------------------


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read errors.lock.json: No such file or directory"),
        (
            "{not json",
            "errors.lock.json is not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        ),
        ("[1, 2]", 'errors.lock.json is not an errorkit contract (no "errorkit_contract" key)'),
        (
            '{"errorkit_contract": 2, "codes": {}}',
            "errors.lock.json is a contract of version 2, and this errorkit reads version 1: "
            "save it again with `errorkit contract save`",
        ),
        (
            '{"errorkit_contract": 1, "target": "detail_api", "codes": {}}',
            "errors.lock.json is not a valid errorkit contract: format: Field required",
        ),
        (
            '{"errorkit_contract": 1, "target": "detail_api", "format": {"name": "detail", "media_type": '
            '"application/json"}, "doc_url": null, "operations": [], "codes": {"x": {"status": "402"}}}',
            "errors.lock.json is not a valid errorkit contract: codes.x.status: Input should be a valid integer",
        ),
        (
            '{"errorkit_contract": 1, "codes": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "errors.lock.json is not a valid errorkit contract: nested too deeply",
        ),
    ],
)
def test_a_lock_file_that_cannot_be_read(
    content: str | None, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    if content is not None:
        Path(LOCK).write_text(content)
    status, out, err = cli(capsys, "contract", "check", "detail_api", LOCK)
    assert (status, out) == (2, "")
    assert err.splitlines()[-1] == f"errorkit contract check: error: {said}"
    assert "Traceback" not in err


def test_an_unknown_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for argv, said in [
        (
            ["save", "nope"],
            "unknown catalog 'nope': use one of ['detail_api', 'envelope_api', 'generic'] or module:attribute",
        ),
        (
            ["save", "no_such_module:kit"],
            "cannot load 'no_such_module:kit': ModuleNotFoundError: No module named 'no_such_module'",
        ),
        (
            ["check", "tests.test_contract:LOCK", LOCK],
            "'tests.test_contract:LOCK' is a str, not a Registry, an ErrorKit or an app",
        ),
    ]:
        status, out, err = cli(capsys, "contract", *argv)
        assert (status, out) == (2, "")
        assert err.splitlines()[-1] == f"errorkit contract {argv[0]}: error: {said}"


def test_a_lock_file_of_another_target(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    status, out, err = cli(capsys, "contract", "check", "generic", "examples/envelope_api.errors.lock.json")
    assert (status, out) == (2, "")
    assert err.splitlines()[-1] == (
        "errorkit contract check: error: examples/envelope_api.errors.lock.json is the contract of "
        'examples.envelope_api:app, not of generic (if examples.envelope_api:app was renamed, change "target" in '
        "examples/envelope_api.errors.lock.json in the same commit)"
    )


class Opaque:
    """A type pydantic can check (arbitrary_types_allowed) but not describe in a JSON Schema."""


class OpaqueDetails(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    thing: Opaque


def test_a_contract_that_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        THIS, "SUBJECT", redefined(catalogs.DETAIL_API, "conflict", details=OpaqueDetails), raising=False
    )
    status, out, err = cli(capsys, "contract", "save", TARGET)
    assert (status, out) == (2, "")
    assert err.splitlines()[-1] == (
        "errorkit contract save: error: the details of 'conflict' have no JSON Schema: PydanticInvalidForJsonSchema: "
        "Cannot generate a JsonSchema for core_schema.IsInstanceSchema (<class 'tests.test_contract.Opaque'>)"
    )
    assert "Traceback" not in err


def test_a_lock_file_that_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cli(capsys, "contract", "save", "generic", "-o", str(tmp_path / "missing" / LOCK))
    assert (status, out) == (2, "")
    assert err.splitlines()[-1] == (
        f"errorkit contract save: error: cannot write {tmp_path / 'missing' / LOCK}: No such file or directory"
    )


# -- The real command -------------------------------------------------------------------------


def test_the_errorkit_command(tmp_path: Path) -> None:
    errorkit = Path(sys.executable).parent / "errorkit"
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": "memory://"}
    lock = tmp_path / LOCK

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(errorkit), "contract", *argv], capture_output=True, text=True, cwd=ROOT, env=env)

    saved = run("save", "examples.envelope_api:app", "-o", str(lock))
    assert (saved.returncode, saved.stdout, saved.stderr) == (
        0,
        f"{lock}: the error contract of examples.envelope_api:app (31 codes)\n",
        "",
    )
    assert lock.read_text() == (ROOT / "examples/envelope_api.errors.lock.json").read_text()
    data = json.loads(lock.read_text())
    data["codes"]["quota_exceeded"]["retryable"] = True
    lock.write_text(json.dumps(data))
    checked = run("check", "examples.envelope_api:app", str(lock), "--format", "github")
    assert (checked.returncode, checked.stderr) == (1, "")
    assert checked.stdout == (
        f"::error file={lock},title=errorkit contract::errorkit contract: 1 breaking change from {lock} "
        "(if intended, save the contract again and commit it)\n"
        f"::error file={lock},title=errorkit contract::quota_exceeded: no longer retryable "
        "(x-should-retry is now false: clients that retried it will give up)\n"
        f"errorkit contract: 1 breaking change from {lock} (if intended, save the contract again and commit it)\n"
    )
    missing = run("check", "examples.envelope_api:app", str(tmp_path / "none.json"))
    assert missing.returncode == 2
    assert missing.stderr.splitlines()[-1] == (
        f"errorkit contract check: error: cannot read {tmp_path / 'none.json'}: No such file or directory"
    )
    assert "Traceback" not in missing.stderr

    closed = subprocess.run(
        f"{errorkit} contract save envelope_api >&-", shell=True, capture_output=True, text=True, env=env
    )
    assert (closed.returncode, closed.stderr) == (
        2,
        "errorkit contract save: error: cannot write standard output: Bad file descriptor\n",
    )
