"""The `oslab` package's modules import one another without a cycle.

Imports are read from the source with ``ast``, so an import inside a function or under
``TYPE_CHECKING`` counts too: a cycle hidden by a late import is still a cycle. The folders
that make up the package come from pyproject.toml's ``package-dir``.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Cycles that are known and have an issue to remove them; the test fails when one goes away,
# so that it is taken off this list.
KNOWN_CYCLES: set[frozenset[str]] = set()


def package_modules() -> dict[str, Path]:
    """Module name → source file, for every module of every package pyproject.toml ships."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs: dict[str, str] = setup["package-dir"]
    modules: dict[str, Path] = {}
    for package in setup["packages"]:
        base = max((p for p in dirs if package == p or package.startswith(p + ".")), key=len)
        folder = ROOT / dirs[base] / package[len(base):].lstrip(".").replace(".", "/")
        for source in folder.glob("*.py"):
            name = package if source.stem == "__init__" else f"{package}.{source.stem}"
            modules[name] = source
    return modules


def imported(name: str, source: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in ``source``."""
    package = name if source.stem == "__init__" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # a submodule, or a name the module ``base`` defines
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = {stack.pop()}
            while v not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.add(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imported(name, source, modules) for name, source in modules.items()}


def test_the_graph_sees_the_whole_package() -> None:
    graph = import_graph()
    assert {"oslab.spec", "oslab.distro", "oslab.downloads.download", "oslab.downloads.iso",
            "oslab.cli", "oslab.images.nodes", "oslab.install.engine", "oslab.install.services",
            "oslab.networks", "oslab.kickstart.render"} <= graph.keys()
    assert "oslab.spec" in graph["oslab.downloads.download"]
    assert "oslab.install.content" in graph["oslab.cli"]  # an import inside a function


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == {frozenset({"a", "b", "c"})}


def test_no_import_cycle_between_oslab_modules() -> None:
    found = cycles(import_graph())
    assert not found - KNOWN_CYCLES, "import cycles: " + "; ".join(
        " <-> ".join(sorted(c)) for c in found - KNOWN_CYCLES)
    assert not KNOWN_CYCLES - found, "no longer a cycle, drop it from KNOWN_CYCLES: " + "; ".join(
        " <-> ".join(sorted(c)) for c in KNOWN_CYCLES - found)


# -- the layering -------------------------------------------------------------------------------

# The rooms under lab/ below the commands: what they need of the install content is worked out
# by the commands (oslab.resolve) and handed down.
ROOMS = ("oslab.access", "oslab.downloads", "oslab.images", "oslab.preflight", "oslab.power",
         "oslab.provisioning", "oslab.saves", "oslab.snapshots", "oslab.virt", "oslab.networks",
         "oslab.kickstart")
MAX_LINES = 450


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def private(module: str) -> bool:
    return any(part.startswith("_") and part != "__init__" for part in module.split("."))


def layering_breaks(graph: dict[str, set[str]]) -> list[str]:
    """Each import that breaks the rule: a room importing ``oslab.install``, or a module
    importing another package's private module."""
    found = []
    for name, deps in sorted(graph.items()):
        for dep in sorted(deps):
            if within(name, ROOMS) and within(dep, ("oslab.install",)):
                found.append(f"{name} imports {dep} (a room below the commands)")
            package = dep.rpartition(".")[0]
            if private(dep) and not within(name, (package,)):
                found.append(f"{name} imports {dep} (private to its package)")
    return found


def test_layering_breaks_are_found() -> None:
    graph = {"oslab.images.nodes": {"oslab.install.content", "oslab.spec"},
             "oslab.install.verify.health": {"oslab.install.services._layer"},
             "oslab.install.services.nova": {"oslab.install.services._layer"},
             "oslab.up": {"oslab.install.engine"}}
    assert layering_breaks(graph) == [
        "oslab.images.nodes imports oslab.install.content (a room below the commands)",
        "oslab.install.verify.health imports oslab.install.services._layer (private to its "
        "package)"]


def test_no_room_below_the_commands_imports_the_install_content() -> None:
    assert layering_breaks(import_graph()) == []


def test_no_module_is_over_the_line_ceiling() -> None:
    long = {name: n for name, source in package_modules().items()
            if (n := len(source.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
