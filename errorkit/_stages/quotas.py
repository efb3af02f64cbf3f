"""Plan quotas: how many of a resource a workspace may hold, reserved atomically as one is created.

A route that creates a resource reserves one unit of its quota group before the handler
runs (one atomic store step: exact under any number of workers); the response's status
settles it as the response starts: kept on a 2xx or 3xx (a creation that redirects, or whose
body then fails, made its resource), given back on a 4xx or 5xx, and when the handler fails
before starting one. A
route that deletes one gives a unit back on a 2xx, so it must answer 2xx only when it removed
something (a 404 for one already gone). Over the limit: 402 `quota_exceeded` with `usage` and
`limit`. Resources in one group share its limit (the second document's Knowledge Bases and
Memory Stores). Usage mirrors the application's own records: `set_usage()` repairs drift.

Inside idempotency: a replayed creation reserves nothing, and a refused one is not stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errorkit._exceptions import Refused, StoreError, StoreUnavailable
from errorkit._log_context import log_extra
from errorkit._principal import Principal
from errorkit._refusal import Refusal
from errorkit._stages.auth import get_principal
from errorkit._stages.failure import FailureMode, FailurePolicy, logger
from errorkit._stages.lease import Background, taken
from errorkit._stages.routes import route_template
from errorkit._stores.protocols import QuotaStore, Reserved

#: Plan limits: quota group -> plan -> maximum (None: unlimited).
PlanTable = Mapping[str, Mapping[str, int | None]]


class Quotas:
    """Per-plan limits on the resources a workspace creates.

    - `limits`: quota group -> plan -> maximum, None for unlimited (the envelope catalog's
      `PLAN_LIMITS` is one);
    - `resources`: resource -> its quota group; a resource not listed is a group of its own;
    - `creates` / `deletes`: route (`"POST /v2/agents"`, `"DELETE /v2/agents/{agent_id}"`) ->
      resource;
    - `plan`: `(principal) -> plan name` (default: the key's `plan`); a plan a group does not
      name, or none, takes `default_plan`'s limit, else the group's smallest (the strictest);
    - `on_failure`: while the store cannot answer (default fail closed: 503, since an
      unchecked creation could pass the plan).
    Anonymous requests (no principal) are not counted.
    """

    def __init__(
        self,
        store: QuotaStore,
        *,
        limits: PlanTable,
        resources: Mapping[str, str] | None = None,
        creates: Mapping[str, str] | None = None,
        deletes: Mapping[str, str] | None = None,
        plan: Callable[[Principal], str | None] | None = None,
        default_plan: str | None = None,
        on_failure: FailurePolicy | FailureMode = "fail_closed",
    ) -> None:
        self.store = store
        self.limits = {group: dict(row) for group, row in limits.items()}
        self.resources = dict(resources or {})
        for resource, group in self.resources.items():
            if group not in self.limits:
                raise ValueError(f"resource {resource!r} counts against {group!r}, which `limits` does not name")
        routes = {route: (True, resource) for route, resource in (creates or {}).items()}
        routes.update({r: (False, resource) for r, resource in (deletes or {}).items()})
        for route, (_, resource) in routes.items():
            if self.group_of(resource) not in self.limits:
                raise ValueError(f"route {route!r} names {resource!r}, which has no limits")
        self.routes = routes
        self.plan = plan
        self.default_plan = default_plan
        self.on_failure = FailurePolicy.of(on_failure)
        self._background = Background()

    def group_of(self, resource: str) -> str:
        """The quota group a resource counts against."""
        return self.resources.get(resource, resource)

    def limit_for(self, principal: Principal, resource: str) -> int | None:
        """The workspace's maximum for `resource` on its plan (None: unlimited)."""
        row = self.limits[self.group_of(resource)]
        plan = self.plan(principal) if self.plan is not None else principal.plan
        for name in (plan, self.default_plan):
            if name is not None and name in row:
                return row[name]
        bounded = [limit for limit in row.values() if limit is not None]
        return min(bounded) if bounded else None

    async def reserve(self, principal: Principal, resource: str) -> int | None:
        """Reserve one unit for a creation made outside the declared routes; returns the usage
        (None: the store failed and the policy let the creation through unreserved).

        Raises `Refused` (402 `quota_exceeded`, or the failure policy's 503)."""
        group, limit = self.group_of(resource), self.limit_for(principal, resource)
        workspace = principal.workspace_id

        def give_back(reserved: Reserved) -> None:  # the caller was cancelled just after the store answered
            if reserved.admitted:
                self._background.spawn(self.release(workspace, resource))

        try:
            reserved = await taken(self.store.reserve(workspace, group, limit), give_back)
        except StoreUnavailable as exc:
            refusal = self.on_failure.failed("quotas", self.store.name, exc)
            if self.on_failure.fails_open:
                return None
            raise Refused(refusal) from None
        if not reserved.admitted:
            assert limit is not None
            raise Refused(exceeded(reserved.usage, limit))
        return reserved.usage

    async def release(self, workspace_id: str, resource: str) -> None:
        """Give one unit back (a resource was deleted, or its creation failed); never below 0.

        A store failure is logged: usage stays one too high until `set_usage()` repairs it."""
        try:
            await self.store.unreserve(workspace_id, self.group_of(resource))
        except StoreError as exc:
            logger.warning(
                "could not give back a unit of %r for workspace %s (%s); repair with set_usage()",
                self.group_of(resource),
                workspace_id,
                exc,
                extra=log_extra(),
            )

    async def usage(self, workspace_id: str, resource: str) -> int:
        """How many units of `resource`'s group the workspace holds."""
        return (await self.store.usage(workspace_id, [self.group_of(resource)]))[0]

    async def set_usage(self, workspace_id: str, resource: str, usage: int) -> None:
        """Set the usage of `resource`'s group, e.g. counted from the application's database."""
        if usage < 0:
            raise ValueError(f"usage is a count, not {usage!r}")
        await self.store.set_usage(workspace_id, self.group_of(resource), usage)

    def route_refusals(self, method: str, path: str) -> list[Refusal]:
        """What this stage may refuse on a route, for its documentation."""
        entry = self.routes.get(f"{method} {path}")
        if entry is None or not entry[0]:
            return []
        return [exceeded(1, 1)] + ([] if self.on_failure.fails_open else [self.on_failure.refusal(self.store.name)])

    async def around(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        """The gateway's inner stage: reserve before a creation, give back after a failure or a deletion."""
        entry = self.routes.get(f"{scope['method']} {route_template(scope)}") if self.routes else None
        principal = get_principal(scope)
        if entry is None or principal is None:
            await app(scope, receive, send)
            return
        creates, resource = entry
        if creates and await self.reserve(principal, resource) is None:  # failed open: nothing reserved
            creates, resource = False, ""
        watch = _Outcome(self, principal.workspace_id, resource, send, keep_on_success=creates)
        try:
            await app(scope, receive, watch)
        except Exception:
            await watch.failed()
            raise
        except BaseException:  # cancelled: give back without waiting
            self._background.spawn(watch.failed())
            raise
        await watch.failed()  # (does nothing when the response settled it)


def exceeded(usage: int, limit: int) -> Refusal:
    """The 402 for a workspace at its limit."""
    return Refusal(("quota_exceeded",), 402, details={"usage": usage, "limit": limit}, fallback="defaults")


class _Outcome:
    """The app's send: settles the unit by the status as the response starts (before anything leaves).

    A creation keeps its unit on a 2xx or 3xx and gives it back on a 4xx or 5xx; a deletion
    (with `keep_on_success` False) gives one back on a 2xx.
    """

    __slots__ = ("keep_on_success", "resource", "send", "settled", "stage", "status", "workspace")

    def __init__(self, stage: Quotas, workspace: str, resource: str, send: Send, *, keep_on_success: bool) -> None:
        self.stage, self.workspace, self.resource, self.send = stage, workspace, resource, send
        self.keep_on_success = keep_on_success
        self.status = 0
        self.settled = not resource  # nothing to settle (a failed-open creation)

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and not self.settled:
            self.settled = True
            self.status = message["status"]
            done = 200 <= self.status < 400 if self.keep_on_success else 200 <= self.status < 300
            if done != self.keep_on_success:  # a creation failed, or a deletion removed one
                await self.stage.release(self.workspace, self.resource)
        await self.send(message)

    async def failed(self) -> None:
        """The handler ended without starting a response: a creation gives its unit back."""
        if not self.settled:
            self.settled = True
            if self.keep_on_success:
                await self.stage.release(self.workspace, self.resource)
