"""The Ontora API's error reference (`{"detail": ..., "code": ...}`): its 7 codes on top of the generic statuses.

Messages are the reference's "Meaning" column, except `workspace_forbidden`, whose message
is the one its example body shows. Fixes are the "What to do" of the code's status row.
"""

from errorkit._errors.registry import Registry
from errorkit.catalogs.generic import GENERIC

DETAIL_API = Registry("detail_api", include=[GENERIC], format="detail")
"""A published API error reference in the `detail` format (`{"detail": ..., "code": ...}`), exactly:
its 7 codes on top of `GENERIC`'s statuses. For a server that must answer with exactly those errors.
"""

_FIX_401 = "Check X-API-Key or Authorization header"
_FIX_403 = "Add the missing scope, or you\u2019re hitting a workspace you don\u2019t belong to"
_FIX_409 = "Check the error code \u2014 e.g., synthesis_pending"

DETAIL_API.define(
    "invalid_api_key",
    status=401,
    message="Key is missing, malformed, or revoked",
    when="Key is missing, malformed, or revoked",
    fix=_FIX_401,
    group="authentication",
)
DETAIL_API.define(
    "insufficient_scope",
    status=403,
    message="Key is missing a required scope",
    when="Key is missing a required scope",
    fix=_FIX_403,
    group="authentication",
)
DETAIL_API.define(
    "workspace_forbidden",
    status=403,
    message="Workspace not accessible by this API key",
    when="Key belongs to a different workspace",
    fix=_FIX_403,
    group="authentication",
)
DETAIL_API.define(
    "synthesis_pending",
    status=409,
    message="Campaign hasn\u2019t completed synthesis yet",
    when="Campaign hasn\u2019t completed synthesis yet",
    fix=_FIX_409,
    group="lifecycle",
)
DETAIL_API.define(
    "graph_not_ready",
    status=409,
    message="Entity-extraction pipeline hasn\u2019t finished",
    when="Entity-extraction pipeline hasn\u2019t finished",
    fix=_FIX_409,
    group="lifecycle",
)
DETAIL_API.define(
    "campaign_locked",
    status=409,
    message="Lifecycle action invalid for current status (e.g., starting an already-completed campaign)",
    when="Lifecycle action invalid for current status (e.g., starting an already-completed campaign)",
    fix=_FIX_409,
    group="lifecycle",
)
DETAIL_API.define(
    "rate_limited",
    status=429,
    message="Per-workspace rate limit exceeded",
    when="Per-workspace rate limit exceeded",
    fix="Honor Retry-After",
    group="rate_limiting",
)
DETAIL_API.map_status(429, "rate_limited")
