"""What every errorkit log record carries in `extra`: the request id, the error code, the workspace.

The gateway makes each request's scope current (`CURRENT_SCOPE`, a context variable: one
per asyncio task, so concurrent requests never see each other's), and `log_extra()` reads
it where a log call has no scope at hand (a store failure deep in a stage).
`RequestContextFilter` puts the same fields on an application's own records.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from starlette.types import Scope

from errorkit._common.principal import Principal
from errorkit._common.request_id import get_request_id
from errorkit._common.user import CONVERTED

#: The scope of the request this task is handling (None outside errorkit's gateway).
CURRENT_SCOPE: ContextVar[Scope | None] = ContextVar("errorkit_scope", default=None)


def log_extra(code: str | None = None, scope: Scope | None = None) -> dict[str, Any]:
    """`{"request_id", "code", "workspace_id"}` for a log call (None where unknown).

    `scope` defaults to the current request's."""
    if scope is None:
        scope = CURRENT_SCOPE.get()
    if scope is None:
        return {"request_id": None, "code": code, "workspace_id": None}

    user = scope.get("user")
    if isinstance(user, Principal):
        workspace: str | None = user.workspace_id
    else:  # a user of the app's own authentication, once a stage has read it (errorkit._common.user)
        converted = scope.get(CONVERTED)
        workspace = converted[1].workspace_id if converted and converted[0] is user and converted[1] else None
    return {"request_id": get_request_id(scope), "code": code, "workspace_id": workspace}


class RequestContextFilter(logging.Filter):
    """Adds `request_id` and `workspace_id` (and `code`: None) to records that lack them.

    Attach it to a handler (`handler.addFilter(RequestContextFilter())`) so an application's
    own log lines carry the same fields as errorkit's; records logged outside a request get None.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_extra().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
