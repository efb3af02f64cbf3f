"""A realistic load on the detail_api example, checking errorkit's invariants while it runs.

    python -m benchmarks.scenario [--seconds 30] [--concurrency 32]

Runs the example under uvicorn with 4 workers on a real redis-server, then drives a mix of
reads, POSTs with fresh and replayed Idempotency-Keys, a workspace hammering a route over
its limit, bad keys and invalid bodies. Fails (exit 1) on any broken invariant:
no 5xx; every error in the documented shape with its request id; rate-limit headers on every
response; one campaign per idempotency key (no duplicate side effect); the limited route
admits no more than its limit allows. Prints requests/s, p50/p99 per route and counts per
status and code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.harness import free_port, process, redis_server

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"X-API-Key": "ont_admin.demo-admin-secret"}
OTHER = {"X-API-Key": "ont_other.demo-other-secret"}
EXPORT_LIMIT, EXPORT_PERIOD = 2, 60  # the example's limit on the export route


@dataclass
class Report:
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    created: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # idempotency key -> campaign ids
    exports_admitted: int = 0

    def check(self, route: str, r: httpx.Response, elapsed: float) -> None:
        self.latencies[route].append(elapsed)
        self.statuses[r.status_code] += 1
        rid = r.headers.get("x-request-id")
        if r.status_code >= 500:
            self.violations.append(f"{route}: {r.status_code} {r.text[:200]}")
        if not all(h in r.headers for h in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")):
            self.violations.append(f"{route}: {r.status_code} without rate-limit headers")
        if r.status_code >= 400:
            body = r.json()
            if isinstance(body.get("detail"), list):  # the 422 shape
                self.codes["(validation array)"] += 1
                ok = set(body) == {"detail", "request_id"} and all(
                    set(i) == {"loc", "msg", "type"} for i in body["detail"]
                )
            else:
                self.codes[str(body.get("code"))] += 1
                ok = set(body) == {"detail", "code", "request_id"} and isinstance(body["detail"], str)
            if not ok or body.get("request_id") != rid:
                self.violations.append(f"{route}: undocumented error shape {body}")

    def summary(self) -> str:
        total = sum(self.statuses.values())
        lines = [
            f"{total} requests in {self.seconds:.1f} s: {total / self.seconds:,.0f} req/s; "
            f"{len(self.violations)} broken invariants",
            "",
            "| route | requests | p50 ms | p99 ms |",
            "|---|---:|---:|---:|",
        ]
        for route, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            lines.append(f"| {route} | {len(values)} | {statistics.median(values) * 1000:.1f} | {p99 * 1000:.1f} |")
        lines += ["", "| status | count |", "|---|---:|"]
        lines += [f"| {status} | {n} |" for status, n in sorted(self.statuses.items())]
        lines += ["", "| error code | count |", "|---|---:|"]
        lines += [f"| {code} | {n} |" for code, n in self.codes.most_common()]
        return "\n".join(lines)


async def drive(base: str, seconds: float, concurrency: int) -> Report:
    report = Report()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
        first = await client.post("/workspaces/ws_demo/campaigns", json={"name": "seed"}, headers=ADMIN)
        seed = first.json()["id"]
        await client.post(f"/workspaces/ws_demo/campaigns/{seed}/start", headers=ADMIN)
        await client.post(f"/workspaces/ws_demo/campaigns/{seed}/complete", headers=ADMIN)
        other = (await client.post("/workspaces/ws_other/campaigns", json={"name": "hot"}, headers=OTHER)).json()["id"]
        used_keys: list[str] = []
        start = time.monotonic()
        deadline = start + seconds

        async def one(n: int) -> None:
            roll = random.random()
            if roll < 0.40:
                route, call = "GET campaign", client.get(f"/workspaces/ws_demo/campaigns/{seed}", headers=ADMIN)
            elif roll < 0.55 or (roll < 0.70 and not used_keys):
                key = f"scenario-{os.getpid()}-{n}"
                used_keys.append(key)
                route = "POST campaign (new key)"
                call = client.post(
                    "/workspaces/ws_demo/campaigns", json={"name": key}, headers={**ADMIN, "Idempotency-Key": key}
                )
            elif roll < 0.70:
                key = random.choice(used_keys)
                route = "POST campaign (replayed key)"
                call = client.post(
                    "/workspaces/ws_demo/campaigns", json={"name": key}, headers={**ADMIN, "Idempotency-Key": key}
                )
            elif roll < 0.80:
                route, call = (
                    "POST export (over limit)",
                    client.post(f"/workspaces/ws_other/campaigns/{other}/export", headers=OTHER),
                )
            elif roll < 0.90:
                route, call = (
                    "GET with a bad key",
                    client.get(f"/workspaces/ws_demo/campaigns/{seed}", headers={"X-API-Key": "ont_admin.bad-secret"}),
                )
            else:
                route = "POST topics (invalid body)"
                call = client.post("/workspaces/ws_demo/topics", json={"topics": [{"weight": -1}]}, headers=ADMIN)
            t0 = time.monotonic()
            r = await call
            report.check(route, r, time.monotonic() - t0)
            if route.startswith("POST campaign") and r.status_code == 201:
                report.created[r.json()["name"]].add(r.json()["id"])
            if route.startswith("POST export") and r.status_code == 202:
                report.exports_admitted += 1

        async def worker(w: int) -> None:
            n = w
            while time.monotonic() < deadline:
                await one(n)
                n += concurrency

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        report.seconds = time.monotonic() - start
    for key, ids in report.created.items():
        if len(ids) != 1:
            report.violations.append(f"idempotency key {key} created {len(ids)} campaigns: {sorted(ids)}")
    allowed = EXPORT_LIMIT + int(report.seconds // (EXPORT_PERIOD / EXPORT_LIMIT)) + 1
    if report.exports_admitted > allowed:
        report.violations.append(f"export admitted {report.exports_admitted} > {allowed} allowed")
    return report


def run(seconds: float, concurrency: int = 32, workers: int = 4) -> Report:
    with redis_server() as redis_url:
        port = free_port()
        args = [sys.executable, "-m", "uvicorn", "examples.detail_api:app", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--no-access-log", "--log-level", "warning"]  # fmt: skip
        env = {"REDIS_URL": redis_url, "EXAMPLE_RATE_LIMIT": "1000000"}
        with process(args, port, env):
            time.sleep(0.5)  # let every worker finish its startup (demo keys)
            return asyncio.run(drive(f"http://127.0.0.1:{port}", seconds, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    report = run(args.seconds, args.concurrency)
    print(report.summary())
    for violation in report.violations[:20]:
        print("BROKEN:", violation)
    if report.violations:
        raise SystemExit(1)
    from benchmarks.harness import write_section

    command = f"python -m benchmarks.scenario --seconds {args.seconds:g} --concurrency {args.concurrency}"
    write_section(Path(__file__).parent / "README.md", "scenario", f"```\n{command}\n```\n\n{report.summary()}")


if __name__ == "__main__":
    main()
