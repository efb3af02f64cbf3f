"""Bring your own authentication: the stages take their identity from the user in `scope["user"]`.

First the `User` protocol itself (each attribute, each fallback, the per-request cache, the
`per_user` rule); then a real JWT app (`tests/apps/jwt_app.py`: Starlette's
`AuthenticationMiddleware`, PyJWT HS256) served by uvicorn on a real redis-server, with errorkit
installed without `APIKeyAuth`; then the one-trip path when the limit and the claim are
counted by different identities, on one Redis and on a Cluster.
"""

import asyncio
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from starlette.authentication import AuthCredentials, BaseUser, SimpleUser, UnauthenticatedUser
from starlette.testclient import TestClient
from starlette.types import Scope

from errorkit import Principal, RedisBackend, User, get_principal, per_user
from errorkit._stages.permissions import missing_permission
from errorkit._stores.redis.topology import hash_slot
from tests.apps.jwt_app import SECRET, build, token
from tests.support.servers import Uvicorn, cluster_setup, uvicorn

# -- the protocol ------------------------------------------------------------------------------


class Plain:
    """A user class of the team's own, not a Starlette `BaseUser`: only what each test gives it."""

    def __init__(self, **attributes: Any) -> None:
        for name, value in attributes.items():
            setattr(self, name, value)


class Unimplemented(BaseUser):
    """Starlette's `BaseUser` as is: `identity` and `display_name` raise `NotImplementedError`."""

    is_authenticated = True

    def __init__(self, **attributes: Any) -> None:
        for name, value in attributes.items():
            setattr(self, name, value)


def read(user: object, auth: object = None) -> Principal | None:
    """What the stages see of a request whose `scope["user"]` (and `scope["auth"]`) these are."""
    scope: Scope = {"type": "http", "user": user}
    if auth is not None:
        scope["auth"] = auth
    return get_principal(scope)


def principal(user: object, auth: object = None) -> Principal:
    found = read(user, auth)
    assert found is not None
    return found


def test_a_user_with_every_attribute_is_read_as_it_is() -> None:
    user = Plain(
        is_authenticated=True, identity="u_1", workspace_id="ws_1", plan="Growth", scopes={"a:read"}, project_id="p_1"
    )
    assert principal(user) == Principal(
        key_id="u_1",
        workspace_id="ws_1",
        project_id="p_1",
        scopes=frozenset({"a:read"}),
        key_scope="PROJECT",
        plan="Growth",
    )


def test_the_user_id_is_identity_else_id_else_user_id_else_username() -> None:
    assert principal(Plain(identity="i", id=1, user_id="u", username="n")).key_id == "i"
    assert principal(Unimplemented(id=42, user_id="u")).key_id == "42"
    assert principal(Plain(identity="", id=None, user_id="u_9")).key_id == "u_9"
    assert principal(Plain(username="ann", display_name="Ann")).key_id == "ann"
    assert principal(SimpleUser("ann")).key_id == "ann"


def test_a_display_name_is_no_id() -> None:
    # two users called "Ann" would share one rate limit and one another's stored responses
    with pytest.raises(TypeError):
        read(Plain(display_name="Ann"))


def test_an_authenticated_user_without_an_id_is_a_type_error() -> None:
    with pytest.raises(TypeError) as error:
        read(Unimplemented(tenant_id="acme"))
    assert str(error.value) == (
        "the authenticated Unimplemented in scope['user'] has no user id errorkit can read: give it one of "
        "identity, id, user_id, username (see errorkit.User)"
    )


def test_the_workspace_is_workspace_id_else_tenant_id_else_the_user_itself() -> None:
    assert principal(Plain(id="u", workspace_id="ws", tenant_id="t")).workspace_id == "ws"
    assert principal(Plain(id="u", workspace_id=None, tenant_id=7)).workspace_id == "7"
    assert principal(Plain(id="u", workspace_id="")).workspace_id == "user:u"
    assert principal(SimpleUser("acme")).workspace_id == "user:acme"  # (never tenant "acme"'s)


def test_plan_and_project_are_none_when_missing() -> None:
    found = principal(SimpleUser("ann"))
    assert found == Principal(
        key_id="ann", workspace_id="user:ann", project_id=None, scopes=frozenset(), key_scope="WORKSPACE", plan=None
    )
    assert principal(Plain(id="u", plan="Pro", project_id="")) == Principal(
        key_id="u", workspace_id="user:u", project_id=None, scopes=frozenset(), key_scope="WORKSPACE", plan="Pro"
    )


def test_permissions_are_the_credentials_scopes_else_the_users() -> None:
    user = Plain(id="u", scopes=["from:user"])
    assert principal(user, AuthCredentials(["from:auth", "b"])).scopes == {"from:auth", "b"}
    assert principal(user, AuthCredentials()).scopes == frozenset()  # (what requires() sees)
    assert principal(user).scopes == {"from:user"}
    assert principal(Plain(id="u", scopes="a:read  a:write")).scopes == {"a:read", "a:write"}
    assert principal(Plain(id="u")).scopes == frozenset()


def test_errorkits_permission_check_reads_the_users_scopes() -> None:
    found = principal(SimpleUser("ann"), AuthCredentials(["widgets:read"]))
    assert missing_permission(found, ["widgets:read"]) is None
    refusal = missing_permission(found, ["widgets:read", "widgets:write"])
    assert refusal is not None
    assert (refusal.codes, refusal.status, dict(refusal.details)) == (
        ("insufficient_scope",),
        403,
        {"required_permission": "widgets:write", "key_scope": "WORKSPACE"},
    )


def test_an_unauthenticated_user_or_none_is_anonymous() -> None:
    assert read(UnauthenticatedUser()) is None
    assert read(Plain(is_authenticated=False, id="u")) is None
    assert read(None) is None and get_principal({"type": "http"}) is None
    assert read(Plain(id="u")) is not None  # no `is_authenticated`: a user put there is one


def test_a_principal_is_returned_as_it_is_and_is_a_user() -> None:
    key = Principal(key_id="k", workspace_id="ws", project_id=None, scopes=frozenset(), key_scope="WORKSPACE")
    assert read(key) is key
    as_user: User = key  # (mypy checks that a Principal satisfies the protocol)
    assert as_user.identity == "k"


def test_a_user_is_converted_once_per_request() -> None:
    reads: list[str] = []

    class Counted(BaseUser):
        is_authenticated = True

        @property
        def identity(self) -> str:
            reads.append("identity")
            return "u_1"

    user = Counted()
    scope: Scope = {"type": "http", "user": user}
    first = get_principal(scope)
    assert get_principal(scope) is first and get_principal(scope) is first
    assert reads == ["identity"]

    scope["user"] = Counted()  # another user in the same scope is read again
    assert get_principal(scope) == first and reads == ["identity", "identity"]


def test_per_user_counts_each_user_of_a_workspace_apart() -> None:
    def of(workspace: str, user: str) -> str | None:
        key = Principal(key_id=user, workspace_id=workspace, project_id=None, scopes=frozenset(), key_scope="WORKSPACE")
        return per_user({"type": "http"}, key)

    assert of("acme", "alice") == "user:acme/alice"
    assert of("a/b%", "c") == "user:a%2Fb%25/c"  # the workspace escaped: "a" + "b/c" is another user
    assert of("a", "b/c") == "user:a/b/c"
    assert per_user({"type": "http"}, None) is None  # anonymous: the client address


# -- a real JWT app under uvicorn ---------------------------------------------------------------

RID = {"X-Request-ID": "jwt-test"}


@pytest.fixture(scope="module", params=["starlette", "fastapi"])
def server(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Uvicorn]:
    env = {"EK_JWT_APP": "1", "EK_FRAMEWORK": request.param, "REDIS_URL": redis_url, "EK_PREFIX": uuid.uuid4().hex}
    with uvicorn("tests.apps.jwt_app:app", env=env) as served:
        yield served


@pytest.fixture
def client(server: Uvicorn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=RID) as client:
        yield client


def fresh(name: str) -> str:
    """A name no other test (nor the other framework's run) uses."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def bearer(sub: str, tenant: str | None = None, **claims: Any) -> dict[str, str]:
    return {"Authorization": "Bearer " + token(sub, tenant, **claims)}


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "doc_url": f"https://docs.orq.ai/errors/{code}"}
    if details is not None:
        error["details"] = details
    return {"error": {**error, "request_id": "jwt-test"}}


def limit_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith(("x-ratelimit", "retry-after"))}


def test_the_app_sees_the_token_as_errorkits_principal(client: httpx.Client) -> None:
    alice, acme = fresh("alice"), fresh("acme")
    seen = client.get("/whoami", headers=bearer(alice, acme, plan="pro", scope="widgets:write orders:write"))
    assert seen.json() == {
        "principal": {
            "key_id": alice,
            "workspace_id": acme,
            "project_id": None,
            "key_scope": "WORKSPACE",
            "plan": "pro",
            "scopes": ["orders:write", "widgets:write"],
        }
    }
    solo = client.get("/whoami", headers=bearer(alice))  # no tenant claim: the user is its own workspace
    assert solo.json()["principal"]["workspace_id"] == f"user:{alice}"
    assert client.get("/whoami").json() == {"principal": None}


def test_each_user_of_a_tenant_has_its_own_rate_limit(client: httpx.Client) -> None:
    acme = fresh("acme")
    alice, bob = bearer(fresh("alice"), acme), bearer(fresh("bob"), acme)

    before = time.time()
    admitted = [client.get("/ping", headers=alice) for _ in range(3)]
    after = time.time()
    refused = client.get("/ping", headers=alice)

    first = int(admitted[0].headers["x-ratelimit-reset"])  # GCRA: whole again 1200 s per request after the first
    assert math.ceil(before + 1200) <= first <= math.ceil(after + 1200)
    assert [(r.status_code, limit_headers(r)) for r in admitted] == [
        (200, {"x-ratelimit-limit": "3", "x-ratelimit-remaining": "2", "x-ratelimit-reset": str(first)}),
        (200, {"x-ratelimit-limit": "3", "x-ratelimit-remaining": "1", "x-ratelimit-reset": str(first + 1200)}),
        (200, {"x-ratelimit-limit": "3", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(first + 2400)}),
    ]
    assert refused.status_code == 429
    assert limit_headers(refused) == {
        "retry-after": "1200",
        "retry-after-ms": refused.headers["retry-after-ms"],  # (checked below: to the millisecond)
        "x-ratelimit-limit": "3",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(first),  # the next request accepted: 1200 s after the first
    }
    waited_ms = (time.time() - before) * 1000  # at most, between the first request and the refusal
    assert 1_200_000 - waited_ms - 1 <= int(refused.headers["retry-after-ms"]) <= 1_200_000
    assert refused.json() == envelope(
        "rate_limit_exceeded",
        "Requests are being sent faster than the workspace’s allowed rate.",
        {"retry_after_seconds": 1200, "limit": 3},
    )

    other = client.get("/ping", headers=bob)  # the same tenant, another user: a limit of its own
    assert (other.status_code, other.headers["x-ratelimit-remaining"]) == (200, "2")


def test_anonymous_traffic_is_counted_by_client_address(server: Uvicorn, client: httpx.Client) -> None:
    statuses = [(r.status_code, r.headers["x-ratelimit-remaining"]) for r in (client.get("/ping") for _ in range(4))]
    assert statuses == [(200, "2"), (200, "1"), (200, "0"), (429, "0")]

    # another client address (127.0.0.2, loopback too) has its own count; a user from the first one too
    elsewhere = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=server.url, transport=elsewhere) as other:
        assert other.get("/ping").headers["x-ratelimit-remaining"] == "2"
    assert client.get("/ping", headers=bearer(fresh("carol"))).headers["x-ratelimit-remaining"] == "2"


def test_users_of_a_tenant_share_its_quota(client: httpx.Client) -> None:
    acme, globex, initech = fresh("acme"), fresh("globex"), fresh("initech")
    alice, bob = bearer(fresh("alice"), acme, scope="widgets:write"), bearer(fresh("bob"), acme, scope="widgets:write")

    assert client.post("/widgets", headers=alice).status_code == 201
    assert client.post("/widgets", headers=bob).status_code == 201
    full = client.post("/widgets", headers=alice)  # the tenant's third widget, whoever asks
    assert full.status_code == 402
    assert full.json() == envelope(
        "quota_exceeded",
        "The workspace has reached the limit for a resource on its current plan.",
        {"usage": 2, "limit": 2},
    )
    assert client.post("/widgets", headers=bob).status_code == 402
    # Starlette's requires() runs in the handler, after the quota stage: at the limit a reader sees the 402
    assert client.post("/widgets", headers=bearer(fresh("reader"), acme, scope="orders:write")).status_code == 402

    other = bearer(fresh("carol"), globex, scope="widgets:write")  # another tenant: a quota of its own
    assert [client.post("/widgets", headers=other).status_code for _ in range(3)] == [201, 201, 402]
    pro = bearer(fresh("dave"), initech, plan="pro", scope="widgets:write")  # the plan claim: unlimited
    assert [client.post("/widgets", headers=pro).status_code for _ in range(3)] == [201, 201, 201]


def test_permissions_come_from_the_token_scopes(client: httpx.Client) -> None:
    acme = fresh("acme")
    reader = bearer(fresh("reader"), acme, scope="orders:write")
    writer = bearer(fresh("writer"), acme, scope="widgets:write")

    forbidden = client.post("/widgets", headers=reader)  # starlette.authentication.requires("widgets:write")
    assert (forbidden.status_code, forbidden.json()) == (403, envelope("forbidden", "Forbidden"))
    assert client.post("/widgets").status_code == 403  # anonymous
    # the refused creations held the tenant's quota only while they ran: both units are still free
    assert [client.post("/widgets", headers=writer).status_code for _ in range(3)] == [201, 201, 402]


def test_idempotency_keys_are_scoped_per_user(client: httpx.Client) -> None:
    acme, key = fresh("acme"), fresh("key")
    alice, bob = bearer(fresh("alice"), acme), bearer(fresh("bob"), acme)
    ref = fresh("order")

    def post(user: dict[str, str]) -> tuple[int, str | None, dict[str, Any]]:
        r = client.post("/orders", headers={**user, "Idempotency-Key": key}, json={"ref": ref})
        return r.status_code, r.headers.get("idempotent-replayed"), r.json()

    assert post(alice) == (201, None, {"ref": ref, "run": 1})
    assert post(bob) == (201, None, {"ref": ref, "run": 2})  # the same key from another user of the tenant: runs
    assert post(alice) == (201, "true", {"ref": ref, "run": 1})  # the same user: replayed
    assert post(bob) == (201, "true", {"ref": ref, "run": 2})
    assert post({}) == (201, None, {"ref": ref, "run": 3})  # anonymous: the client address's own keys
    assert post({}) == (201, "true", {"ref": ref, "run": 3})


def test_concurrency_is_limited_per_user(server: Uvicorn) -> None:
    acme = fresh("acme")
    alice, bob = bearer(fresh("alice"), acme), bearer(fresh("bob"), acme)

    async def main() -> list[tuple[str, int]]:
        async with httpx.AsyncClient(base_url=server.url, headers=RID) as client:
            sent = [("alice", alice), ("alice", alice), ("bob", bob)]
            responses = await asyncio.gather(*(client.get("/slow?sleep=0.5", headers=h) for _, h in sent))
        return sorted((name, r.status_code) for (name, _), r in zip(sent, responses, strict=True))

    assert asyncio.run(main()) == [("alice", 200), ("alice", 429), ("bob", 200)]


def test_a_bad_or_expired_token_is_answered_by_the_apps_own_middleware(client: httpx.Client) -> None:
    forged = jwt.encode({"sub": "mallory", "exp": int(time.time()) + 60}, "another-secret-of-at-least-32-bytes!")
    cases = {
        "Bearer not-a-jwt": "Not enough segments",
        f"Bearer {forged}": "Signature verification failed",
        f"Bearer {token(fresh('alice'), expires_in=-60)}": "Signature has expired",
        "Bearer " + jwt.encode({"sub": "x"}, SECRET): 'Token is missing the "exp" claim',
    }
    for header, reason in cases.items():
        r = client.get("/ping", headers={"Authorization": header})
        kept = {k: v for k, v in r.headers.items() if k not in ("date", "server", "content-length")}
        assert (r.status_code, r.json(), kept) == (
            401,
            {"error": "invalid_token", "reason": reason},
            {
                "content-type": "application/json",
                "www-authenticate": 'Bearer error="invalid_token"',
                "x-request-id": "jwt-test",  # errorkit's outer layer is around it; its gateway never ran
            },
        )


# -- the one-trip path: the limit and the claim in one script, or two steps ------------------------


async def post_costs(backend: RedisBackend, scope_of_user: bool, users: list[tuple[str, str]]) -> list[list[int]]:
    """For each (user, tenant): the Redis commands of a first-time idempotent POST and of its replay."""
    app = build(backend, idempotency_scope=per_user if scope_of_user else None)
    costs = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=10) as client:
            for sub, tenant in users:
                user = bearer(sub, tenant)
                warm = {**user, "Idempotency-Key": "warm"}  # the scripts loaded on the nodes of this user
                assert (await client.post("/orders", headers=warm, json={"ref": f"{sub}-w"})).status_code == 201
                seen = []
                for _ in range(2):
                    before = backend.redis.commands_sent
                    r = await client.post("/orders", headers={**user, "Idempotency-Key": "k"}, json={"ref": sub})
                    assert r.json() == {"ref": sub, "run": 1}
                    seen.append(backend.redis.commands_sent - before)
                costs.append(seen)
    await backend.close()
    return costs


@pytest.mark.parametrize("scope_of_user", [True, False], ids=["scope_of=per_user", "default scope"])
def test_a_per_user_limit_and_claim_cost_one_script_when_they_share_a_slot(redis_url: str, scope_of_user: bool) -> None:
    backend = RedisBackend(redis_url, prefix=fresh("trip"))
    costs = asyncio.run(post_costs(backend, scope_of_user, [(fresh("alice"), fresh("acme"))]))
    # per user: count and claim in one script, then the completion; a replay one script. The default
    # scope (the tenant's slot) differs from the limiter's (the user's): count, then claim (one more each)
    assert costs == ([[2, 1]] if scope_of_user else [[3, 2]])


def test_on_a_cluster_a_limit_and_a_claim_in_different_slots_take_two_steps() -> None:
    """Users whose own slot and whose tenant's slot are on different primaries: nothing is sent
    to a node as one script across two slots (Redis would refuse it: CROSSSLOT)."""
    with cluster_setup() as cluster:
        primaries = cluster.primaries()

        def primary(tag: str) -> int:
            slot = hash_slot("{" + tag + "}")
            return next(port for port, (first, last) in primaries.items() if first <= slot <= last)

        tenant = "acme"
        users = [(f"u{n}", tenant) for n in range(200) if primary(f"user:{tenant}/u{n}") != primary(f"ws:{tenant}")]
        users = users[:3]
        assert len(users) == 3

        per_user_scope = asyncio.run(post_costs(RedisBackend(cluster.url, prefix="one"), True, users))
        default_scope = asyncio.run(post_costs(RedisBackend(cluster.url, prefix="two"), False, users))
    assert per_user_scope == [[2, 1]] * 3
    assert default_scope == [[3, 2]] * 3


def test_a_key_refused_by_api_key_auth_is_counted_by_address_whatever_user_is_outside(redis_url: str) -> None:
    """With errorkit's APIKeyAuth installed, a refused key is anonymous: an outer middleware's user
    does not choose the bucket it is counted in."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from errorkit import APIKeyAuth, ErrorKit, RateLimiter

    class OuterUser:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                name = dict(scope["headers"]).get(b"x-user", b"nobody").decode()
                scope["user"] = SimpleUser(name)
            await self.app(scope, receive, send)

    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    backend = RedisBackend(redis_url, prefix=f"t-{uuid.uuid4().hex[:8]}")
    app = Starlette(routes=[Route("/x", ok)])
    app.add_middleware(OuterUser)
    ErrorKit().install(app, auth=APIKeyAuth(backend), rate_limit=RateLimiter(backend, limits="1/minute"))
    with TestClient(app) as client:
        client.portal.call(backend.initialize)  # type: ignore[union-attr]  # (a new Redis: adopt it)
        bad = {"X-API-Key": "ek_nobody.not-a-real-secret"}
        first = client.get("/x", headers={**bad, "X-User": "alice"})
        second = client.get("/x", headers={**bad, "X-User": "bob"})
    assert (first.status_code, second.status_code) == (401, 429)


def test_log_records_carry_the_workspace_of_your_own_user() -> None:
    from errorkit._observe.log_context import log_extra

    scope: Scope = {"type": "http", "headers": [], "state": {}, "user": Tenanted("u_1", "acme")}
    assert log_extra(scope=scope)["workspace_id"] is None  # (not read yet: no stage asked)
    assert get_principal(scope) is not None
    assert log_extra(scope=scope)["workspace_id"] == "acme"


class Tenanted(SimpleUser):
    def __init__(self, username: str, tenant_id: str) -> None:
        super().__init__(username)
        self.tenant_id = tenant_id
