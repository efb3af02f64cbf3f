"""The Orq.ai API's error reference (`{"error": {"code", "message", "doc_url", "details"}}`): its 23 codes.

"When" and "fix" are the reference's texts verbatim. The reference states one message
(`invalid_api_key`); every other message is the first sentence of the code's "When this
occurs" text. The plan table behind `quota_exceeded` is `PLAN_LIMITS`.
"""

from datetime import datetime

from errorkit._common.principal import KeyScope
from errorkit._errors.registry import Registry
from errorkit.catalogs.generic import GENERIC, Issues

#: Plan maximums per entity (None: unlimited). Knowledge bases and memory stores share one limit.
PLAN_LIMITS: dict[str, dict[str, int | None]] = {
    "Deployments": {"Developer": 3, "Growth": None, "Enterprise": None},
    "Agents": {"Developer": 3, "Growth": None, "Enterprise": None},
    "Knowledge Bases + Memory Stores": {"Developer": 2, "Growth": None, "Enterprise": None},
    "Webhooks": {"Developer": 1, "Growth": 5, "Enterprise": None},
}

_REDEFINED = ("internal_error", "not_implemented", "service_unavailable", "request_timeout", "invalid_request_body")

ENVELOPE_API = Registry(
    "envelope_api",
    include=[GENERIC.without(*_REDEFINED)],
    format="envelope",
    doc_url="https://docs.orq.ai/errors/{code}",
)
"""A published API error reference in the `envelope` format (`{"error": {"code", "message", "doc_url",
"details"}}`), exactly: its 23 codes and doc URLs. For a server that must answer with exactly those errors.
"""

ENVELOPE_API.define(
    "authentication_required",
    status=401,
    message="The request did not include a valid authentication header.",
    when="The request did not include a valid authentication header.",
    fix="Include a valid Orq.ai API key in every request using the Authorization header:\nAuthorization: Bearer sk-orq-...",
    group="authentication",
)
ENVELOPE_API.define(
    "invalid_api_key",
    status=401,
    message="The provided API key is invalid.",
    when="The API key supplied in the Authorization header is invalid.",
    fix="Verify the key is copied correctly with no leading or trailing whitespace.",
    group="authentication",
)
ENVELOPE_API.define(
    "expired_api_key",
    status=401,
    message="The API key has passed its expiration date.",
    when="The API key has passed its expiration date. The error details include expired_at (ISO timestamp).",
    fix="Create a new API key and update it wherever it is used.",
    group="authentication",
    details={"expired_at": datetime},
)
ENVELOPE_API.define(
    "insufficient_scope",
    status=403,
    message="The API key does not have the permission required for the requested operation.",
    when="The API key does not have the permission required for the requested operation. The error details include the required permission and the key’s scope (PUBLIC, WORKSPACE, or PROJECT).",
    fix="Use a key with broader permissions, or create a new key with the required permission level.",
    group="authentication",
    details={"required_permission": str, "key_scope": KeyScope},
)
ENVELOPE_API.define(
    "wrong_project",
    status=403,
    message="The API key is scoped to a specific project, but the resource being accessed belongs to a different project.",
    when="The API key is scoped to a specific project, but the resource being accessed belongs to a different project. The error details include key_project_id and resource_project_id.",
    fix="Use an API key scoped to the correct project.",
    group="authentication",
    details={"key_project_id": str, "resource_project_id": str},
)
ENVELOPE_API.define(
    "workspace_disabled",
    status=403,
    message="The workspace associated with the API key has been disabled.",
    when="The workspace associated with the API key has been disabled. The error details may include a reason.",
    fix="Contact support@orq.ai to investigate the workspace status.",
    group="authentication",
    details={"reason": (str | None, None)},
)
ENVELOPE_API.define(
    "quota_exceeded",
    status=402,
    message="The workspace has reached the limit for a resource on its current plan.",
    when="The workspace has reached the limit for a resource on its current plan. The error details include usage (current count) and limit (plan maximum).",
    fix="Delete unused resources to free up quota, or upgrade the plan. Knowledge Bases and Memory Stores share a single combined limit. To increase limits, upgrade the plan.",
    group="quota",
    details={"usage": int, "limit": int},
)
ENVELOPE_API.define(
    "invalid_request_body",
    status=400,
    message="The request body failed schema validation.",
    when="The request body failed schema validation. The error details include an issues array describing each validation failure.",
    fix="Inspect the issues array in the error response to identify the fields that failed validation. Correct the request body to match the expected schema.",
    group="validation",
    details={"issues": Issues},
)
ENVELOPE_API.define(
    "unsupported_engine",
    status=400,
    message="The model value in the request references an engine that is not supported.",
    when="The model value in the request references an engine that is not supported. The error details include the engine that was requested and a supported array of valid engines.",
    fix="Use one of the model identifiers from the supported list, or check the Models page for available options.",
    group="validation",
    details={"engine": str, "supported": list[str]},
)
ENVELOPE_API.define(
    "variant_not_resolved",
    status=422,
    message="The deployment has multiple variants configured, but none of them matched the context supplied in the request.",
    when="The deployment has multiple variants configured, but none of them matched the context supplied in the request. The error details include context_keys that were evaluated.",
    fix="Ensure the context object in the request contains the keys the deployment’s variant rules expect.",
    group="validation",
    details={"context_keys": list[str]},
)
ENVELOPE_API.define(
    "model_configuration_missing",
    status=422,
    message="The model assigned to the deployment could not be loaded.",
    when="The model assigned to the deployment could not be loaded. The error details include model_db_id.",
    fix="Verify the model assigned to the deployment is still available. If the issue persists, contact support@orq.ai.",
    group="validation",
    details={"model_db_id": str},
)
ENVELOPE_API.define(
    "provider_credential_invalid",
    status=422,
    message="The provider credential stored for the integration could not be decrypted or is malformed.",
    when="The provider credential stored for the integration could not be decrypted or is malformed. The error details include the provider name and the field that failed.",
    fix="Re-enter the credential for the affected provider in Integrations.",
    group="validation",
    details={"provider": str, "field": str},
)
ENVELOPE_API.define(
    "deployment_not_found",
    status=404,
    message="No deployment exists with the key supplied in the request.",
    when="No deployment exists with the key supplied in the request. The error details include the key that was looked up.",
    fix="Verify the deployment key against the list in AI Studio > Deployments. Keys are case-sensitive.",
    group="not_found",
    details={"key": str},
)
ENVELOPE_API.define(
    "integration_not_found",
    status=404,
    message="The integration identifier referenced in the request does not exist in the workspace.",
    when="The integration identifier referenced in the request does not exist in the workspace. The error details include the identifier.",
    fix="Check Integrations to confirm the integration exists. Ensure the identifier is spelled correctly.",
    group="not_found",
    details={"identifier": str},
)
ENVELOPE_API.define(
    "prompt_snippet_not_found",
    status=404,
    message="A prompt template references a snippet with a key that does not exist.",
    when="A prompt template references a snippet with a key that does not exist. The error details include the key that was looked up.",
    fix="Create the missing snippet or update the prompt template to reference an existing snippet key.",
    group="not_found",
    details={"key": str},
)
ENVELOPE_API.define(
    "rate_limit_exceeded",
    status=429,
    message="Requests are being sent faster than the workspace’s allowed rate.",
    when="Requests are being sent faster than the workspace’s allowed rate. The error details include retry_after_seconds (how long to wait before retrying) and optionally limit (the rate limit threshold).",
    fix="Wait at least retry_after_seconds before retrying. Implement exponential backoff in the application. To request a limit increase, contact support@orq.ai.",
    group="rate_limiting",
    details={"retry_after_seconds": int, "limit": (int | None, None)},
)
ENVELOPE_API.define(
    "provider_error",
    status=502,
    message="The upstream AI provider returned an error response.",
    when="The upstream AI provider returned an error response. The error details include the provider name, the provider_status HTTP code when available, and a raw error string when available.",
    fix="Check the provider’s status page for active incidents. Retry the request after a short delay.",
    group="provider",
    details={"provider": str, "provider_status": (int | None, None), "raw": (str | None, None)},
)
ENVELOPE_API.define(
    "provider_timeout",
    status=504,
    message="The upstream provider did not respond within the allowed time window.",
    when="The upstream provider did not respond within the allowed time window. The error details include the provider name and timeout_ms (the timeout that was exceeded).",
    fix="Retry the request. For consistently slow responses, consider reducing prompt or context length or switching to a faster model.",
    group="provider",
    details={"provider": str, "timeout_ms": int},
)
ENVELOPE_API.define(
    "provider_overloaded",
    status=503,
    message="The upstream provider is temporarily overloaded and rejected the request.",
    when="The upstream provider is temporarily overloaded and rejected the request. The error details include the provider name.",
    fix="Retry with exponential backoff.",
    group="provider",
    details={"provider": str},
)
ENVELOPE_API.define(
    "internal_error",
    status=500,
    message="An unexpected error occurred inside Orq.ai.",
    when="An unexpected error occurred inside Orq.ai. This is not caused by the request itself.",
    fix="Retry the request. If the error persists, contact support@orq.ai.",
    group="server",
)
ENVELOPE_API.define(
    "not_implemented",
    status=501,
    message="The requested feature is not yet implemented.",
    when="The requested feature is not yet implemented. The error details include the feature name.",
    fix="Contact support@orq.ai for more information.",
    group="server",
    details={"feature": str},
)
ENVELOPE_API.define(
    "service_unavailable",
    status=503,
    message="A required internal dependency (database, cache, etc.) is temporarily unavailable.",
    when="A required internal dependency (database, cache, etc.) is temporarily unavailable. The error details may include the dependency name.",
    fix="Retry the request after a short delay. Check the Orq.ai status page for active incidents.",
    group="server",
    details={"dependency": (str | None, None)},
)
ENVELOPE_API.define(
    "request_timeout",
    status=408,
    message="The request took longer than the server’s maximum allowed processing time.",
    when="The request took longer than the server’s maximum allowed processing time. The error details include timeout_ms.",
    fix="Reduce the complexity of the request: shorter prompts, fewer context tokens, or a smaller max_tokens value.",
    group="server",
    details={"timeout_ms": int},
)

for _status, _code in [
    (401, "authentication_required"),
    (408, "request_timeout"),
    (429, "rate_limit_exceeded"),
    (500, "internal_error"),
    (501, "not_implemented"),
    (503, "service_unavailable"),
]:
    ENVELOPE_API.map_status(_status, _code)
