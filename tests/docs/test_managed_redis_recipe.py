"""docs/recipes/managed-redis.md: each URL of managed_redis/elasticache.sh, managed_redis/memorystore.sh,
managed_redis/upstash.sh, managed_redis/azure.sh and managed_redis/no_hostname_check.sh parses to the
settings the page describes; each one, pointed at a real TLS redis-server with the same password, connects
and decides; and the hostname check fails, and is turned off, as the page says."""

import asyncio
import shutil
from pathlib import Path

import pytest

from errorkit import RedisBackend, StoreUnavailable, issue_api_key
from errorkit._stores.redis.urls import parse_url
from tests.docs.support import commands
from tests.support.servers import BASE_ARGS, free_port, redis_process

CA_FILE = "/etc/memorystore/server-ca.pem"


def urls(name: str) -> list[str]:
    found = []
    for line in commands(f"managed_redis/{name}"):
        assert line.startswith("export REDIS_URL='") and line.endswith("'"), line
        found.append(line.removeprefix("export REDIS_URL='").removesuffix("'"))
    return found


#: (topology, addresses, username, password, db, CA file, hostname checked)
EXPECTED = {
    "elasticache.sh": [
        ("single", [("master.orders.abc123.use1.cache.amazonaws.com", 6379)], None, "my-auth-token", 0, None, True),
        (
            "single",
            [("master.orders.abc123.use1.cache.amazonaws.com", 6379)],
            "orders-app",
            "my-password",
            0,
            None,
            True,
        ),
        (
            "cluster",
            [("clustercfg.orders.abc123.use1.cache.amazonaws.com", 6379)],
            None,
            "my-auth-token",
            0,
            None,
            True,
        ),
    ],
    "memorystore.sh": [("single", [("10.0.0.3", 6378)], None, "my-auth-string", 0, CA_FILE, True)],
    "upstash.sh": [("single", [("eu1-example-12345.upstash.io", 6379)], "default", "my-password", 0, None, True)],
    "azure.sh": [("single", [("orders.redis.cache.windows.net", 6380)], None, "abc/def+ghi=", 0, None, True)],
    "no_hostname_check.sh": [
        (
            "cluster",
            [("clustercfg.orders.abc123.use1.cache.amazonaws.com", 6379)],
            None,
            "my-auth-token",
            0,
            None,
            False,
        ),
    ],
}


def test_every_url_parses_to_what_the_page_says(certificates: dict[str, Path]) -> None:
    for name, expected in EXPECTED.items():
        parsed = [parse_url(url.replace(CA_FILE, str(certificates["ca_crt"]))) for url in urls(name)]
        got = [
            (
                p.topology,
                list(p.addresses),
                p.username,
                p.password,
                p.db,
                None if p.tls is None or p.tls.ca_certs is None else CA_FILE,
                p.tls is not None and p.tls.check_hostname,
            )
            for p in parsed
        ]
        assert got == expected, name
        assert all(p.tls is not None and p.tls.cert_reqs == "required" for p in parsed)  # TLS, the chain checked
        assert all("my-" not in p.text and "abc" not in p.text.split("@")[0] for p in parsed)  # printed redacted


def tls_server(certs: dict[str, Path], workdir: Path, port: int, password: str, *addresses: str):  # type: ignore[no-untyped-def]
    args = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(certs["server_crt"]),
            "--tls-key-file", str(certs["server_key"]), "--tls-ca-cert-file", str(certs["ca_crt"]),
            "--tls-auth-clients", "no", "--requirepass", password, *BASE_ARGS]  # fmt: skip
    if addresses:
        args[args.index("--bind") + 1] = " ".join(addresses)  # (BASE_ARGS binds 127.0.0.1)
    return redis_process(args, port, workdir)


async def decide(url: str) -> str:
    """Issue a key on the store the URL names (a dataset marker and a record written, over TLS)."""
    store = RedisBackend(url, timeout=2.0)
    try:
        return await issue_api_key(store, workspace_id="ws_managed")
    finally:
        await store.close()


@pytest.mark.parametrize("name", ["elasticache.sh", "memorystore.sh", "upstash.sh", "azure.sh"])
def test_each_single_server_form_connects_over_tls(name: str, certificates: dict[str, Path], tmp_path: Path) -> None:
    """Each URL with its host and port those of a local TLS redis-server that asks for the same password.

    ElastiCache, Upstash and Azure present publicly signed certificates, which the system's trust store
    holds; the local server's CA is not in it, so the test adds it as `ssl_ca_certs`: what is checked here
    is TLS, the password (and user) and the decisions, not the public CA."""
    ca_file = certificates["ca_crt"]
    for url in urls(name):
        parsed = parse_url(url.replace(CA_FILE, str(ca_file)))
        if parsed.topology != "single":
            continue
        port = free_port()
        ((host, written_port),) = parsed.addresses
        local = url.replace(f"{host}:{written_port}", f"localhost:{port}")
        local = local.replace(CA_FILE, str(ca_file)) if CA_FILE in url else f"{local}?ssl_ca_certs={ca_file}"
        password = parsed.password or ""
        workdir = tmp_path / str(port)
        workdir.mkdir()
        with tls_server(certificates, workdir, port, password):
            if parsed.username not in (None, "default"):  # an ACL user of its own (ElastiCache RBAC)
                import subprocess

                subprocess.run(
                    ["redis-cli", "-p", str(port), "--tls", "--cacert", str(ca_file), "--no-auth-warning",
                     "-a", password, "ACL", "SETUSER", parsed.username, "on", f">{password}", "~*", "&*", "+@all"],
                    check=True, capture_output=True,
                )  # fmt: skip
            assert asyncio.run(decide(local)).startswith("ek_")
            wrong = local.replace(f":{password.replace('/', '%2F')}@", ":not-the-password@")
            assert wrong != local
            with pytest.raises(StoreUnavailable):
                asyncio.run(decide(wrong))


def test_the_hostname_check_and_turning_it_off(certificates: dict[str, Path], tmp_path: Path) -> None:
    """The server's certificate names 127.0.0.1 and localhost; reached at 127.0.0.2 it fails the name
    check, and `ssl_check_hostname=false` connects, the chain still checked against the CA."""
    port = free_port()
    with tls_server(certificates, tmp_path, port, "my-auth-token", "127.0.0.1", "127.0.0.2"):
        base = f"rediss://:my-auth-token@127.0.0.2:{port}/0?ssl_ca_certs={certificates['ca_crt']}"
        with pytest.raises(StoreUnavailable, match="IP address mismatch"):
            asyncio.run(decide(base))
        assert asyncio.run(decide(base + "&ssl_check_hostname=false")).startswith("ek_")
        other_ca = certificates["other-ca_crt"]
        other = f"rediss://:my-auth-token@127.0.0.2:{port}/0?ssl_ca_certs={other_ca}&ssl_check_hostname=false"
        with pytest.raises(StoreUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            asyncio.run(decide(other))  # another CA: refused, name check or not


def test_a_ca_file_may_hold_the_old_and_the_new_ca(certificates: dict[str, Path], tmp_path: Path) -> None:
    bundle = tmp_path / "server-ca.pem"
    bundle.write_text(certificates["other-ca_crt"].read_text() + certificates["ca_crt"].read_text())
    port = free_port()
    (url,) = urls("memorystore.sh")
    local = url.replace(CA_FILE, str(bundle)).replace("10.0.0.3:6378", f"127.0.0.1:{port}")
    workdir = tmp_path / "server"
    workdir.mkdir()
    with tls_server(certificates, workdir, port, "my-auth-string"):
        assert asyncio.run(decide(local)).startswith("ek_")
    with pytest.raises(ValueError, match="cannot load the TLS files"):
        RedisBackend(url)  # the page's path does not exist here: refused where the store is built
    shutil.rmtree(workdir)
