"""Run servers under wrk, interleaved, and report medians as ratios to bare Starlette.

Server: uvicorn, one worker, pinned to core 0. Load: wrk -t1 -c64, pinned to core 1
(with redis-server). Each round runs every variant once, in order, so slow drift of the
machine hits all of them alike; the table reports the median of the rounds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_CORE, LOAD_CORE = "0", "1"


def ensure_tools() -> None:
    missing = [tool for tool in ("wrk", "redis-server", "taskset") if shutil.which(tool) is None]
    if missing:
        packages = {"wrk": "wrk", "redis-server": "redis-server", "taskset": "util-linux"}
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *(packages[m] for m in missing)], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(port)


@contextmanager
def process(
    args: list[str], port: int, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def redis_server() -> Iterator[str]:
    port = free_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        process(
            [
                "taskset",
                "-c",
                LOAD_CORE,
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            port,
        ),
    ):
        yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def redis_cluster(primaries: int = 3) -> Iterator[str]:
    """A local Redis Cluster of `primaries` nodes (no replicas), pinned beside the load generator."""
    ports: list[int] = []
    while len(ports) < primaries:  # the cluster bus listens on port + 10000
        port = free_port()
        if port + 10000 < 65536:
            ports.append(port)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        for port in ports:
            folder = Path(tmp) / str(port)
            folder.mkdir()
            args = ["taskset", "-c", LOAD_CORE, "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", str(folder), "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf"]  # fmt: skip
            stack.enter_context(process(args, port))
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        deadline = time.monotonic() + 30
        while any("cluster_state:ok" not in _cli(p, "CLUSTER", "INFO") for p in ports):
            if time.monotonic() > deadline:
                raise TimeoutError("the benchmark cluster did not come up")
            time.sleep(0.1)
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)


def _cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True).stdout


def redis_cli(url: str, *args: str) -> str:
    """Run a redis-cli command on every server of `url` (one, or each node of a cluster); outputs joined."""
    hosts = url.split("://", 1)[1].split("/", 1)[0].split(",")
    return "".join(_cli(int(host.rsplit(":", 1)[1]), *args) for host in hosts)


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    redis_calls: int | None
    server_cpu_s: float = 0.0  # CPU time the server process used during the measured run
    seconds: float = 0.0  # the measured run's wall time

    @property
    def busy(self) -> float:
        """The share of its core the server used (1.0: CPU-bound; less: it waited)."""
        return self.server_cpu_s / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        """Server CPU per request, microseconds: what the ratio comes from when the server is CPU-bound."""
        return self.server_cpu_s / self.requests * 1e6 if self.requests else 0.0


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if match is None:
        raise ValueError(f"unexpected wrk latency {value!r}")
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, seconds: int, script: Path | None = None, connections: int = 64) -> Run:
    args = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Run(rps, p50, p99, requests, int(bad.group(1)) if bad else 0, None)


# Commands the benchmarked apps only ever run inside Lua scripts; INFO commandstats counts
# them too, so they are left out to count the commands clients send (round-trip work).
SCRIPT_INNER = {
    "time",
    "get",
    "set",
    "exists",
    "hmget",
    "hset",
    "hget",
    "hdel",
    "del",
    "pexpire",
    "pexpireat",
    "expire",
    "incr",
}
HARNESS = {"info", "config", "config|resetstat", "cluster|slots", "cluster|info"}


def measure(
    variant: str,
    path: str,
    redis_url: str,
    seconds: int,
    warmup: int,
    script: Path | None,
    root: Path = ROOT,
    connections: int = 64,
    gc_freeze: bool = False,
) -> Run:
    port = free_port()
    env = {"BENCH_APP": variant, "REDIS_URL": redis_url, "BENCH_GC": "freeze" if gc_freeze else ""}
    args = [
        "taskset",
        "-c",
        SERVER_CORE,
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.apps:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    redis_cli(redis_url, "FLUSHALL")  # each case starts from an empty Redis: no records of another case
    with process(args, port, env, cwd=root) as server:  # uvicorn imports the app (and errorkit) from `root`
        url = f"http://127.0.0.1:{port}{path}"  # (taskset execs uvicorn: one worker serves in this pid)
        wrk(url, warmup, script, connections)
        redis_cli(redis_url, "CONFIG", "RESETSTAT")
        cpu_before, started = process_cpu_seconds(server.pid), time.monotonic()
        run = wrk(url, seconds, script, connections)
        run.server_cpu_s = process_cpu_seconds(server.pid) - cpu_before
        run.seconds = time.monotonic() - started
        stats = redis_cli(redis_url, "INFO", "commandstats")
        calls = [(name, int(n)) for name, n in re.findall(r"cmdstat_([\w|]+):calls=(\d+)", stats)]
        run.redis_calls = sum(n for name, n in calls if name not in SCRIPT_INNER | HARNESS)
        return run


@dataclass(frozen=True)
class Case:
    """One line of a table: which app (BENCH_APP), which path, which wrk script."""

    app: str
    path: str = "/"
    script: Path | None = None
    root: Path = ROOT  # the source tree served: this checkout, or an older commit's (--compare)
    cluster: bool = False  # against a local 3-primary Redis Cluster instead of the single node
    baseline: str | None = None  # the case this one's ratio is taken to (default: the table's first)
    connections: int = 64  # wrk -c: 1 measures unloaded latency
    gc_freeze: bool = False  # the server calls gc.freeze() once the app is built (BENCH_GC=freeze)
    compare: bool = True  # with --compare REV, serve this case from REV too (False: REV has no such app)


def rounds(cases: dict[str, Case], rounds: int, seconds: int, warmup: int) -> dict[str, list[Run]]:
    ensure_tools()
    results: dict[str, list[Run]] = {name: [] for name in cases}
    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(redis_server())
        cluster_url = stack.enter_context(redis_cluster()) if any(c.cluster for c in cases.values()) else ""
        for r in range(rounds):
            for name, case in cases.items():
                url = cluster_url if case.cluster else redis_url
                run = measure(
                    case.app, case.path, url, seconds, warmup, case.script, case.root, case.connections, case.gc_freeze
                )
                results[name].append(run)
                print(
                    f"round {r + 1} {name:22} {run.rps:9.0f} req/s  p50 {run.p50_ms:.2f} ms  "
                    f"p99 {run.p99_ms:.2f} ms  non-2xx {run.non_2xx}  redis calls/req "
                    f"{(run.redis_calls or 0) / run.requests:.3f}  server busy {run.busy:.0%}  "
                    f"{run.cpu_us:.1f} µs CPU/req",
                    flush=True,
                )
    return results


def table(
    results: dict[str, list[Run]], baseline: str, labels: dict[str, str], baselines: dict[str, str] | None = None
) -> str:
    """Medians over rounds; the ratio is the median of each round's ratio to that round's baseline
    (`baselines` names another one for some rows: a POST against the bare POST)."""
    lines = [
        "| server | req/s (median) | × bare (per-round median) | p50 ms | p99 ms | Redis commands / request "
        "| server CPU µs / request | server core busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, runs in results.items():
        rps = statistics.median(r.rps for r in runs)
        base = results[(baselines or {}).get(variant, baseline)]
        ratio = statistics.median(r.rps / b.rps for r, b in zip(runs, base, strict=True))
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        calls = statistics.median((r.redis_calls or 0) / r.requests for r in runs)
        cpu_us = statistics.median(r.cpu_us for r in runs)
        busy = statistics.median(r.busy for r in runs)
        label = labels.get(variant, variant)
        lines.append(
            f"| {label} | {rps:,.0f} | {ratio:.2f} | {p50:.2f} | {p99:.2f} | {calls:.2f} | {cpu_us:.1f} | {busy:.0%} |"
        )
    return "\n".join(lines)


def write_section(readme: Path, marker: str, body: str) -> None:
    """Replace the text between `<!-- marker -->` and `<!-- /marker -->` in the README."""
    text = readme.read_text() if readme.exists() else ""
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    block = f"{start}\n{body}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)


@contextmanager
def source_at(rev: str) -> Iterator[Path]:
    """The project's tree at `rev`, unpacked in a temporary folder (to serve an older commit)."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)


def main(cases: dict[str, Case], section: str, module: str, what: str) -> None:
    """Command line of a benchmark module: run the rounds, print the table, write it into README.md.

    `--compare REV` also serves every errorkit case from commit REV in the same rounds (rows
    marked `@ REV`, printed), the way to tell a regression from this machine's drift; the
    README gets this tree's rows.
    """
    import argparse
    import platform

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compare", metavar="REV", help="also run the errorkit cases as of this commit")
    args = parser.parse_args()
    baseline = next(iter(cases))
    command = f"python -m {module} --rounds {args.rounds} --seconds {args.seconds}"
    if args.compare:
        with source_at(args.compare) as old:
            compared = dict(cases)
            for name, case in cases.items():
                if case.compare and case.app.startswith(("errorkit", "idem", "stack", "plain")):
                    compared[f"{name} @ {args.compare}"] = dataclasses.replace(case, root=old)
            results = rounds(compared, args.rounds, args.seconds, args.warmup)
        baselines = {name: case.baseline for name, case in compared.items() if case.baseline}
        print(table(results, baseline, {}, baselines))
        command += f" --compare {args.compare}"
        results = {name: runs for name, runs in results.items() if name in cases}  # the README shows this tree
    else:
        results = rounds(cases, args.rounds, args.seconds, args.warmup)
        baselines = {name: case.baseline for name, case in cases.items() if case.baseline}
        print(table(results, baseline, {}, baselines))
    body = (
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, Python {platform.python_version()}, "
        f"{args.rounds} interleaved rounds of {args.seconds} s, {what}.\n\n```\n{command}\n```\n\n"
        + table(results, baseline, {}, baselines)
    )
    write_section(Path(__file__).parent / "README.md", section, body)
