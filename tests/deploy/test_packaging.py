"""azd and the func CLI deploy the right folder: azure.yaml names the Function app service and the
Bicep, and .funcignore keeps out what the app does not run (but nothing it does)."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_azure_yaml_points_azd_at_the_app_and_the_bicep():
    text = (ROOT / "azure.yaml").read_text()
    assert re.search(r"^name: gotosync$", text, re.M)
    assert re.search(r"^infra:\n  provider: bicep\n  path: infra\n  module: main$", text, re.M)
    assert re.search(r"^services:\n  api:\n    project: \.\n    language: python\n    host: function$", text, re.M)
    # azd finds the app by this tag; the service is called "api" above.
    assert "'azd-service-name': 'api'" in (ROOT / "infra/modules/function-app.bicep").read_text()
    assert (ROOT / "infra/main.bicep").is_file() and (ROOT / "infra/main.parameters.json").is_file()


def funcignore() -> list[str]:
    lines = (ROOT / ".funcignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    parts = path.split("/")
    return any(fnmatch.fnmatch(part, p) for p in patterns for part in parts) or any(
        fnmatch.fnmatch(path, p) for p in patterns
    )


def test_funcignore_keeps_the_app_and_drops_the_rest():
    patterns = funcignore()
    for needed in ("function_app.py", "host.json", "requirements.txt", "shared/settings.py", "sync_timer/functions.py",
                   "console/functions.py", "console/static/index.html", "console/static/app.js"):  # fmt: skip
        assert not ignored(needed, patterns), needed
    for dropped in (".venv/bin/python", "tests/deploy/test_bicep.py", "emulators/goto/emulator.py", "node_modules/x",
                    "local.settings.json", "infra/main.bicep", "docs/deploy.md", "cli/main.py"):  # fmt: skip
        assert ignored(dropped, patterns), dropped


def test_the_deployed_code_imports_nothing_that_is_not_deployed():
    """Every module the app's packages import from this repository is inside the package."""
    patterns = funcignore()
    local_roots = {p.name for p in ROOT.iterdir() if p.is_dir() or p.suffix == ".py"}
    sources = [ROOT / "function_app.py"]
    for folder in ("shared", "sync_timer", "graph_webhook", "admin_api", "console"):
        sources += [p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts]
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in local_roots or top + ".py" in local_roots:
                    assert not ignored(name.replace(".", "/"), patterns), f"{source.relative_to(ROOT)} imports {name}"
