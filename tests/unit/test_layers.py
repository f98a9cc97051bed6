"""Layering, read from the source's import statements (no import is executed, except where a
test says so): ``shared.scim`` is the bottom layer and imports nothing else from gotosync; the
mapping never imports up into the engine; the packages of ``shared`` import each other without a
cycle and never import an entrance (the CLI, the triggers), azure.functions or rich; and the
Function app's modules load no rich."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
ENTRANCES = ("cli", "admin_api", "console", "sync_timer", "graph_webhook", "function_app")


def imported_modules(package: str) -> dict[str, set[str]]:
    """Every module each file of ``shared/<package>`` imports, relative imports resolved."""
    return scanned(sorted((SHARED / package).rglob("*.py")))


def scanned(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Every module each of these files imports (at any depth: in functions too), by file."""
    found: dict[str, set[str]] = {}
    for path in paths:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.update(_from_names(node, parts, path.name == "__init__.py"))
        found[str(path.relative_to(ROOT))] = names
    return found


def _from_names(node: ast.ImportFrom, parts: list[str], is_package: bool) -> set[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        here = parts if is_package else parts[:-1]
        anchor = here[: len(here) - (node.level - 1)]
        base = ".".join([*anchor, *([node.module] if node.module else [])])
    # `from shared import engine` imports the package shared.engine
    return {base, *(f"{base}.{alias.name}" for alias in node.names)}


def offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{file} imports {name}"
        for file, names in imported_modules(package).items()
        for name in names
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def test_the_scim_package_imports_nothing_else_from_gotosync() -> None:
    imports = imported_modules("scim")
    assert imports, "shared/scim has no modules"
    stray = sorted(
        f"{file} imports {name}"
        for file, names in imports.items()
        for name in names
        if (name == "shared" or name.startswith("shared.")) and not name.startswith("shared.scim")
    )
    assert stray == []


def test_the_mapping_does_not_import_the_engine_or_anything_above_it() -> None:
    assert offending("mapping", ("shared.engine", "shared.goto", "shared.ops", "shared.runtime", "cli")) == []


def unit_of(module: str) -> str | None:
    """The package of ``shared`` (``shared.engine``) or top-level module (``shared.settings``) a
    module belongs to; None outside ``shared``."""
    parts = module.split(".")
    if parts[0] != "shared" or len(parts) < 2:
        return None
    if (SHARED / parts[1]).is_dir() or (SHARED / f"{parts[1]}.py").is_file():
        return f"shared.{parts[1]}"
    return None  # a name imported from shared/__init__.py


def unit_graph() -> dict[str, dict[str, set[str]]]:
    """unit -> the units it imports -> the files that do."""
    graph: dict[str, dict[str, set[str]]] = {}
    for file, names in scanned(sorted(SHARED.rglob("*.py"))).items():
        unit = unit_of(".".join(Path(file).with_suffix("").parts).removesuffix(".__init__"))
        if unit is None:
            continue
        edges = graph.setdefault(unit, {})
        for name in names:
            target = unit_of(name)
            if target is not None and target != unit:
                edges.setdefault(target, set()).add(file)
    return graph


def find_cycle(graph: dict[str, Iterable[str]]) -> list[str]:
    """One cycle of ``graph`` as [a, b, ..., a], or [] when it has none."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            cycle = visit(nxt)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return []

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return []


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) == []
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_the_packages_of_shared_import_each_other_without_a_cycle() -> None:
    graph = unit_graph()
    assert {"shared.engine", "shared.ops", "shared.runtime", "shared.settings"} <= set(graph)
    cycle = find_cycle({unit: set(edges) for unit, edges in graph.items()})
    where = [f"{a} -> {b}: {sorted(graph[a][b])}" for a, b in itertools.pairwise(cycle)]
    assert cycle == [], "\n".join(where)


def test_shared_imports_no_entrance_nor_azure_functions_nor_rich() -> None:
    forbidden = (*ENTRANCES, "azure.functions", "rich")
    found = scanned(sorted(SHARED.rglob("*.py")))
    strays = sorted(
        f"{file} imports {name}"
        for file, names in found.items()
        for name in names
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )
    assert strays == []


def test_an_entrance_imports_no_other_entrance() -> None:
    """The console serves the admin API's operations (console -> admin_api); function_app.py is
    the composition root that registers them all."""
    allowed = {("console", "admin_api")}
    strays = []
    for entrance in ENTRANCES[:-1]:
        for file, names in scanned(sorted((ROOT / entrance).rglob("*.py"))).items():
            for name in names:
                other = name.split(".")[0]
                if other in ENTRANCES and other != entrance and (entrance, other) not in allowed:
                    strays.append(f"{file} imports {name}")
    assert strays == []


def test_the_function_app_and_the_admin_api_load_no_rich() -> None:
    """rich is the CLI's terminal output; the Function app, the admin API and the console answer
    HTTP and JSON, and load it neither themselves nor through shared/."""
    code = (
        "import sys, function_app, admin_api.functions, admin_api.operations, admin_api.translate, "
        "console.functions\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'cli'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from shared.engine.plan import Kind", "shared.engine.plan"),
        ("from shared import engine", "shared.engine"),
        ("import shared.goto.scim", "shared.goto.scim"),
        ("from ..engine import plan", "shared.engine.plan"),
    ],
)
def test_the_scan_sees_every_form_of_import(source: str, expected: str) -> None:
    node = ast.parse(source).body[0]
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        assert isinstance(node, ast.ImportFrom)
        names = _from_names(node, ["shared", "scim", "paths"], is_package=False)
    assert expected in names


def test_the_scan_sees_imports_inside_functions() -> None:
    """A lazy import (inside a function) is an import all the same."""
    found = scanned([SHARED / "settings.py"])
    assert "shared.store.tables" in found["shared/settings.py"]
