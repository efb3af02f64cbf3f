"""Default definitions of the codes authentication produces.

Used for a code the app's catalog does not define (the two documents each define some
of them); a catalog's own definition always wins.
"""

from datetime import datetime

from errorkit.registry import Registry

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
