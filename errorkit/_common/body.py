"""The request body, kept as the app reads it, so that a decoding error can be judged.

A JSON decoding error that escapes the app is the client's fault (a 400) only if parsing
the client's own body raises it too; for that the gateway (or idempotency, which reads the
body anyway) leaves the body in `scope[BODY_KEY]`.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope

BODY_KEY = "errorkit.request_body"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestBody:
    """The request body as the app reads it (up to `limit` bytes), to judge decoding errors.

    `recorder(scope, receive)` puts one in the scope and returns the receive that fills it.
    """

    __slots__ = ("chunks", "complete")

    def __init__(self) -> None:
        self.chunks: list[bytes] | None = []  # None: over the limit
        self.complete = False

    def body(self) -> bytes | None:
        """The whole body, or None if it was not read to its end or was over the limit."""
        return b"".join(self.chunks) if self.complete and self.chunks is not None else None


def recorder(scope: Scope, receive: Receive, limit: int = 10 << 20) -> Receive:
    """A receive that keeps what the app reads in `scope[BODY_KEY]` (a `RequestBody`)."""
    kept = scope[BODY_KEY] = RequestBody()
    size = 0

    async def recording_receive() -> Message:
        nonlocal size
        message = await receive()
        chunks = kept.chunks
        if chunks is not None and not kept.complete and message["type"] == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                kept.chunks = None
            else:
                chunks.append(chunk)
            kept.complete = not message.get("more_body", False)
        return message

    return recording_receive


def request_body(scope: Scope) -> bytes | None:
    """The body kept for this request (whole), if any."""
    kept = scope.get(BODY_KEY)
    if isinstance(kept, bytes):  # idempotency read it whole
        return kept
    return kept.body() if isinstance(kept, RequestBody) else None


def keep_body(scope: Scope, receive: Receive) -> Receive:
    """`recorder()` for a method that carries a body, else `receive` as it is."""
    return recorder(scope, receive) if scope["method"] in BODY_METHODS else receive
