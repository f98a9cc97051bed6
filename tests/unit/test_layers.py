"""Package layering inside ``shared``, read from the source's import statements (no import is
executed): ``shared.scim`` is the bottom layer and imports nothing else from gotosync, and the
mapping never imports up into the engine (or the packages above it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def imported_modules(package: str) -> dict[str, set[str]]:
    """Every module each file of ``shared/<package>`` imports, relative imports resolved."""
    found: dict[str, set[str]] = {}
    for path in sorted((SHARED / package).rglob("*.py")):
        parts = ["shared", *path.relative_to(SHARED).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.update(_from_names(node, parts, path.name == "__init__.py"))
        found[str(path.relative_to(SHARED.parent))] = names
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
    assert offending("mapping", ("shared.engine", "shared.goto", "shared.ops", "shared.runtime", "shared.cli")) == []


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
