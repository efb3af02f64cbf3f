"""Who a request is counted as: its workspace, or for an anonymous client its address seen through
the proxies you trust. Used by the rate limiter, the concurrency limit and idempotency alike.

`per_user` is the ready-made rule for counting each user (each API key) apart while quotas stay
per workspace; its identity leads with the workspace, escaped, so no two users of different
workspaces ever share one, whatever their ids hold.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from starlette.types import Scope

from errorkit._common.principal import Principal

#: An app's own rule: `(scope, principal) -> identity`, None to fall back to errorkit's.
IdentityRule = Callable[[Scope, Principal | None], str | None]


def per_user(scope: Scope, principal: Principal | None) -> str | None:
    """An `identity=` rule: each user (each API key) counted apart, not its workspace as a whole.

    `user:<workspace>/<user id>` (the workspace with `%` and `/` escaped); None for anonymous
    requests, which stay counted by client address. Give it to `Idempotency(scope_of=per_user)`
    too on Redis: the limit and the claim then share a hash slot, and one script does both."""
    if principal is None:
        return None
    workspace = principal.workspace_id
    if "%" in workspace or "/" in workspace:
        workspace = workspace.replace("%", "%25").replace("/", "%2F")
    return f"user:{workspace}/{principal.key_id}"


def identity_of(scope: Scope, principal: Principal | None, rule: IdentityRule | None, proxies: TrustedProxies) -> str:
    """`rule`'s answer, else `ws:<workspace>` (the hash tag every step of a workspace shares), else `ip:<client>`."""
    if rule is not None:
        custom = rule(scope, principal)
        if custom is not None:
            return custom
    if principal is not None:
        return "ws:" + principal.workspace_id
    return "ip:" + proxies.client_address(scope)


class TrustedProxies:
    """Networks whose `X-Forwarded-For` is believed; empty means the peer address is the client.

    Behind trusted proxies the client is the rightmost hop that is not one of them. uvicorn's
    own `--forwarded-allow-ips` rewrites the peer before errorkit sees it (see the operating guide's
    "Client addresses behind proxies").
    """

    __slots__ = ("networks",)

    def __init__(self, networks: Iterable[str] = ()) -> None:
        if isinstance(networks, str):  # (read letter by letter, "10.0.0.0/8" would trust 0.0.0.1, 0.0.0.0, ...)
            raise TypeError(f"trusted_proxies takes a list of networks, such as [{networks!r}], not a text")
        self.networks = tuple(ipaddress.ip_network(n) for n in networks)

    def client_address(self, scope: Scope) -> str:
        """The client's address in an ASGI `scope`: the peer, or behind trusted proxies the last
        untrusted hop of `X-Forwarded-For`. The stages count anonymous requests by it; an
        `identity=` rule of your own can call it to count by address as they do."""
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        if not self.networks or not self._trusted(peer):
            return peer

        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                hops: list[str] = [hop.strip() for hop in value.decode("latin-1").split(",")]
                for hop in reversed(hops):
                    if not self._trusted(hop):
                        return hop
        return peer

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)
