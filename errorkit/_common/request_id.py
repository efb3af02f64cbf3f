"""Request ids: taken from `X-Request-ID` when it is sane, generated otherwise, returned always."""

from __future__ import annotations

import re
from typing import Any

from starlette.types import Scope

from errorkit._common.unique import unique_id

HEADER = b"x-request-id"
MAX_LENGTH = 128
_VALID = re.compile(rb"[\x21-\x7e]{1,%d}" % MAX_LENGTH)


def get_request_id(scope: Scope) -> str | None:
    """The request id errorkit assigned to this request, if it has run."""
    state: dict[str, Any] | None = scope.get("state")
    return state.get("request_id") if state else None


def incoming_request_id(scope: Scope) -> str | None:
    """The client's `X-Request-ID`: 1-128 visible ASCII characters, else None."""
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode("ascii") if _VALID.fullmatch(value) else None
    return None


#: A new request id: 32 hex characters, a random per-process prefix and a counter (cheaper than uuid4).
new_request_id = unique_id


def assign_request_id(scope: Scope) -> str:
    """Give the request its id (once) and record it where `request.state.request_id` finds it."""
    state = scope.setdefault("state", {})
    request_id: str | None = state.get("request_id")
    if request_id is None:
        request_id = state["request_id"] = incoming_request_id(scope) or new_request_id()
    return request_id
