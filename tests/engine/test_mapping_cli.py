"""`gotosync mapping validate FILE` and `gotosync mapping preview USER`, as an admin runs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from shared.mapping import builtin
from tests.fixtures.world import World

SHOUTING = {"target": "displayName", "type": "expression", "expression": 'Join(" ", [givenName], ToUpper([surname]))'}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    out = captured.out
    return code, json.loads(out) if out.strip().startswith(("{", "[")) else out, captured.err


def write(tmp_path: Path, doc: Any, name: str = "mapping.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return str(path)


def custom_mapping() -> dict[str, Any]:
    doc = builtin("goto").to_dict()
    doc["users"]["mappings"] = [m for m in doc["users"]["mappings"] if m["target"] != "displayName"] + [SHOUTING]
    return doc


@pytest.fixture
def cli_world(make_world: Callable[..., World], monkeypatch: pytest.MonkeyPatch) -> World:
    world = make_world(users=4, assign=2)
    for key, value in world.env().items():
        monkeypatch.setenv(key, value)
    return world


def test_validate_accepts_a_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, custom_mapping())
    code, doc, _ = run(capsys, "mapping", "validate", path, "--json")
    assert code == 0
    assert doc["valid"] is True and doc["matching"] == ["userName"]
    assert "givenName" in doc["graphSelect"] and len(doc["digest"]) == 64
    code, text, _ = run(capsys, "mapping", "validate", path)
    assert code == 0 and "valid" in text


def test_validate_names_every_problem_with_its_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = builtin("goto").to_dict()
    doc["users"]["mappings"] += [
        {"target": "title", "type": "direct", "sorce": "jobTitle"},
        {"target": "nickName", "type": "expression", "expression": "Left([jobTitle] 3)"},
    ]
    doc["users"]["scopingFilters"] = [{"clauses": [{"attribute": "department", "operator": "LIKE", "value": "S"}]}]
    path = write(tmp_path, doc)
    code, out, _ = run(capsys, "mapping", "validate", path, "--json")
    assert code == 1 and out["valid"] is False
    errors = [(e["mapping"], e["problem"]) for e in out["errors"]]
    assert ("title", "a direct mapping needs 'source' (the Entra attribute)") in errors
    assert any(m == "title" and "unknown key 'sorce'" in p for m, p in errors)
    assert next(e for e in out["errors"] if e["mapping"] == "nickName")["position"] == 16
    assert any(m.startswith("scoping filter 1, clause 1") and "unknown operator" in p for m, p in errors)
    code, text, _ = run(capsys, "mapping", "validate", path)
    assert code == 1
    assert "title: unknown key 'sorce'" in text and "nickName:" in text and "^" in text


def test_validate_a_file_that_is_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "mapping", "validate", write(tmp_path, "{users: []"), "--json")
    assert code == 1 and out["errors"][0]["mapping"] == "(file)" and "not valid JSON" in out["errors"][0]["problem"]
    code, out, _ = run(capsys, "mapping", "validate", str(tmp_path / "missing.json"), "--json")
    assert code == 1 and "cannot read" in out["errors"][0]["problem"]


def test_preview_shows_each_target_with_its_source_values_and_result(
    cli_world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uid = cli_world.assigned_user_ids()[0]
    source = cli_world.graph.user(uid)
    code, doc, _ = run(capsys, "mapping", "preview", source["userPrincipalName"], "--json")
    assert code == 0
    assert doc["user"]["id"] == uid and doc["creating"] is True and doc["inScope"] is True
    assert doc["action"] == "Create"
    attrs = {a["target"]: a for a in doc["attributes"]}
    assert attrs["userName"]["sourceValues"] == {"userPrincipalName": source["userPrincipalName"]}
    assert attrs["userName"]["result"] == source["userPrincipalName"] and attrs["userName"]["status"] == "sent"
    assert attrs["active"]["sourceValues"] == {"IsSoftDeleted": False} and attrs["active"]["result"] is True

    # --file previews another mapping; nothing is ever written to GoTo.
    path = write(tmp_path, custom_mapping())
    code, doc, _ = run(capsys, "mapping", "preview", uid, "--file", path, "--json")
    assert code == 0
    shown = next(a for a in doc["attributes"] if a["target"] == "displayName")
    assert shown["sourceValues"] == {"givenName": source["givenName"], "surname": source["surname"]}
    assert shown["result"] == f"{source['givenName']} {source['surname'].upper()}"
    assert cli_world.goto.counters.writes() == 0

    code, text, _ = run(capsys, "mapping", "preview", uid, "--file", path)
    assert code == 0 and "displayName" in text and source["surname"].upper() in text


def test_preview_of_an_unassigned_user_shows_the_failed_scope_check(
    cli_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    outsider = next(u for u in cli_world.graph.tenant.users if u not in cli_world.assigned_user_ids())
    code, doc, _ = run(capsys, "mapping", "preview", outsider, "--json")
    assert code == 0 and doc["inScope"] is False
    assert {c["check"]: c["passed"] for c in doc["scope"]}["Assigned to application"] is False
    active = next(a for a in doc["attributes"] if a["target"] == "active")
    assert active["result"] is False  # IsSoftDeleted is true out of scope


def test_preview_of_an_unknown_user_and_a_broken_mapping_setting(
    cli_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "mapping", "preview", "nobody@contoso.com")
    assert code == 4 and "nobody@contoso.com" in err
    monkeypatch.setenv("MAPPING_FILE", write(tmp_path, {"users": {"mappings": []}}, "broken.json"))
    code, _, err = run(capsys, "sync", "--json")
    assert code == 2 and "configuration error: MAPPING_FILE" in err and "userName must be mapped" in err
