"""guides/openapi.md: the documents of docs_src/openapi/ apps, compared with what the page shows and says."""

import json
import re
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.security import APIKeyHeader
from fastapi.testclient import TestClient

import errorkit
from errorkit import APIKeyAuth, MemoryBackend
from tests.docs.support import check_exchange, commands, exchange, fences, load, page, same_json

PAGE = "guides/openapi.md"
START = "/campaigns/{campaign_id}/start"


def document(app: Any) -> dict[str, Any]:
    with TestClient(app) as client:
        response = client.get("/openapi.json")
        assert response.status_code == 200
        again = client.get("/openapi.json").json()
    assert again == response.json()  # computed once, served as it is
    return response.json()


def test_raises_on_routes_and_dependencies() -> None:
    module = load("openapi/app.py")
    doc = document(module["app"])
    responses = doc["paths"][START]["post"]["responses"]
    assert list(responses) == ["200", "400", "404", "409", "500"]
    (shown,) = fences(PAGE, "json")
    same_json(json.loads(shown), responses["409"])
    codes = {
        status: list(r["content"]["application/json"]["examples"]) for status, r in responses.items() if status != "200"
    }
    assert codes == {
        "400": ["invalid_request_parameters"],
        "404": ["campaign_not_found"],
        "409": ["campaign_locked"],
        "500": ["internal_error"],
    }
    not_found = responses["404"]["content"]["application/json"]["examples"]["campaign_not_found"]["value"]
    assert not_found["error"]["details"] == {"campaign_id": "<campaign_id>"}
    assert responses["200"]["headers"]["X-Request-ID"]["required"] is True
    assert doc["components"]["schemas"]["Error"] == module["kit"].format.schema()
    assert "HTTPValidationError" not in json.dumps(doc) and "ValidationError" not in doc["components"]["schemas"]
    with TestClient(module["app"]) as client:
        assert client.post("/campaigns/c_1/start").json() == {"campaign_id": "c_1", "status": "running"}


def test_validation_is_documented_in_the_format_and_status_of_the_kit() -> None:
    for format, status in (("detail", "422"), ("problem", "422"), ("envelope", "400")):
        kit = errorkit.ErrorKit(format=format)
        app = FastAPI()

        @app.post("/items")
        async def create(item: dict[str, int], limit: int = 1) -> None: ...

        kit.install(app)
        responses = document(app)["paths"]["/items"]["post"]["responses"]
        media_type = "application/problem+json" if format == "problem" else "application/json"
        examples = responses[status]["content"][media_type]["examples"]
        expected = {
            "detail": ["validation_error", "invalid_json"],
            "problem": ["validation_error"],
            "envelope": ["invalid_request_parameters", "invalid_request_body"],
        }[format]
        assert [c for c in examples if c != "invalid_json"] == [c for c in expected if c != "invalid_json"], format
        assert "$ref" in responses[status]["content"][media_type]["schema"]


def stage_table() -> dict[str, tuple[list[str], str]]:
    text = page(PAGE)
    table = text[text.index("| status | codes | added by |") :].split("\n\n")[0].splitlines()[2:]
    rows = {}
    for row in table:
        status, codes, by = (cell.strip() for cell in row.strip("|").split("|"))
        rows[status] = (re.findall(r"`(\w+)`", codes), by)
    return rows


def test_what_the_stages_add() -> None:
    module = load("openapi/stages.py")
    doc = document(module["app"])
    operation = doc["paths"]["/workspaces/{workspace_id}/campaigns"]["post"]
    responses = operation["responses"]
    documented = {
        s: list(r["content"]["application/problem+json"]["examples"]) for s, r in responses.items() if s != "200"
    }
    assert documented == {status: codes for status, (codes, _) in stage_table().items()}

    assert doc["components"]["securitySchemes"] == {
        "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "bearer": {"type": "http", "scheme": "bearer"},
    }
    assert operation["security"] == [{"apiKeyHeader": []}, {"bearer": []}]
    (idempotency_key,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert (idempotency_key["in"], idempotency_key["required"]) == ("header", False)
    rate_headers = {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
    for status, response in responses.items():
        assert rate_headers <= set(response["headers"]), status
    assert {"Retry-After", "retry-after-ms"} <= set(responses["429"]["headers"])
    assert "WWW-Authenticate" in responses["401"]["headers"]

    health = doc["paths"]["/health"]["get"]
    assert "security" not in health and list(health["responses"]) == ["200", "500"]


def test_project_paths_and_own_security() -> None:
    auth = APIKeyAuth(MemoryBackend(), public_paths=["/openapi.json"])
    app = FastAPI()
    header = APIKeyHeader(name="X-Tenant")

    @app.get("/projects/{project_id}/runs")
    async def runs(project_id: str, tenant: str = Depends(header), _: Any = Depends(auth.require())) -> None: ...

    @app.get("/projects/{project_id}/logs")
    async def logs(project_id: str) -> None: ...

    errorkit.ErrorKit(format="envelope").install(app, auth=auth)
    doc = document(app)
    operation = doc["paths"]["/projects/{project_id}/runs"]["get"]
    without_require = doc["paths"]["/projects/{project_id}/logs"]["get"]["responses"]["403"]
    assert list(without_require["content"]["application/json"]["examples"]) == ["workspace_disabled"]
    assert "wrong_project" in operation["responses"]["403"]["content"]["application/json"]["examples"]
    assert "insufficient_scope" not in operation["responses"]["403"]["content"]["application/json"]["examples"]
    assert operation["security"] == [
        {"APIKeyHeader": [], "apiKeyHeader": []},
        {"APIKeyHeader": [], "bearer": []},
    ]


def test_an_app_model_called_error_keeps_its_name() -> None:
    module = load("openapi/own_error_model.py")
    doc = document(module["app"])
    assert list(doc["components"]["schemas"]) == ["Error", "Report", "ErrorkitError"]
    assert doc["components"]["schemas"]["Error"]["properties"].keys() == {"line", "text"}
    for status, response in doc["paths"]["/imports/check"]["post"]["responses"].items():
        if status != "200":
            assert response["content"]["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorkitError"
            }


def test_a_custom_openapi_assigned_before_install_is_wrapped() -> None:
    module = load("openapi/custom.py")
    doc = document(module["app"])
    assert doc["info"] == {"title": "Campaigns", "version": "2.1", "x-logo": {"url": "https://example.com/logo.png"}}
    assert list(doc["paths"]["/campaigns/{campaign_id}"]["get"]["responses"]) == ["200", "400", "500"]

    late = FastAPI()
    errorkit.ErrorKit().install(late)
    late.openapi = lambda: {"openapi": "3.1.0", "info": {"title": "late", "version": "1"}, "paths": {}}
    assert "components" not in document(late)  # assigned after install(): no errors


def test_starlette_schemas() -> None:
    module = load("openapi/starlette_app.py")
    doc = document(module["app"])
    operation = doc["paths"]["/v2/deployments"]["post"]
    assert list(doc["paths"]) == ["/v2/deployments"]  # the document's own route is left out
    assert list(operation["responses"]) == ["201", "400", "409", "500"]
    assert list(operation["responses"]["400"]["content"]["application/json"]["examples"]) == ["invalid_request_body"]
    assert doc["components"]["schemas"]["DeploymentIn"]["required"] == ["key", "model"]
    assert set(doc["components"]["schemas"]) == {"DeploymentIn", "Error"}
    with TestClient(module["app"]) as client:
        check_exchange(exchange(PAGE, "POST /v2/deployments HTTP/1.1"), client)
        assert client.post("/v2/deployments", json={"key": "chat", "model": "m"}).json()["error"]["details"] == {
            "key": "chat"
        }
        created = client.post("/v2/deployments", json={"key": "search", "model": "m"})
        assert (created.status_code, created.json()) == (201, {"key": "search", "model": "m"})


def test_the_openapi_extra_brings_pyyaml() -> None:
    """The install line of the Starlette section: the `openapi` extra is PyYAML, which kit.schemas() reads
    docstrings with."""
    from pathlib import Path

    assert commands("openapi/install.sh") == ['pip install "errorkit[openapi]"']
    pyproject = (Path(__file__).parent.parent.parent / "pyproject.toml").read_text()
    assert re.search(r'^openapi = \["pyyaml>=', pyproject, re.M)
    import yaml  # what the extra installs, and the Starlette snippet's document needs

    assert yaml.safe_load(load("openapi/starlette_app.py")["create"].__doc__)["summary"] == "Create a deployment"
