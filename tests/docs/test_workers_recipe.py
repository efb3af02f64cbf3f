"""docs/recipes/workers.md: the app (workers/app.py) under uvicorn's workers (workers/uvicorn.sh) and under
gunicorn with uvicorn-worker (workers/gunicorn.sh, workers/gunicorn.conf.py), on a real Redis: its probes
(workers/probes.yaml, workers/exec_probe.yaml) answer as the page says, and a SIGTERM gives back what a
cancelled request held."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import yaml

from errorkit import RedisBackend, issue_api_key
from errorkit._stores.redis.connection import Redis as RedisClient
from tests.docs.support import DOCS_SRC, commands, fence_starting, load, run_argv, snippet_path
from tests.support.servers import free_port, redis_server, wait_for_port

FOLDER = DOCS_SRC / "workers"
PAGE = "recipes/workers.md"


def issue(url: str) -> str:
    async def main() -> str:
        store = RedisBackend(url)
        token = await issue_api_key(store, workspace_id="ws_1")
        await store.close()
        return token

    return asyncio.run(main())


def redis_keys(url: str, pattern: str) -> list[bytes]:
    async def main() -> list[bytes]:
        raw = RedisClient(url)
        found = await raw.execute("KEYS", pattern)
        slots = [await raw.execute("ZCARD", key) for key in found]
        await raw.close()
        return [key for key, count in zip(found, slots, strict=True) if count]

    return asyncio.run(main())


def serve(argv: list[str], port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    process = subprocess.Popen(
        argv, cwd=FOLDER, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=subprocess.STDOUT
    )
    wait_for_port(port, process, timeout=30)
    return process


def probes_answer(base: str, redis_port: int) -> None:
    """Liveness and readiness as the probes of the page ask them, Redis up, then away."""
    probes = yaml.safe_load(snippet_path("workers/probes.yaml").read_text())
    live, ready = probes["livenessProbe"]["httpGet"], probes["readinessProbe"]["httpGet"]
    assert (live, ready) == ({"path": "/health", "port": 8000}, {"path": "/ready", "port": 8000})
    assert httpx.get(base + live["path"]).json() == {"status": "ok"}
    answer = httpx.get(base + ready["path"])
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_uvicorn_workers_probes_and_a_graceful_shutdown(tmp_path: Path) -> None:
    (line,) = commands("workers/uvicorn.sh")
    words = line.split()
    assert words[:2] == ["uvicorn", "app:app"]
    assert words[words.index("--workers") + 1] == "4"
    grace = words[words.index("--timeout-graceful-shutdown") + 1]
    assert grace == "20"
    port = free_port()
    # the page's command on a free port of the loopback, 2 workers (a small machine), a grace of 1 s
    argv = [a for a in words[1:]]
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--workers") + 1] = "2"
    argv[argv.index("--timeout-graceful-shutdown") + 1] = "1"
    with redis_server() as redis:
        key = issue(redis.url)
        log = tmp_path / "uvicorn.log"
        process = serve([sys.executable, "-m", "uvicorn", *argv], port, {"REDIS_URL": redis.url}, log)
        try:
            base = f"http://127.0.0.1:{port}"
            probes_answer(base, redis.port)

            # an export in flight holds a concurrency slot in Redis
            started = threading.Thread(
                target=lambda: httpx.post(base + "/exports", headers={"X-API-Key": key}, timeout=10), daemon=True
            )
            try:
                started.start()
                deadline = time.monotonic() + 5
                while not redis_keys(redis.url, "errorkit:cc:*") and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert len(redis_keys(redis.url, "errorkit:cc:*")) == 1
                os.kill(process.pid, signal.SIGTERM)  # what `docker stop` and Kubernetes send
                process.wait(timeout=20)
            finally:
                started.join(timeout=10)
            # the request was cancelled after the grace period; its slot was given back before the workers exited
            assert redis_keys(redis.url, "errorkit:cc:*") == []
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    output = log.read_text()
    assert "Application startup complete." in output
    assert "give-backs or confirmations unfinished" not in output


def test_readiness_fails_while_redis_is_away_and_liveness_does_not(tmp_path: Path) -> None:
    port = free_port()
    with redis_server() as redis:
        issue(redis.url)  # (a key written: the Redis holds errorkit's dataset marker, as check_stores=True requires)
        log = tmp_path / "uvicorn.log"
        process = serve(
            [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port)], port, {"REDIS_URL": redis.url}, log
        )
        try:
            base = f"http://127.0.0.1:{port}"
            probes_answer(base, redis.port)
            redis.process.send_signal(signal.SIGKILL)
            redis.process.wait()
            away = httpx.get(base + "/ready")
            health = httpx.get(base + "/health")
        finally:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
    assert (away.status_code, away.json()) == (503, {"status": "unavailable"})
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    expected = fence_starting(PAGE, "text", "not ready: ").strip().replace("redis://10.0.0.5:6379/0", redis.url)
    assert expected in log.read_text()


def test_gunicorn_with_uvicorn_worker(tmp_path: Path) -> None:
    install, run = commands("workers/gunicorn.sh")
    assert install == "pip install gunicorn uvicorn-worker"
    assert run == "gunicorn app:app -c gunicorn.conf.py"
    conf = load("workers/gunicorn.conf.py")
    assert (conf["bind"], conf["workers"], conf["worker_class"], conf["graceful_timeout"]) == (
        "0.0.0.0:8000",
        4,
        "uvicorn_worker.UvicornWorker",
        20,
    )
    port = free_port()
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    with redis_server() as redis:
        log = tmp_path / "gunicorn.log"
        # the page's command; the address and the worker count given on the command line, which gunicorn puts first
        argv = [sys.executable, "-m", "gunicorn", *run.split()[1:], "-b", f"127.0.0.1:{port}", "-w", "2"]
        env = {"REDIS_URL": redis.url, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
        key = issue(redis.url)
        process = serve(argv, port, env, log)
        try:
            deadline = time.monotonic() + 30  # gunicorn listens before its workers have started the app
            while log.read_text().count("Application startup complete.") < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            base = f"http://127.0.0.1:{port}"
            probes_answer(base, redis.port)
            assert httpx.post(base + "/exports", headers={"X-API-Key": key}, timeout=10).status_code == 201
        finally:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    output = log.read_text()
    assert process.returncode == 0, output
    assert output.count("Booting worker with pid") == 2
    assert "Traceback" not in output and "Exception in worker process" not in output


def test_the_exec_probe_is_the_store_check(redis_url: str) -> None:
    probe = yaml.safe_load(snippet_path("workers/exec_probe.yaml").read_text())["readinessProbe"]
    command = probe["exec"]["command"]
    assert command == ["errorkit", "store", "check"]
    asyncio.run(_initialize(redis_url))
    done = run_argv(command, {"REDIS_URL": redis_url})
    assert (done.status, done.out) == (
        0,
        f"{redis_url} (prefix 'errorkit') is reachable and holds errorkit's dataset marker\n",
    )
    away = f"redis://127.0.0.1:{free_port()}/0"
    done = run_argv(command, {"REDIS_URL": away})
    assert (done.status, done.err) == (
        1,
        f"errorkit store check: cannot reach the store {away}: Connection refused\n",
    )
    assert probe["timeoutSeconds"] > 4  # errorkit store check waits 2 s to connect and 2 s for a reply


async def _initialize(url: str) -> None:
    store = RedisBackend(url)
    await store.initialize()
    await store.close()
