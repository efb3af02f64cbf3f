"""The package's shape: imports go only downwards, no circles, one flat public namespace."""

import ast
import importlib
import pkgutil
from pathlib import Path

import errorkit

PACKAGE = Path(errorkit.__file__).parent

#: Layers from the bottom up, each a folder (or two); a module may import only from its own
#: layer or those below. The error half and the traffic half sit side by side on the same floor.
LAYERS = [
    ("common", ["errorkit._common"]),
    ("observe", ["errorkit._observe"]),
    ("errors", ["errorkit._errors", "errorkit.catalogs", "errorkit.client"]),
    ("stores", ["errorkit._stores"]),
    ("stages", ["errorkit._stages"]),
    ("app", ["errorkit._app", "errorkit.__main__", "errorkit.testing", "errorkit"]),
]
#: The two halves: neither imports the other (they meet only in the app layer).
ERRORS_HALF = ("errorkit._errors", "errorkit.catalogs", "errorkit.client")
TRAFFIC_HALF = ("errorkit._stores", "errorkit._stages")


def modules() -> dict[str, Path]:
    found = {"errorkit": PACKAGE / "__init__.py"}
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="errorkit."):
        spec = importlib.util.find_spec(info.name)
        assert spec is not None and spec.origin is not None
        found[info.name] = Path(spec.origin)
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """Every errorkit module `name` imports, TYPE_CHECKING imports included."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    known = modules()
    return {t for t in targets if t in known and t != name}


def layer_of(name: str) -> int:
    best, depth = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = index, len(prefix)
    assert best >= 0, f"{name} belongs to no layer: add it to LAYERS"
    return best


def test_every_module_has_a_layer() -> None:
    for name in modules():
        layer_of(name)


def test_imports_only_go_downwards() -> None:
    upward = []
    for name, path in modules().items():
        for target in imports_of(name, path):
            if layer_of(target) > layer_of(name):
                upward.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert upward == []


def test_no_import_circles() -> None:
    graph = {name: imports_of(name, path) for name, path in modules().items()}
    # a package's __init__ importing its own submodules is not a circle through them
    for name in graph:
        graph[name] = {
            t for t in graph[name] if not (t.startswith(name + ".") and modules()[name].name == "__init__.py")
        }
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(graph[node]):
            if target in path:
                circles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    assert circles == []


def test_stages_know_nothing_of_the_kit() -> None:
    for name, path in modules().items():
        if name.startswith(TRAFFIC_HALF):
            assert not {t for t in imports_of(name, path) if layer_of(t) == len(LAYERS) - 1}, name


def test_the_error_half_and_the_traffic_half_never_import_each_other() -> None:
    crossing = []
    for name, path in modules().items():
        for target in imports_of(name, path):
            if name.startswith(ERRORS_HALF) and target.startswith(TRAFFIC_HALF):
                crossing.append(f"{name} imports {target}")
            if name.startswith(TRAFFIC_HALF) and target.startswith(ERRORS_HALF):
                crossing.append(f"{name} imports {target}")
    assert crossing == []


def test_the_package_root_holds_only_public_modules_and_layer_folders() -> None:
    entries = sorted(p.name for p in PACKAGE.iterdir() if not p.name.startswith(("__pycache__", ".")))
    assert entries == [
        "__init__.py",
        "__main__.py",
        "_app",
        "_common",
        "_errors",
        "_observe",
        "_stages",
        "_stores",
        "catalogs",
        "client.py",
        "py.typed",
        "testing.py",
    ]


def test_the_public_namespace() -> None:
    assert errorkit.__all__ == sorted(errorkit.__all__)
    for name in errorkit.__all__:
        assert getattr(errorkit, name) is not None
    implementation = [m for m in modules() if m.count(".") == 1 and not m.split(".")[1].startswith("_")]
    # every other module is private; errorkit.testing (the pytest plugin) is not imported by errorkit itself
    assert implementation == ["errorkit.catalogs", "errorkit.client", "errorkit.testing"]


def test_every_exception_has_one_root() -> None:
    exceptions = [obj for obj in vars(errorkit).values() if isinstance(obj, type) and issubclass(obj, BaseException)]
    assert len(exceptions) == 12
    assert all(issubclass(cls, errorkit.ErrorkitError) for cls in exceptions)
