"""API keys, scopes and workspace identity."""

from errorkit.auth.authenticate import APIKeyAuth, get_principal
from errorkit.auth.codes import AUTH_CODES
from errorkit.auth.keys import (
    ApiKeyRecord,
    KeyScope,
    Principal,
    issue_api_key,
    register_api_key,
    revoke_api_key,
    set_workspace_disabled,
)

__all__ = [
    "AUTH_CODES",
    "APIKeyAuth",
    "ApiKeyRecord",
    "KeyScope",
    "Principal",
    "get_principal",
    "issue_api_key",
    "register_api_key",
    "revoke_api_key",
    "set_workspace_disabled",
]
