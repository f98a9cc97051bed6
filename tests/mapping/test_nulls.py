"""Null propagation: a null source leaves the attribute out of the flow unless the function
handles null (Entra never sends nulls: docs/reference/entra-provisioning.md#attribute-mappings)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.mapping.helpers import run

CASES: list[tuple[str, dict[str, Any], Any]] = [
    # nulls propagate through ordinary functions...
    ('Append([missing], "@contoso.com")', {}, None),
    ("ToLower([missing])", {}, None),
    ("NormalizeDiacritics(StripSpaces([missing]))", {}, None),
    ("Mid([missing], 1, 3)", {}, None),
    ('Replace([missing], "a", , , "b", , )', {}, None),
    ('DateAdd("d", 1, CDate([missing]))', {}, None),
    ("CBool([missing])", {}, None),
    ("Item([proxyAddresses], 1)", {"proxyAddresses": []}, None),
    ('Left("abc", [missing])', {}, None),
    # ...but not through a suffix, which counts as ""
    ("Append([a], [missing])", {"a": "x"}, "x"),
    # functions that handle null
    ("Coalesce([missing], [a])", {"a": "x"}, "x"),
    ("IsNull([missing])", {}, True),
    ("IsNullOrEmpty([missing])", {}, True),
    ("IsPresent([missing])", {}, False),
    ("IsString([missing])", {}, False),
    ("Count([missing])", {}, 0),
    ("Left([missing], 2)", {}, ""),
    ('Word([missing], 1, " ")', {}, ""),
    ('Join(".", [missing], [a])', {"a": "x"}, "x"),
    ('Join(".", [missing], [other])', {}, None),
    ('Switch([missing], "default", "a", "1")', {}, "default"),
    ('Switch([missing], "default", "", "empty")', {}, "empty"),
    ('Switch([a], , "b", "1")', {"a": "a"}, None),  # an empty default is null
    ('Replace([missing], , "(?<d>\\\\d+)", "d", , [backup], )', {"backup": "tel 42"}, "42"),
    ("PCase([a], [missing])", {"a": "ann lee"}, "Ann Lee"),
    # IIF: a null in the condition fails it; only the chosen branch is evaluated
    ('IIF([missing]="USA", "a", "b")', {}, None),
    ('IIF([a]="USA", "a", [missing])', {"a": "USA"}, "a"),
    ('IIF([a]="USA", [missing], "b")', {"a": "USA"}, None),
    ('IIF(IsPresent([missing]), [missing], "Other")', {}, "Other"),
    # IgnoreFlowIfNullOrEmpty drops null and empty alike
    ("IgnoreFlowIfNullOrEmpty([a])", {"a": ""}, None),
    ('IgnoreFlowIfNullOrEmpty(Join("", [missing]))', {}, None),
    ('Join("-", "a", IgnoreFlowIfNullOrEmpty([missing]))', {}, None),
]


@pytest.mark.parametrize(("expression", "attributes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_null_rules(expression: str, attributes: dict[str, Any], expected: Any) -> None:
    assert run(expression, **attributes) == expected


def test_an_expression_can_return_an_empty_string_which_still_flows() -> None:
    assert run('Replace([a], "x", , , "", , )', a="x") == ""
