"""Details for every built-in code that has any, used to raise each one in tests."""

from datetime import UTC, datetime
from typing import Any

from errorkit import APIError, ErrorKit

SAMPLE_DETAILS: dict[str, dict[str, Any]] = {
    "expired_api_key": {"expired_at": datetime(2026, 1, 31, 12, 0, tzinfo=UTC)},
    "insufficient_scope": {"required_permission": "deployments:write", "key_scope": "PROJECT"},
    "wrong_project": {"key_project_id": "proj_a", "resource_project_id": "proj_b"},
    "workspace_disabled": {"reason": "billing"},
    "quota_exceeded": {"usage": 3, "limit": 3},
    "invalid_request_body": {"issues": [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}]},
    "invalid_request_parameters": {"issues": [{"loc": ["query", "limit"], "msg": "bad", "type": "int_parsing"}]},
    "validation_error": {"issues": [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}]},
    "unsupported_engine": {"engine": "gpt-9", "supported": ["gpt-4o", "claude-sonnet"]},
    "variant_not_resolved": {"context_keys": ["locale", "tier"]},
    "model_configuration_missing": {"model_db_id": "mdl_123"},
    "provider_credential_invalid": {"provider": "openai", "field": "api_key"},
    "deployment_not_found": {"key": "customer-support"},
    "integration_not_found": {"identifier": "int_42"},
    "prompt_snippet_not_found": {"key": "greeting"},
    "rate_limit_exceeded": {"retry_after_seconds": 30, "limit": 100},
    "provider_error": {"provider": "openai", "provider_status": 500, "raw": "upstream exploded"},
    "provider_timeout": {"provider": "anthropic", "timeout_ms": 30000},
    "provider_overloaded": {"provider": "anthropic"},
    "not_implemented": {"feature": "batch_mode"},
    "service_unavailable": {"dependency": "redis"},
    "request_timeout": {"timeout_ms": 60000},
}


def sample_error(kit: ErrorKit, code: str) -> APIError:
    """The error `code` of `kit`, with every detail its definition declares."""
    fields = kit.registry[code].definition.detail_fields
    return kit.error(code, **{k: v for k, v in SAMPLE_DETAILS.get(code, {}).items() if k in fields})
