"""docs/architecture.md: the layers, the store protocols and the Redis key layout it shows are the source's."""

import inspect
import re

import errorkit
from errorkit._app import gateway, handlers
from errorkit._stages import one_trip, ratelimit
from errorkit._stores import protocols
from errorkit._stores.redis import backend
from tests.docs.support import ROOT, page
from tests.test_layers import LAYERS

PAGE = "architecture.md"
PACKAGE = ROOT / "errorkit"


def table(text: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header line starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def test_the_redis_key_layout_is_the_one_in_the_source() -> None:
    assert backend.__doc__ is not None
    source = table(backend.__doc__, "| kind | key | holds |")
    shown = table(page(PAGE), "| kind | key | holds |")
    assert len(source) == 9
    assert shown == source


def test_the_layers_are_the_ones_tests_test_layers_enforces() -> None:
    rows = table(page(PAGE), "| layer | folder | modules |")
    shown_layers = list(dict.fromkeys(row[0] for row in rows))
    assert shown_layers == [name for name, _ in reversed(LAYERS)]  # from the top layer down
    for layer, folder, _ in rows:
        module = "errorkit." + folder.strip("`").rstrip("/").removesuffix(".py").replace("/", ".")
        prefixes = dict(LAYERS)[layer]
        assert any(module == p or module.startswith(p + ".") for p in prefixes), f"{folder} is not in layer {layer}"


def test_the_layer_table_names_every_module_and_only_modules_that_exist() -> None:
    rows = table(page(PAGE), "| layer | folder | modules |")
    named: set[str] = set()
    for _, folder, modules in rows:
        folder = folder.strip("`")
        if folder.endswith(".py"):
            assert (PACKAGE / folder).is_file(), folder
            named.add(folder)
            continue
        for name in re.findall(r"`([\w*/]+\.(?:py|lua))`", modules):
            if name.startswith("lua/"):
                assert list((PACKAGE / folder / "lua").glob("*.lua")), folder
                named.update(str(p.relative_to(PACKAGE)) for p in (PACKAGE / folder / "lua").glob("*.lua"))
                continue
            path = PACKAGE / folder / name
            assert path.is_file(), f"{folder}{name} is named on the page but does not exist"
            named.add(str(path.relative_to(PACKAGE)))
    existing = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*")
        if p.suffix in (".py", ".lua") and p.name not in ("__init__.py", "__main__.py") and "__pycache__" not in p.parts
    }
    existing = {p for p in existing if p.count("/") > 0 or p == "client.py"}
    assert existing - named == set(), "modules the page's layer table leaves out"
    assert named - existing == set()


def test_the_store_protocols_steps_are_their_methods() -> None:
    rows = table(page(PAGE), "| concern | protocol | steps |")
    for _, protocol, steps in rows:
        name = re.fullmatch(r"\[`(\w+)`\]\(reference/api\.md#errorkit\.(\w+)\)", protocol)
        assert name is not None and name[1] == name[2], protocol
        cls = getattr(errorkit, name[1])
        assert cls is getattr(protocols, name[1])
        methods = {m for m, _ in inspect.getmembers(cls, inspect.isfunction) if not m.startswith("_")}
        own = {
            m for m in methods if any(m in vars(base) for base in cls.__mro__ if base.__module__ == protocols.__name__)
        }
        named = set(re.findall(r"`(\w+)`", steps))
        if name[1] == "Backend":
            assert named == {"initialize", "check"} and {"initialize", "check"} <= own
        else:
            assert named == own, f"{name[1]}: the page names {sorted(named)}, the protocol has {sorted(own)}"
    capabilities = ("WatchesKeys", "CountsAndClaims", "Observed")
    for capability in capabilities:
        assert f"`{capability}`" in page(PAGE)
        assert getattr(protocols, capability)._is_runtime_protocol


def test_the_names_the_page_uses_exist() -> None:
    assert inspect.isclass(gateway.RequestIdMiddleware) and inspect.isclass(gateway.GatewayMiddleware)
    assert callable(handlers.ExceptionHandler.refusal_error)
    assert inspect.isclass(one_trip.OneTrip) and callable(ratelimit.RateLimiter.defer)
    for method in ("admit", "wrap", "around"):
        assert f"`{method}(scope, " in page(PAGE)
    assert [name for name, _ in LAYERS] == ["common", "observe", "errors", "stores", "stages", "app"]


def test_tests_and_benchmarks_as_the_page_says() -> None:
    text = page(PAGE)
    assert "[benchmarks/README.md](https://github.com/errorkit/errorkit/blob/main/benchmarks/README.md)" in text
    assert (ROOT / "benchmarks" / "README.md").is_file()
    script = (ROOT / "scripts" / "test").read_text()
    for step in (
        "scripts/system-deps",
        "ruff check",
        "mypy errorkit",
        "mkdocs build --strict",
        "scripts/check-dist",
        "pytest",
    ):
        assert step in script
    assert "strict = true" in (ROOT / "pyproject.toml").read_text()  # (mypy --strict)
    packages = (ROOT / "scripts" / "system-deps").read_text()
    installed = re.findall(r"missing\+=\(([\w-]+)\)", packages)
    assert sorted(installed) == ["chromium", "curl", "openssl", "python3-venv", "redis-server", "redis-tools"]
    listed = re.search(r"`scripts/system-deps`: (.*?)\), makes a", " ".join(text.split()))
    assert listed is not None
    assert sorted(set(re.findall(r"`([\w-]+)`", listed[1])) - {"redis-cli"}) == sorted(installed)
    # the reason errorkit has its own Redis client, with the figures of the run it was measured in
    assert "### Why errorkit carries its own Redis connection" in text
    assert "0.75 × bare Starlette" in text and "0.55 ×" in text and "0.59 × against 0.44 ×" in text
    for module in ("connection.py", "topology.py", "urls.py"):
        assert (PACKAGE / "_stores" / "redis" / module).is_file()
    instructions = (ROOT / "benchmarks" / "instructions.py").read_text()
    assert "--compare" in instructions and "--memory" in instructions and "valgrind" in instructions
    assert '"--compare"' in instructions and '"--memory"' in instructions
