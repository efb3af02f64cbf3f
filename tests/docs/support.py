"""Helpers for the documentation's tests, one of each: load a `docs_src/` snippet as it is shown, read a
page and its fences, compare a page's output blocks (```http, ```text, ```json) with what the code
really answers, run a page's shell commands as a reader would.

"…" in an output block stands for what changes from run to run (a request id, a time, a key id): some
text, one character at least, within one line (within one JSON string, in a JSON body).
"""

import itertools
import json
import os
import re
import runpy
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from errorkit import register_api_key

ROOT = Path(__file__).parent.parent.parent
DOCS = ROOT / "docs"
DOCS_SRC = ROOT / "docs_src"
#: What a page writes for a value that changes from run to run.
ELIDED = "…"
#: The virtualenv's bin/: its `errorkit`, `python`, `uvicorn`, what a reader who installed errorkit runs.
VENV_BIN = Path(sys.executable).parent


# -- snippets -------------------------------------------------------------------------------------


def snippet_path(name: str) -> Path:
    """The file of a snippet, `name` relative to `docs_src/` (e.g. `"rate_limits/app.py"`)."""
    path = DOCS_SRC / name
    assert path.is_file(), f"docs_src/{name} is missing"
    return path


def load(name: str) -> dict[str, Any]:
    """Run a Python snippet as a module and return its globals (its app, kit, stores...).

    The snippet's folder is on `sys.path` while it runs, so a snippet may import its neighbours
    as a reader who saved them side by side would (`from app import app`).
    """
    path = snippet_path(name)
    sys.path.insert(0, str(path.parent))
    try:
        return runpy.run_path(str(path), run_name=path.stem)
    finally:
        sys.path.remove(str(path.parent))


def load_in_memory(name: str) -> dict[str, Any]:
    """`load(name)` with `REDIS_URL=memory://` while it runs: its `backend_from_env()` keeps stores in memory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REDIS_URL", "memory://")
        return load(name)


def commands(name: str) -> list[str]:
    """The commands of a shell snippet: its lines without comments and blank lines, continuations joined."""
    return command_lines(snippet_path(name).read_text())


def command_lines(text: str) -> list[str]:
    """The commands of a piece of shell script, as `commands()` reads a whole file."""
    lines = (line.split(" #", 1)[0].strip() for line in text.replace("\\\n", " ").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def snippet_section(name: str, section: str) -> list[str]:
    """The commands between `# --8<-- [start:section]` and `# --8<-- [end:section]` of a shell snippet."""
    text = snippet_path(name).read_text()
    body = text.split(f"# --8<-- [start:{section}]\n", 1)[1].split(f"# --8<-- [end:{section}]", 1)[0]
    return command_lines(body)


# -- pages and fences -----------------------------------------------------------------------------

#: A fenced block: its indent (in a tab or an admonition), its fence (``` or ~~~), language and body.
FENCE = re.compile(
    r"^(?P<indent> *)(?P<fence>```+|~~~+) *(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)(?P=fence) *$", re.S | re.M
)


def page(name: str) -> str:
    """The Markdown of a page, `name` relative to `docs/` (e.g. `"guides/rate-limits.md"`)."""
    return (DOCS / name).read_text()


def section(name: str, heading: str) -> str:
    """The part of a page below the line `heading` (e.g. `"## Redis URLs"`), up to the next `## ` heading."""
    text = page(name)
    assert f"\n{heading}\n" in text, f"{name} has no line {heading!r}"
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def all_fences(text: str) -> list[tuple[str, str]]:
    """The fenced blocks of a piece of Markdown, in order: (language in lower case, body).

    A body is its lines as a reader sees them: the fence's indent taken off, each line ending in a line break.
    """
    found = []
    for m in FENCE.finditer(text):
        body = "".join(line.removeprefix(m["indent"]) for line in m["body"].splitlines(keepends=True))
        found.append((m["lang"].lower(), body))
    return found


def fences(name: str, lang: str, *, under: str | None = None) -> list[str]:
    """The bodies of a page's `lang` fences, in order; `under` a heading: only those of its section."""
    text = page(name) if under is None else section(name, under)
    return [body for found, body in all_fences(text) if found == lang]


def fence_starting(name: str, lang: str, start: str) -> str:
    """The one `lang` fence of a page whose body starts with `start`."""
    found = [body for body in fences(name, lang) if body.startswith(start)]
    assert len(found) == 1, f"{name}: {len(found)} {lang} blocks start with {start!r}, not one"
    return found[0]


def output_after(name: str, include: str, *, langs: Sequence[str] = ("http", "text"), directly: bool = False) -> str:
    """The output block (the next fence, of one of `langs`) after the fence including `include`
    (`--8<-- "include"`); `directly`: with nothing but blank lines between them."""
    text = page(name)
    for m, following in itertools.pairwise(FENCE.finditer(text)):
        if f'--8<-- "{include}"' in m["body"]:
            assert following["lang"] in langs, f"{name}: no {'/'.join(langs)} block after {include}"
            between = text[m.end() : following.start()]
            assert not directly or not between.strip(), f"{name}: text between {include} and its output"
            return all_fences(following[0])[0][1]
    raise AssertionError(f"{name} includes no {include} followed by a block")


# -- http blocks ----------------------------------------------------------------------------------

#: Headers a page may leave out: the server's own (uvicorn's date and server) and the body's length.
UNSHOWN = frozenset({"content-length", "date", "server"})


@dataclass
class Request:
    """The request of an ```http block: request line, headers, body."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: str


@dataclass
class Response:
    """An HTTP response as a page shows it: status line, headers (names in lower case), body."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: str


def parse_headers(lines: Sequence[str]) -> list[tuple[str, str]]:
    """`name: value` lines as (name in lower case, value) pairs, in order."""
    return [(name.strip().lower(), value.strip()) for name, _, value in (line.partition(":") for line in lines)]


def parse_response(text: str) -> Response:
    """A response as a page's block writes it or `curl -i` prints it: `HTTP/1.1 200 OK`, headers, a
    blank line, the body."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    status_line, *lines = head.splitlines()
    version, status, reason = status_line.split(" ", 2)
    assert version == "HTTP/1.1", status_line
    return Response(int(status), reason, parse_headers(lines), body)


def parse_exchange(block: str) -> tuple[Request, Response]:
    """An ```http block that shows a request (request line, headers, body), then its response."""
    request, response = re.split(r"\n(?=HTTP/1\.1 \d{3} )", block, maxsplit=1)
    head, _, body = request.partition("\n\n")
    request_line, *lines = head.splitlines()
    method, target, version = request_line.split(" ")
    assert version == "HTTP/1.1", request_line
    return Request(method, target, parse_headers(lines), body.strip()), parse_response(response)


def exchanges(name: str, request_line: str) -> list[str]:
    """The ```http blocks of a page that send `request_line` (e.g. `"GET /x HTTP/1.1"`), in order."""
    found = [block for block in fences(name, "http") if block.splitlines()[0] == request_line]
    assert found, f"{name} shows no request {request_line!r}"
    return found


def exchange(name: str, request_line: str) -> str:
    """The one ```http block of a page that sends `request_line`."""
    found = exchanges(name, request_line)
    assert len(found) == 1, f"{name} shows {len(found)} requests {request_line!r}, not one"
    return found[0]


def response_of(real: httpx.Response | str) -> Response:
    """A real response (an httpx or TestClient response, or what `curl -i` printed) as a page shows one."""
    if isinstance(real, str):
        return parse_response(real)
    return Response(real.status_code, real.reason_phrase, list(real.headers.multi_items()), real.text)


def same_json(shown: Any, real: Any, where: str = "body") -> None:
    """The JSON a page shows is the real JSON: the same keys in the same order, lists as long, values of
    the same type and equal, "…" in a string standing for any text (line breaks too)."""
    if isinstance(shown, dict):
        assert isinstance(real, dict) and list(shown) == list(real), f"{where}: {real!r} is not {shown!r}"
        for key in shown:
            same_json(shown[key], real[key], f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(real, list) and len(shown) == len(real), f"{where}: {real!r} is not {shown!r}"
        for i, (a, b) in enumerate(zip(shown, real, strict=True)):
            same_json(a, b, f"{where}[{i}]")
    elif isinstance(shown, str) and ELIDED in shown:
        assert isinstance(real, str) and like(shown, real, across_lines=True), f"{where}: {real!r} is not {shown!r}"
    else:
        assert type(shown) is type(real) and shown == real, f"{where}: {real!r} is not {shown!r}"


def assert_headers(shown: Response, real: Response, *, all_headers: bool = True) -> None:
    """The headers a block shows are the real ones: written in lower case, each once, each value `like`
    the real one. `all_headers`: every real header is shown, but those of `UNSHOWN`; else the block may
    show only some."""
    shown_names = [name for name, _ in shown.headers]
    real_names = [name for name, _ in real.headers]
    assert len(set(shown_names)) == len(shown_names), f"a header shown twice: {shown.headers}"
    assert len(set(real_names)) == len(real_names), f"a header sent twice: {real.headers}"
    real_headers = dict(real.headers)
    if all_headers:
        expected = set(real_names) - (UNSHOWN - set(shown_names))
        assert set(shown_names) == expected, f"shown {sorted(shown_names)}, sent {sorted(expected)}"
    for name, value in shown.headers:
        assert name in real_headers, f"the page shows {name}, the response has none: {real.headers}"
        assert like(value, real_headers[name]), f"{name}: {real_headers[name]!r} is not {value!r}"


def is_json(response: Response) -> bool:
    """Whether a response's content-type is JSON (`application/json`, or a `+json` type)."""
    media_type = dict(response.headers).get("content-type", "").split(";")[0]
    return media_type == "application/json" or media_type.endswith("+json")


def assert_request_id(real: Response) -> None:
    """The request id of an error body (`request_id`, or the envelope's `error.request_id`) is the
    response's X-Request-ID."""
    data = json.loads(real.body)
    error = data.get("error") if isinstance(data, dict) else None
    found = error if isinstance(error, dict) and "request_id" in error else data
    if isinstance(found, dict) and "request_id" in found and "x-request-id" in dict(real.headers):
        assert found["request_id"] == dict(real.headers)["x-request-id"], real.body


def assert_body(shown: Response, real: Response) -> None:
    """The body a block shows is the real one: none for none; JSON compared as data (`same_json`) when
    the response is JSON, with the request id the header's; else the text, line by line (`like`)."""
    body = shown.body.rstrip("\n")
    if not body:
        assert real.body == "", f"the page shows no body, the response has {real.body!r}"
    elif is_json(real):
        same_json(json.loads(body), json.loads(real.body))
        assert_request_id(real)
    else:
        assert like(body, real.body), f"{real.body!r} is not {body!r}"


def assert_response(block: str | Response, real: httpx.Response | str, *, all_headers: bool = True) -> None:
    """A page's ```http block (a response, or its `Response`) is the real response: its status line,
    its headers (see `assert_headers`), its body (see `assert_body`)."""
    shown = parse_response(block) if isinstance(block, str) else block
    answer = response_of(real)
    assert (answer.status, answer.reason) == (shown.status, shown.reason), (
        f"{answer.status} {answer.reason}: {answer.body}"
    )
    assert_headers(shown, answer, all_headers=all_headers)
    assert_body(shown, answer)


class Client(Protocol):
    """What sends a request: a TestClient, an httpx client."""

    def request(self, method: str, url: str, *, headers: Any = ..., content: Any = ...) -> httpx.Response: ...


def check_exchange(block: str, client: Client, *, all_headers: bool = True) -> httpx.Response:
    """Send the request an ```http block shows with `client` and compare the answer with the block's
    response (`assert_response`); returns the answer."""
    request, shown = parse_exchange(block)
    response = client.request(request.method, request.target, headers=request.headers, content=request.body.encode())
    assert_response(shown, response, all_headers=all_headers)
    return response


# -- text with wildcards --------------------------------------------------------------------------


def like(shown: str, real: str, *, across_lines: bool = False) -> bool:
    """Whether `real` is `shown`, each "…" of `shown` standing for some text (one character at least),
    within one line unless `across_lines`."""
    some = "(?s:.+)" if across_lines else "[^\n]+"
    return re.fullmatch(some.join(re.escape(part) for part in shown.split(ELIDED)), real) is not None


def assert_lines(block: str, real: str | Sequence[str], *, any_order: bool = False) -> None:
    """A page's ```text block is the real output, line by line, each line `like` its own; `any_order`:
    the lines in any order. `real` a text: it ends as the block does (with a line break or not)."""
    if isinstance(real, str):
        shown, lines = block.split("\n"), real.split("\n")
    else:
        shown, lines = block.removesuffix("\n").split("\n"), list(real)
    message = "--- the page\n" + "\n".join(shown) + "\n--- the real output\n" + "\n".join(lines)
    assert len(shown) == len(lines), message
    if not any_order:
        for pattern, line in zip(shown, lines, strict=True):
            assert like(pattern, line), f"{line!r} is not {pattern!r}\n{message}"
        return
    left = list(lines)
    for pattern in shown:
        found = [line for line in left if like(pattern, line)]
        assert found, f"no line is {pattern!r}\n{message}"
        left.remove(found[0])


# -- shell snippets -------------------------------------------------------------------------------


def reader_env(env: Mapping[str, str | None]) -> dict[str, str]:
    """The environment of a reader's terminal: this one, with the virtualenv's bin/ first on PATH, no
    PYTHONPATH, Python's output unbuffered; then `env` (a value None unsets the variable)."""
    merged: dict[str, str | None] = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": None,
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    return {name: value for name, value in merged.items() if value is not None}


def bash(
    script: str, env: Mapping[str, str | None], *, cwd: str | Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a script in one bash process, in `reader_env(env)` and `cwd`; bash itself must exit 0."""
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=reader_env(env), cwd=cwd, timeout=timeout
    )
    assert done.returncode == 0, (script, done.returncode, done.stderr)
    return done


@dataclass
class Ran:
    """What one command printed, and its exit status."""

    out: str
    err: str
    status: int


def shell(
    lines: Sequence[str],
    env: Mapping[str, str | None],
    *,
    show: Sequence[str] = (),
    cwd: str | Path | None = None,
    timeout: float = 60,
) -> list[Ran]:
    """Run `lines` in one bash session (so `TOKEN=$(...)` carries over), as `bash()` does; each line's
    output and status, then one `Ran` per `show` variable, its value as `out`."""
    marker = "@@errorkit-docs@@"
    script = []
    for line in [*lines, *(f'printf %s "${name}"' for name in show)]:
        script += [line, f'echo "{marker}$?" ; echo "{marker}" >&2']
    done = bash("\n".join(script), env, cwd=cwd, timeout=timeout)
    outs = done.stdout.split(marker)  # [out 0, "status 0\nout 1", ..., "status n\n"]
    errs = done.stderr.split(f"{marker}\n")
    ran = []
    for i in range(len(script) // 2):
        out = outs[i] if i == 0 else outs[i].split("\n", 1)[1]
        ran.append(Ran(out, errs[i], int(outs[i + 1].split("\n", 1)[0])))
    return ran


def run(command: str, env: Mapping[str, str | None], *, cwd: str | Path | None = None, timeout: float = 60) -> Ran:
    """Run one command line as `shell()` does."""
    (ran,) = shell([command], env, cwd=cwd, timeout=timeout)
    return ran


def run_argv(argv: Sequence[str], env: Mapping[str, str | None], *, cwd: str | Path | None = None) -> Ran:
    """Run a command given as a list of words (`["errorkit", "store", "check"]`) as `shell()` does."""
    return run(shlex.join(argv), env, cwd=cwd)


def on_server(lines: Sequence[str], url: str) -> list[str]:
    """The page's commands with its `localhost:8000` pointed at the test's server (`http://host:port`)."""
    return [line.replace("localhost:8000", url.removeprefix("http://")) for line in lines]


def transcript(lines: Sequence[str], env: Mapping[str, str | None], *, cwd: str | Path, timeout: float = 120) -> str:
    """Run `lines` in one bash as a reader at a terminal does, and return what the terminal shows:
    `$ command`, its standard output and error in the order written, `[exit N]` after a non-zero status."""
    script = ["exec 2>&1"]
    for command in lines:
        script += [
            f"printf '%s\\n' {shlex.quote('$ ' + command)}",
            command,
            'status=$?; [ "$status" -eq 0 ] || echo "[exit $status]"',
        ]
    done = bash("\n".join(script), env, cwd=cwd, timeout=timeout)
    assert done.stderr == "", done.stderr
    return done.stdout


# -- the snippets' apps ---------------------------------------------------------------------------


class Portal(Protocol):
    """A TestClient's portal: runs a coroutine function in the app's event loop."""

    def call(self, func: Any, *args: Any) -> Any: ...


class PortalClient(Protocol):
    """A TestClient, entered (`with TestClient(app) as client`)."""

    portal: Portal


def register(client: PortalClient, store: Any, key: str, workspace_id: str, **fields: Any) -> None:
    """Register an API key in a snippet's store, in the app's event loop, as `errorkit keys issue` would."""
    client.portal.call(lambda: register_api_key(store, key, workspace_id=workspace_id, **fields))


def asgi_client(app: Any, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """An httpx client that calls the app in this process, as a client at `address` would."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://docs")
