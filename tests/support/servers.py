"""Real servers for tests: uvicorn and redis-server as subprocesses on free loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent  # the repository


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(condition: Callable[[], bool], within: float) -> float:
    """Seconds until `condition` holds (polled every 2 ms in the running event loop); fails after `within`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.002)
    return time.monotonic() - start


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server we started, by its PID: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Uvicorn:
    def __init__(self, app: str, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.app, self.process, self.port, self.log = app, process, port, log
        self.url = f"http://127.0.0.1:{port}"

    def output(self, wait_for: str | None = None, timeout: float = 3.0) -> str:
        """The server's log so far; with `wait_for`, first wait (a little) until it shows up."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log.read_text(errors="replace")
            if wait_for is None or wait_for in text or time.monotonic() > deadline:
                return text
            time.sleep(0.05)


@contextmanager
def uvicorn(
    app: str,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    access_log: bool = False,
    port: int | None = None,
    options: Sequence[str] = (),
) -> Iterator[Uvicorn]:
    """Run `uvicorn app` (an import string) until the block ends (on `port`, else a free one);
    `options` are more of uvicorn's command-line options."""
    port = port or free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "uvicorn.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    app,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                    *([] if access_log else ["--no-access-log"]),
                    *options,
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )
            try:
                wait_for_port(port, process)
                yield Uvicorn(app, process, port, log)
            finally:
                stop(process)


class Redis:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process, self.port = process, port
        self.url = f"redis://127.0.0.1:{port}/0"


@contextmanager
def redis_server(port: int | None = None) -> Iterator[Redis]:
    """A throwaway redis-server (no persistence) on a free loopback port (or on `port`)."""
    port = port or free_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        redis_process(["--port", str(port), "--dir", tmp, *BASE_ARGS], port, Path(tmp)) as process,
    ):
        yield Redis(process, port)


@contextmanager
def redis_process(args: list[str], port: int, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Any redis-server invocation (TLS, unix socket, Sentinel, Cluster node), stopped by its PID."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run scripts/test, which installs it")
    log = (workdir / f"redis-{port}.log").open("wb")
    process = subprocess.Popen([binary, *args], stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        if port:
            wait_for_port(port, process)
        yield process
    finally:
        stop(process)
        log.close()


BASE_ARGS = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and an unrelated CA."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=errorkit test {ca}",
                "-keyout", f"{ca}.key", "-out", f"{ca}.crt")  # fmt: skip
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn in (("server", "localhost"), ("client", "errorkit client")):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={cn}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
        )
        extra = ["-extfile", "server.ext"] if name == "server" else []
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", f"{name}.crt", *extra)  # fmt: skip
    return {p.stem + p.suffix.replace(".", "_"): p for p in folder.iterdir() if p.suffix in (".crt", ".key")}


class Sentinel:
    """A master, one replica and one sentinel (quorum 1) on free loopback ports."""

    def __init__(self, master: int, replica: int, sentinel: int, service: str, url: str) -> None:
        self.master, self.replica, self.sentinel, self.service, self.url = master, replica, sentinel, service, url


def _cli(port: int, *args: str, tls: dict[str, Path] | None = None, password: str | None = None) -> str:
    security = ["--tls", "--cacert", str(tls["ca_crt"])] if tls else []
    security += ["--no-auth-warning", "-a", password] if password else []
    out = subprocess.run(["redis-cli", "-p", str(port), *security, *args], capture_output=True, text=True, timeout=5)
    return out.stdout


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


@contextmanager
def sentinel_setup(
    service: str = "errorkit",
    *,
    tls: dict[str, Path] | None = None,
    password: str | None = None,
    sentinel_password: str | None = None,
) -> Iterator[Sentinel]:
    """Sentinel over plain TCP, or TLS everywhere (`tls`: `make_certificates()`), with optional passwords."""
    master, replica, sentinel = free_port(), free_port(), free_port()

    def listen(port: int) -> list[str]:  # a server's own port, and TLS for its clients and replication
        if tls is None:
            return ["port", str(port)]
        return ["port", "0", "tls-port", str(port), "tls-cert-file", str(tls["server_crt"]),
                "tls-key-file", str(tls["server_key"]), "tls-ca-cert-file", str(tls["ca_crt"]),
                "tls-auth-clients", "no", "tls-replication", "yes"]  # fmt: skip

    def flags(words: list[str]) -> list[str]:
        return [f"--{word}" if i % 2 == 0 else word for i, word in enumerate(words)]

    auth = ["requirepass", password, "masterauth", password] if password else []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = workdir / "sentinel.conf"
        own = listen(sentinel)
        lines = [f"{own[i]} {own[i + 1]}" for i in range(0, len(own), 2)]
        lines += ["bind 127.0.0.1", f"sentinel monitor {service} 127.0.0.1 {master} 1",
                  f"sentinel down-after-milliseconds {service} 1000", f"sentinel failover-timeout {service} 5000"]  # fmt: skip
        lines += [f"sentinel auth-pass {service} {password}"] if password else []
        lines += [f"requirepass {sentinel_password}"] if sentinel_password else []
        config.write_text("\n".join(lines) + "\n")
        with (
            redis_process([*flags(listen(master) + auth), *BASE_ARGS], master, workdir),
            redis_process(
                [*flags(listen(replica) + auth), "--replicaof", "127.0.0.1", str(master), *BASE_ARGS],
                replica,
                workdir,
            ),
            redis_process([str(config), "--sentinel"], sentinel, workdir),
        ):

            def replica_synced() -> bool:
                return "master_link_status:up" in _cli(replica, "INFO", "replication", tls=tls, password=password)

            _wait(replica_synced, "the replica to sync")

            def knows_replica() -> bool:
                out = _cli(sentinel, "SENTINEL", "replicas", service, tls=tls, password=sentinel_password)
                return str(replica) in out

            _wait(knows_replica, "the sentinel to know the replica")
            scheme = "rediss+sentinel" if tls else "redis+sentinel"
            query = [f"ssl_ca_certs={tls['ca_crt']}"] if tls else []
            query += [f"sentinel_password={sentinel_password}"] if sentinel_password else []
            userinfo = f"{password}@" if password else ""
            url = f"{scheme}://{userinfo}127.0.0.1:{sentinel}/{service}" + ("?" + "&".join(query) if query else "")
            yield Sentinel(master, replica, sentinel, service, url)


class Cluster:
    """Three primaries and three replicas (`redis-cli --cluster create`), node timeout 1 s."""

    def __init__(self, ports: list[int], processes: dict[int, subprocess.Popen[bytes]]) -> None:
        self.ports, self.processes = ports, processes
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports[:2])

    def primaries(self) -> dict[int, tuple[int, int]]:
        """Port -> (first slot, last slot) of every primary, as the cluster now says."""
        for port in self.ports:
            if self.processes[port].poll() is not None:
                continue
            out = subprocess.run(
                ["redis-cli", "-p", str(port), "CLUSTER", "SHARDS"], capture_output=True, text=True, timeout=5
            )
            if out.returncode == 0:
                break
        result: dict[int, tuple[int, int]] = {}
        lines = subprocess.run(
            ["redis-cli", "-p", str(port), "CLUSTER", "NODES"], capture_output=True, text=True, timeout=5
        ).stdout
        for line in lines.splitlines():
            fields = line.split()
            if "master" in fields[2] and "fail" not in fields[2] and len(fields) > 8:
                start, _, end = fields[8].partition("-")
                result[int(fields[1].split(":")[1].split("@")[0])] = (int(start), int(end or start))
        return result


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


@contextmanager
def cluster_setup() -> Iterator[Cluster]:
    ports = [free_cluster_port() for _ in range(6)]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        processes = {}
        for port in ports:
            workdir = Path(tmp) / str(port)
            workdir.mkdir()
            args = ["--port", str(port), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "1000", *BASE_ARGS]  # fmt: skip
            processes[port] = stack.enter_context(redis_process(args, port, workdir))
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "1",
             "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        _wait(lambda: all("cluster_state:ok" in _cluster_info(p) for p in ports), "the cluster to be ok")
        yield Cluster(ports, processes)


def _cluster_info(port: int) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), "CLUSTER", "INFO"], capture_output=True, text=True, timeout=5
    ).stdout
