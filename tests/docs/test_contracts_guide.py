"""docs/guides/contracts.md: the commands it shows, run by the real `errorkit` on its example app, and every
output block and table row it prints, against what the command answers.

Snippets: contracts/app.py and contracts/app_changed.py (loaded, and imported by the commands), contracts/save.sh
and contracts/check.sh (run), contracts/errors.yml (read: it runs check.sh's command, as annotations).
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from fastapi.testclient import TestClient

from errorkit import ErrorKit, Registry, catalogs
from errorkit._errors.contract import Contract, diff
from tests.docs.support import ROOT, commands, load, page, snippet_path
from tests.test_contract import redefined, shop, with_format

GUIDE = "guides/contracts.md"
BIN = ROOT / ".venv" / "bin"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", page(GUIDE), flags=re.S | re.M)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A reader's folder: app.py, beside which the commands run."""
    shutil.copy(snippet_path("contracts/app.py"), tmp_path / "app.py")
    return tmp_path


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}:/usr/bin:/bin", "REDIS_URL": "memory://"}
    env.pop("GITHUB_STEP_SUMMARY", None)  # (in GitHub Actions: the checks' reports stay out of the job's summary)
    return subprocess.run(command, shell=True, capture_output=True, text=True, cwd=cwd, env=env)


def test_the_example_apps_answer_as_the_page_says() -> None:
    os.environ.setdefault("REDIS_URL", "memory://")
    for name, status in [("contracts/app.py", 409), ("contracts/app_changed.py", 423)]:
        app = load(name)["app"]
        with TestClient(app) as client:
            refused = client.patch("/orders/o_1")
            assert (refused.status_code, refused.json()["code"]) == (status, "order_locked")
            deleted = client.delete("/orders/o_1")
            assert deleted.status_code == (204 if status == 409 else 423)


def test_save_then_check_then_break(folder: Path) -> None:
    save, add = commands("contracts/save.sh")
    assert add == "git add errors.lock.json"
    saved = run(save, folder)
    assert (saved.returncode, saved.stdout, saved.stderr) == (
        0,
        "errors.lock.json: the error contract of app:app (5 codes)\n",
        "",
    )
    assert "The command prints `errors.lock.json: the error contract of app:app (5 codes)`" in page(GUIDE)
    lock = json.loads((folder / "errors.lock.json").read_text())
    shown = json.loads(blocks("json")[0])
    assert lock["codes"]["order_locked"] == shown
    assert blocks("json")[0] == json.dumps(shown, indent=2, sort_keys=True) + "\n"
    assert lock["format"] == {"media_type": "application/json", "name": "detail"}
    assert lock["doc_url"] == "https://api.example.com/errors/{code}"
    assert lock["operations"] == ["DELETE /orders/{order_id}", "GET /orders/{order_id}", "PATCH /orders/{order_id}"]
    assert lock["errorkit_contract"] == 1
    assert lock["target"] == "app:app"
    assert '(`"target": "app:app"`' in page(GUIDE)
    assert {code: c["routes"] for code, c in lock["codes"].items() if c["routes"] == "any"} == {
        "internal_error": "any",
        "method_not_allowed": "any",
        "not_found": "any",
    }
    assert sorted(lock["codes"]) == [
        "internal_error",
        "method_not_allowed",
        "not_found",
        "order_locked",
        "validation_error",
    ]

    [check] = commands("contracts/check.sh")
    unchanged = run(check, folder)
    assert (unchanged.returncode, unchanged.stdout, unchanged.stderr) == (0, blocks("text")[0], "")

    shutil.copy(snippet_path("contracts/app_changed.py"), folder / "app.py")  # (the reader edits app.py)
    broken = run(check, folder)
    assert (broken.returncode, broken.stdout, broken.stderr) == (1, blocks("text")[1], "")
    annotated = run(f"{check.split(' #')[0]} --format github", folder)
    assert (annotated.returncode, annotated.stdout, annotated.stderr) == (1, blocks("text")[2], "")


def test_the_workflow_runs_the_check_as_annotations() -> None:
    workflow = yaml.safe_load(snippet_path("contracts/errors.yml").read_text())
    steps = workflow["jobs"]["contract"]["steps"]
    [check] = commands("contracts/check.sh")
    assert steps[-1] == {"run": f"{check} --format github", "env": {"REDIS_URL": "memory://"}}
    assert [step.get("uses") for step in steps[:2]] == ["actions/checkout@v4", "actions/setup-python@v5"]


def test_the_usage_errors_shown(folder: Path) -> None:
    expected = blocks("text")[3].splitlines()
    (folder / "errors.lock.json").write_text("")
    empty = run("errorkit contract check app:app errors.lock.json", folder)
    (folder / "errors.lock.json").write_text('{"errorkit_contract": 2}')
    other = run("errorkit contract check app:app errors.lock.json", folder)
    missing = run("errorkit contract check myapp:app errors.lock.json", folder)
    assert run("errorkit contract save app:app -o errors.lock.json", folder).returncode == 0
    shutil.copy(folder / "app.py", folder / "orders.py")  # (the app moved, its lock file not told)
    moved = run("errorkit contract check orders:app errors.lock.json", folder)
    for done in (empty, other, missing, moved):
        assert (done.returncode, done.stdout) == (2, "")
        assert "Traceback" not in done.stderr
    assert [done.stderr.splitlines()[-1] for done in (empty, other, missing, moved)] == expected


def reports() -> set[str]:
    """Every line the changes of the table report (the mutations of tests/test_contract.py)."""

    def contract(target: Registry | Any) -> Contract:
        if isinstance(target, Registry):
            return Contract.of(ErrorKit(catalog=target).reference(), "catalog")
        return _app_contract(target)

    detail, envelope = catalogs.DETAIL_API, catalogs.ENVELOPE_API
    pairs: list[tuple[Any, Any]] = [
        (detail, with_format(detail, "problem")),
        (detail, detail.without("gone")),
        (envelope, redefined(envelope, "quota_exceeded", status=429)),
        (envelope, redefined(envelope, "quota_exceeded", details={"usage": int})),
        (detail, redefined(detail, "validation_error", details={"issues": (list[dict[str, Any]] | str | None, None)})),
        (envelope, redefined(envelope, "wrong_project", details={"key_project_id": (str, None), "resource_project_id": str})),
        (detail, redefined(detail, "campaign_locked", details={"campaign_id": str})),
        (envelope, redefined(envelope, "rate_limit_exceeded", details={"retry_after_seconds": int, "limit": int | None})),
        (envelope, redefined(envelope, "provider_overloaded", retryable=False)),
        (shop(), shop(delete_locks=True)),
        (detail.without("gone"), detail),
        (envelope, redefined(envelope, "quota_exceeded", details={"usage": int, "limit": int, "plan": (str | None, None)})),
        (envelope, redefined(envelope, "insufficient_scope", details={"required_permission": str, "key_scope": Literal["WORKSPACE", "PROJECT"]})),
        (detail, redefined(detail, "gone", message="This resource is gone.", title="Resource gone", when="x", fix="y")),
        (envelope, redefined(envelope, "quota_exceeded", doc_url="https://docs.example.com/billing#quotas")),
        (detail, redefined(detail, "conflict", retryable=True, retry_after=5)),
        (shop(delete_locks=True), shop()),
        (shop(), shop(create=True)),
        (shop(create=True), shop()),
    ]  # fmt: skip
    return {str(change) for old, new in pairs for change in diff(contract(old), contract(new))}


def _app_contract(app: Any) -> Contract:
    from errorkit._app.openapi import app_reference, installed_handler

    handler = installed_handler(app)
    assert handler is not None
    return Contract.of(app_reference(app, handler), "app")


def test_the_table_of_changes() -> None:
    text = page(GUIDE)
    table = text[text.index("| change | breaking | reported as |") : text.index("Routes are compared only")]
    rows = [row.split(" | ") for row in table.strip().splitlines()[2:]]
    assert len(rows) == 19
    assert [row[1] for row in rows] == ["yes"] * 11 + ["no"] * 8
    known = reports()
    for row in rows:
        for shown in re.findall(r"`([^`]+)`", row[2]):
            if shown.endswith("(...)") or shown.endswith(": ...)"):
                prefix = shown.removesuffix("...)")
                assert any(line.startswith(prefix) for line in known), shown
            else:
                assert shown in known, shown
