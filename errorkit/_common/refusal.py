"""The one shape in which every stage refuses a request.

A stage (authentication, rate limiting, idempotency) never renders a response: it returns a
`Refusal` naming the codes it means, and the gateway turns it into the app's registry error,
in the app's format. The first of `codes` the app's catalog defines wins; otherwise the
first errorkit's stage catalog defines (`fallback="defaults"`), or the catalog's code for the
bare `status` (`fallback="status"`). Details the chosen definition does not declare are left
out, because each published document shows different ones.

A refusal may also say why in a sentence (`message`, e.g. which store is away), sent instead of
the definition's message: the one field every body shape shows, so a shape without details
(`{"detail": ..., "code": ...}`) still tells the client. A definition whose message formats its
own details (`"{dependency} is down"`) keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

_NO_DETAILS: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a stage stops a request: which error, with what details, headers and retry time (and its own sentence)."""

    codes: tuple[str, ...]
    status: int
    details: Mapping[str, Any] = field(default_factory=lambda: _NO_DETAILS)
    headers: Mapping[str, str] = field(default_factory=lambda: _NO_DETAILS)
    retry_after: int | None = None
    fallback: Literal["defaults", "status"] = "defaults"
    message: str | None = None

    @classmethod
    def for_status(cls, status: int, *, headers: Mapping[str, str] | None = None) -> Refusal:
        """A refusal that is just an HTTP status: the app's catalog chooses the code."""
        return cls((), status, headers=headers or _NO_DETAILS, fallback="status")
