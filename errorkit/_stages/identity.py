"""Who a request is counted as: its workspace, or for an anonymous client its address seen through
the proxies you trust. Used by the rate limiter, the concurrency limit and idempotency alike."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from starlette.types import Scope

from errorkit._common.principal import Principal

#: An app's own rule: `(scope, principal) -> identity`, None to fall back to errorkit's.
IdentityRule = Callable[[Scope, Principal | None], str | None]


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
    own `--forwarded-allow-ips` rewrites the peer before errorkit sees it (see the README).
    """

    __slots__ = ("networks",)

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks = tuple(ipaddress.ip_network(n) for n in networks)

    def client_address(self, scope: Scope) -> str:
        """The client's address: the peer, or behind trusted proxies the last untrusted hop."""
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
