"""docs/recipes/docker-compose.md: Docker does not run here, so the test reads docker_compose/compose.yaml
and docker_compose/Dockerfile, checks how the services fit together, then runs what each service would
run, for real: redis-server with the service's command, its healthcheck, `errorkit store init`, the
Dockerfile's uvicorn command with the app's environment (docker_compose/app.py), the app's healthcheck,
and the commands of docker_compose/run.sh that run inside the app's container."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.testclient import TestClient

from tests.docs.support import DOCS_SRC, commands, fences, load, run_argv, same_json, snippet_path
from tests.support.servers import free_port, redis_process, stop, wait_for_port

FOLDER = DOCS_SRC / "docker_compose"
COMPOSE = yaml.safe_load(snippet_path("docker_compose/compose.yaml").read_text())
DOCKERFILE = snippet_path("docker_compose/Dockerfile").read_text().splitlines()


def cmd() -> list[str]:
    (line,) = [line for line in DOCKERFILE if line.startswith("CMD ")]
    return list(json.loads(line.removeprefix("CMD ")))


def test_the_services_fit_together() -> None:
    services = COMPOSE["services"]
    assert list(services) == ["redis", "store-init", "app"]
    redis, init, app = services["redis"], services["store-init"], services["app"]
    assert redis["image"] == "redis:7"
    assert redis["volumes"] == ["redis-data:/data"] and "redis-data" in COMPOSE["volumes"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert init["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert app["depends_on"] == {"store-init": {"condition": "service_completed_successfully"}}
    assert init["build"] == app["build"] == "."
    assert init["environment"] == app["environment"] == {"REDIS_URL": "redis://redis:6379/0"}
    assert "command" not in app  # the image's CMD
    assert app["ports"] == ["8000:8000"]
    assert cmd() == ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
    assert "COPY app.py ." in DOCKERFILE and "EXPOSE 8000" in DOCKERFILE
    assert "8000" in app["healthcheck"]["test"][-1]


def test_each_service_runs_as_written(tmp_path: Path) -> None:
    services = COMPOSE["services"]
    port, app_port = free_port(), free_port()
    # where compose would give each container its network: the redis service, the app's port 8000
    command = [*services["redis"]["command"], "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    with redis_process(command[1:], port, tmp_path):
        _, *check = services["redis"]["healthcheck"]["test"]
        pong = subprocess.run([check[0], "-p", str(port), *check[1:]], capture_output=True, text=True, timeout=10)
        assert pong.stdout == "PONG\n"
        appendonly = subprocess.run(
            ["redis-cli", "-p", str(port), "CONFIG", "GET", "appendonly"], capture_output=True, text=True
        )
        assert appendonly.stdout.split() == ["appendonly", "yes"]

        url = services["app"]["environment"]["REDIS_URL"].replace("redis:6379", f"127.0.0.1:{port}")
        env = {**os.environ, "REDIS_URL": url, "PYTHONUNBUFFERED": "1"}
        init = services["store-init"]["command"]
        for expected in (f"initialized {url} (prefix 'errorkit'): 1 dataset marker written\n",
                         f"{url} (prefix 'errorkit') was initialized already: no dataset marker written\n"):  # fmt: skip
            done = run_argv(init, {"REDIS_URL": url})
            assert (done.status, done.out) == (0, expected)

        serve = [a.replace("8000", str(app_port)).replace("0.0.0.0", "127.0.0.1") for a in cmd()]
        log = (tmp_path / "app.log").open("wb")
        app = subprocess.Popen(
            [sys.executable, "-m", *serve], cwd=FOLDER, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(app_port, app)
            _, *health = services["app"]["healthcheck"]["test"]
            python, option, code = health
            assert (python, option) == ("python", "-c")
            checked = subprocess.run(
                [sys.executable, "-c", code.replace("8000", str(app_port))], capture_output=True, text=True, timeout=10
            )
            assert checked.returncode == 0, checked.stderr

            up, issue, curl = commands("docker_compose/run.sh")
            assert up == "docker compose up -d --build"
            assert issue.startswith("docker compose exec app errorkit keys issue")
            inside = issue.removeprefix("docker compose exec app ").split()
            issued = run_argv(inside, {"REDIS_URL": url})
            assert issued.status == 0, issued.err
            key = issued.out.strip()
            assert re.fullmatch(r"ek_[0-9a-f]{16}\.[\w-]+", key)
            assert curl == "curl localhost:8000/health"
            answer = httpx.get(f"http://localhost:{app_port}/health")
            (shown,) = fences("recipes/docker-compose.md", "json")
            same_json(json.loads(shown), answer.json())
            created = httpx.post(f"http://127.0.0.1:{app_port}/orders", headers={"X-API-Key": key})
            refused = httpx.post(f"http://127.0.0.1:{app_port}/orders")
            assert (created.status_code, refused.status_code) == (201, 401)
        finally:
            stop(app)
            log.close()
        assert app.returncode == 0  # a clean shutdown on SIGTERM, as `docker compose stop` sends


def test_the_app_file_answers_its_health_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "memory://")
    with TestClient(load("docker_compose/app.py")["app"]) as client:
        assert client.get("/health").json() == {"status": "ok"}
