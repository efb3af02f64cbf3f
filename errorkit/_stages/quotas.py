"""Plan quotas: how many of a resource a workspace may hold, reserved atomically as one is created.

A route that creates a resource holds one unit of its quota group before the handler runs
(one atomic store step: exact under any number of workers). The hold carries a token and a
lease, renewed while the handler runs; the response's status settles it as the response
starts: confirmed (counted) on a 2xx or 3xx (a creation that redirects, or whose body then
fails, made its resource), given back on a 4xx or 5xx, and when the handler fails or is
cancelled before starting one. A hold nobody settles (the worker died, the store stalled)
lapses with its lease, so usage never counts a resource that was not created for longer than
the lease. Every settling step names its token, so one the store failed is sent again until
it is taken, and never counts twice.

A route that deletes one gives a unit back on a 2xx, so it must answer 2xx only when it
removed something (a 404 for one already gone). Over the limit: 402 `quota_exceeded` with
`usage` and `limit` (and the group as `resource` where the catalog declares that detail; the
group is logged, logger `errorkit.quotas`, and counted either way). Resources in one group
share its limit (the second document's Knowledge Bases and Memory Stores). Usage mirrors the
application's own records: `set_usage()` repairs drift. A key without a permission the route
asks for is refused (403) before anything is held: it never holds a workspace's quota nor
learns its usage.

Inside idempotency: a replayed creation reserves nothing, and a refused one is not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errorkit._common.background import Background
from errorkit._common.exceptions import ConfigurationError, Refused, StoreError, StoreUnavailable
from errorkit._common.principal import Principal
from errorkit._common.refusal import Refusal
from errorkit._common.unique import unique_token
from errorkit._observe.log_context import log_extra
from errorkit._observe.observer import Observer, QuotaResult
from errorkit._stages.auth import get_principal
from errorkit._stages.failure import FailureMode, FailurePolicy
from errorkit._stages.lease import GIVE_BACK_WITHIN, settle, taken
from errorkit._stages.permissions import refuse_unpermitted
from errorkit._stages.routes import AppRoutes, route_keys, route_of
from errorkit._stores.protocols import SETTLE_RETRY_MS, QuotaStore, Reserved

logger = logging.getLogger("errorkit.quotas")

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
    - `lease`: seconds a creation's unit is held without renewal (renewed while the handler
      runs; a dead worker's unit comes back after it);
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
        lease: float = 30.0,
        on_failure: FailurePolicy | FailureMode = "fail_closed",
    ) -> None:
        if lease < 0.01:
            raise ValueError(f"lease must be at least 10 ms, not {lease!r}")

        self.store = store
        self.limits = {group: dict(row) for group, row in limits.items()}
        self.resources = dict(resources or {})
        for resource, group in self.resources.items():
            if group not in self.limits:
                raise ValueError(f"resource {resource!r} counts against {group!r}, which `limits` does not name")

        created = route_keys(creates, "Quotas(creates=...)", method=True)
        deleted = route_keys(deletes, "Quotas(deletes=...)", method=True)
        routes = {route: (True, resource) for route, resource in created.items()}
        for route, resource in deleted.items():
            if route in routes:
                raise ConfigurationError(f"Quotas: {route!r} is in both creates= and deletes=")
            routes[route] = (False, resource)
        for route, (_, resource) in routes.items():
            if self.group_of(resource) not in self.limits:
                raise ConfigurationError(f"Quotas: route {route!r} names {resource!r}, which has no limits")
        self.routes = routes

        self.plan = plan
        self.default_plan = default_plan
        self.lease_ms = round(lease * 1000)
        self.give_back_within = max(GIVE_BACK_WITHIN, lease)  # (after that, the unit has lapsed anyway)
        self.on_failure = FailurePolicy.of(on_failure)
        self.observer: Observer | None = None  # set by install(): metrics, traces
        self._background = Background()

    def check_routes(self, app: AppRoutes) -> None:
        """When the app starts: every `creates=` and `deletes=` route names a route of the app."""
        for route, (creates, _) in self.routes.items():
            app.check_key(route, "Quotas(creates=...)" if creates else "Quotas(deletes=...)")

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

    async def hold(self, principal: Principal, resource: str) -> Hold:
        """Hold one unit for a creation made outside the declared routes, and settle it with the
        creation's outcome:

            async with await quotas.hold(principal, "agents"):   # 402 when full
                ...create it...   # leaving normally confirms the unit; an exception gives it back

        Raises `Refused` (402 `quota_exceeded`, or the failure policy's 503). When the store fails
        and the policy lets the creation through, the hold holds nothing (`held` is False). A
        hold renews its lease while it is referenced and unsettled; one dropped unsettled lapses."""
        group = self.group_of(resource)
        limit = self.limit_for(principal, resource)
        workspace = principal.workspace_id
        token = unique_token()

        try:
            reserved = await taken(
                self.store.reserve(workspace, group, limit, token, self.lease_ms),
                _admitted,
                self._background,
                "giving back a quota unit",
                self.store.cancel,
                workspace,
                group,
                token,
            )
        except StoreUnavailable as exc:
            passes = "creations run without a unit (usage then needs set_usage())"
            refusal = self.on_failure.failed("quotas", self.store.name, exc, passes=passes)
            fails_open = self.on_failure.fails_open
            self._observed(group, "failed_open" if fails_open else "failed_closed")
            if fails_open:
                return Hold(self, workspace, group, None, 0)
            raise Refused(refusal) from None

        if not reserved.admitted:
            assert limit is not None
            self._observed(group, "exceeded")
            logger.info(  # the group, which a catalog without a `resource` detail does not tell the client
                "quota group %r exhausted for workspace %s: %d of %d used; creation refused with 402",
                group,
                workspace,
                reserved.usage,
                limit,
                extra={"quota_group": group, "usage": reserved.usage, "limit": limit, **log_extra("quota_exceeded")},
            )
            raise Refused(exceeded(reserved.usage, limit, group))
        self._observed(group, "held")
        return Hold(self, workspace, group, token, reserved.usage)

    def _observed(self, group: str, result: QuotaResult) -> None:
        if self.observer is not None:
            self.observer.quota_decided(group, result)

    async def release(self, workspace_id: str, resource: str) -> None:
        """Give one unit back: a resource was deleted. Never below 0; a store failure is retried in
        the background (by token: it never counts twice) for up to ten minutes."""
        group = self.group_of(resource)
        what = f"giving back a unit of {group!r} for workspace {workspace_id} (a deletion)"
        token = unique_token()
        await settle(self._background, SETTLE_RETRY_MS / 1000, what, self.store.unreserve, workspace_id, group, token)

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

        refusals = [exceeded(1, 1)]
        if not self.on_failure.fails_open:
            refusals.append(self.on_failure.refusal(self.store.name))
        return refusals

    async def around(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        """The gateway's inner stage: hold a unit for a creation and settle it by the response; give one
        back after a deletion."""
        found = route_of(scope) if self.routes else None
        entry = None if found is None else self.routes.get(f"{scope['method']} {found[0]}")
        principal = get_principal(scope)
        if entry is None or principal is None or found is None:
            await app(scope, receive, send)
            return
        refuse_unpermitted(principal, found[1])

        creates, resource = entry
        if not creates:
            await app(scope, receive, _Deleting(self, principal.workspace_id, resource, send))
            return

        hold = await self.hold(principal, resource)
        if not hold.held:  # failed open
            await app(scope, receive, send)
            return

        try:
            await app(scope, receive, _Creating(hold, send))
        finally:
            await hold.cancel()  # no response started (an exception, a cancellation); nothing once settled


def exceeded(usage: int, limit: int, group: str | None = None) -> Refusal:
    """The 402 for a workspace at its limit; `group` as `resource`, shown where the catalog declares it."""
    details: dict[str, int | str] = {"usage": usage, "limit": limit}
    if group is not None:
        details["resource"] = group
    return Refusal(("quota_exceeded",), 402, details=details, fallback="defaults")


class Hold:
    """One unit held for a creation: `confirm()` once the resource exists, `cancel()` when it will not
    be; an async context manager that does one or the other. Its lease is renewed (every third of
    it) until it is settled, or dropped unsettled (then it lapses)."""

    __slots__ = ("__weakref__", "group", "held", "settled", "stage", "timer", "token", "usage", "workspace")

    def __init__(self, stage: Quotas, workspace: str, group: str, token: str | None, usage: int) -> None:
        self.stage = stage
        self.workspace, self.group = workspace, group
        self.token = token or ""
        self.usage = usage  # the group's usage with this unit
        self.held = token is not None  # (not when the store failed and the policy let the creation through)
        self.settled = not self.held

        self.timer: asyncio.TimerHandle | None = None
        if self.held:
            self.timer = asyncio.get_running_loop().call_later(stage.lease_ms / 3000, _renew, weakref.ref(self))

    async def confirm(self) -> None:
        """The resource exists: count the unit (sent again until the store takes it, counted once)."""
        if self._settle():
            stage = self.stage
            what = f"counting a created resource of {self.group!r} for workspace {self.workspace}"
            await settle(
                stage._background,
                SETTLE_RETRY_MS / 1000,
                what,
                stage.store.confirm,
                self.workspace,
                self.group,
                self.token,
            )

    async def cancel(self) -> None:
        """No resource was made: give the unit back (else it lapses with its lease)."""
        if self._settle():
            stage = self.stage
            what = f"giving back a unit of {self.group!r} for workspace {self.workspace}"
            await settle(
                stage._background,
                stage.give_back_within,
                what,
                stage.store.cancel,
                self.workspace,
                self.group,
                self.token,
            )

    def _settle(self) -> bool:
        """Stop renewing; False when it was settled already."""
        if self.settled:
            return False
        self.settled = True
        if self.timer is not None:
            self.timer.cancel()
        return True

    async def __aenter__(self) -> Hold:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            await self.confirm()
        else:
            await self.cancel()


def _renew(reference: weakref.ref[Hold]) -> None:
    """A hold's lease timer: renew it in a task of the stage, then set the timer again; nothing once
    it is settled or dropped (a timer is the only per-creation cost until the lease needs renewing)."""
    hold = reference()
    if hold is None or hold.settled:
        return

    stage = hold.stage
    renewal = stage.store.renew_hold(hold.workspace, hold.group, hold.token, stage.lease_ms)
    stage._background.spawn(_renewing(reference, renewal))


async def _renewing(reference: weakref.ref[Hold], renewal: Awaitable[bool]) -> None:
    with contextlib.suppress(StoreError):  # a failed renewal skips a turn: the lease may lapse (what it is for)
        if not await renewal:
            return  # lapsed already: not taken again

    hold = reference()
    if hold is not None and not hold.settled:
        hold.timer = asyncio.get_running_loop().call_later(hold.stage.lease_ms / 3000, _renew, reference)


def _admitted(reserved: Reserved) -> bool:
    return reserved.admitted


class _Creating:
    """A creation's send: settles its hold by the status as the response starts (before anything
    leaves): confirmed on a 2xx or 3xx, given back on a 4xx or 5xx."""

    __slots__ = ("hold", "send")

    def __init__(self, hold: Hold, send: Send) -> None:
        self.hold = hold
        self.send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and not self.hold.settled:
            if 200 <= message["status"] < 400:
                await self.hold.confirm()
            else:
                await self.hold.cancel()
        await self.send(message)


class _Deleting:
    """A deletion's send: a 2xx gives a unit back as the response starts."""

    __slots__ = ("resource", "send", "stage", "workspace")

    def __init__(self, stage: Quotas, workspace: str, resource: str, send: Send) -> None:
        self.stage = stage
        self.workspace, self.resource = workspace, resource
        self.send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
            await self.stage.release(self.workspace, self.resource)
        await self.send(message)
