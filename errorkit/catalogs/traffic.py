"""Default definitions of the codes errorkit's stages produce (auth, rate limiting, idempotency,
quotas, concurrency limits).

Used for a code the app's catalog does not define (the two published references each define some
of them); a catalog's own definition always wins. `STAGE_CODES` holds all of them.
"""

from datetime import datetime

from errorkit._errors.registry import Registry

AUTH_CODES = Registry("auth")

AUTH_CODES.define(
    "invalid_api_key",
    status=401,
    message="The provided API key is invalid.",
    when="The API key is malformed, unknown or revoked.",
    fix="Check the key for typos and whitespace, or create a new one.",
    group="authentication",
)
AUTH_CODES.define(
    "expired_api_key",
    status=401,
    message="The API key has passed its expiration date.",
    when="The API key has passed its expiration date. The error details include expired_at.",
    fix="Create a new API key and update it wherever it is used.",
    group="authentication",
    details={"expired_at": datetime},
)
AUTH_CODES.define(
    "insufficient_scope",
    status=403,
    message="The API key does not have the permission required for the requested operation.",
    when="The key lacks the required permission. The error details include required_permission and key_scope.",
    fix="Use a key with the required permission.",
    group="authentication",
    details={"required_permission": str, "key_scope": str},
)
AUTH_CODES.define(
    "workspace_forbidden",
    status=403,
    message="Workspace not accessible by this API key",
    when="The key belongs to a different workspace than the one in the path. "
    "The error details include key_workspace_id and resource_workspace_id.",
    fix="Use a key of the workspace you are addressing.",
    group="authentication",
    details={"key_workspace_id": str, "resource_workspace_id": str},
)
AUTH_CODES.define(
    "wrong_project",
    status=403,
    message="The API key is scoped to a specific project, "
    "but the resource being accessed belongs to a different project.",
    when="The key is scoped to another project. The error details include key_project_id and resource_project_id.",
    fix="Use an API key scoped to the correct project.",
    group="authentication",
    details={"key_project_id": str, "resource_project_id": str},
)
AUTH_CODES.define(
    "workspace_disabled",
    status=403,
    message="The workspace associated with the API key has been disabled.",
    when="The workspace associated with the API key has been disabled. The error details may include a reason.",
    fix="Contact support to investigate the workspace status.",
    group="authentication",
    details={"reason": (str | None, None)},
)

RATE_LIMIT_CODES = Registry("ratelimit")
RATE_LIMIT_CODES.define(
    "rate_limit_exceeded",
    status=429,
    message="Requests are being sent faster than the workspace's allowed rate.",
    when="The workspace sent more requests than its limit allows. "
    "The error details include retry_after_seconds and limit.",
    fix="Wait at least retry_after_seconds before retrying.",
    group="rate_limiting",
    details={"retry_after_seconds": int, "limit": (int | None, None)},
)

IDEMPOTENCY_CODES = Registry("idempotency")
IDEMPOTENCY_CODES.define(
    "invalid_idempotency_key",
    status=400,
    message="The Idempotency-Key header must be 1 to 255 printable ASCII characters.",
    when="The Idempotency-Key header is empty, too long or not printable ASCII.",
    fix="Send a unique value such as a UUID.",
    group="idempotency",
)
IDEMPOTENCY_CODES.define(
    "idempotency_key_required",
    status=400,
    message="This endpoint requires an Idempotency-Key header.",
    when="The endpoint only accepts requests that carry an Idempotency-Key.",
    fix="Send a unique Idempotency-Key (a UUID) with the request, and the same one on retries.",
    group="idempotency",
)
IDEMPOTENCY_CODES.define(
    "idempotency_key_reused",
    status=422,
    message="This Idempotency-Key was already used with a different request.",
    when="A key was sent again with another method, path or body than its first request.",
    fix="Use a new key for a new request; resend the original request unchanged to get its response.",
    group="idempotency",
)
IDEMPOTENCY_CODES.define(
    "idempotency_key_in_use",
    status=409,
    message="A request with this Idempotency-Key is still being processed.",
    when="The first request with this key has not finished yet.",
    fix="Retry after Retry-After seconds to receive its response.",
    group="idempotency",
    retryable=True,
    retry_after=1,
)
IDEMPOTENCY_CODES.define(
    "idempotency_response_unavailable",
    status=409,
    message="The request with this Idempotency-Key was processed, but its response cannot be replayed.",
    when="The first response was larger than the replay limit, so it was not stored. The request ran once.",
    fix="Fetch the resource it created instead of retrying, or use a new key for a new request.",
    group="idempotency",
)

QUOTA_CODES = Registry("quotas")
QUOTA_CODES.define(  # as the second document defines it
    "quota_exceeded",
    status=402,
    message="The workspace has reached the limit for a resource on its current plan.",
    when="The workspace has reached the limit for a resource on its current plan. "
    "The error details include usage (current count) and limit (plan maximum).",
    fix="Delete unused resources to free up quota, or upgrade the plan.",
    group="quota",
    details={"usage": int, "limit": int},
)

CONCURRENCY_CODES = Registry("concurrency")
CONCURRENCY_CODES.define(
    "too_many_concurrent_requests",
    status=429,
    message="The workspace has too many requests in progress at once.",
    when="As many of the workspace's requests as its concurrency limit allows are still running. "
    "The error details include limit and in_flight.",
    fix="Retry once one of the workspace's running requests has finished (Retry-After is a hint); "
    "send fewer expensive requests at once.",
    group="rate_limiting",
    details={"limit": int, "in_flight": int},
    retry_after=1,
)

STAGE_CODES = Registry(
    "stages", include=[AUTH_CODES, RATE_LIMIT_CODES, IDEMPOTENCY_CODES, QUOTA_CODES, CONCURRENCY_CODES]
)
