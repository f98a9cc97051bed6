"""ListAnswer decodes a SCIM list answer one resource at a time. Checked against an oracle that
parses the whole text with json.loads and picks the resources as the SCIM envelope defines
them; and a cut answer is an error, never a shorter list."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.goto.errors import SERVICE_INCOMPATIBLE, GoToError, Op
from shared.goto.listing import ListAnswer

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
resources = st.dictionaries(st.text(max_size=6), values, max_size=4)
items = st.lists(st.one_of(resources, scalars), max_size=6)
members = st.lists(
    st.tuples(st.sampled_from(["Resources", "resources", "totalResults", "itemsPerPage", "schemas", "other"]),
              st.one_of(items, scalars)),
    max_size=5,
)  # fmt: skip
layouts = st.sampled_from([{}, {"indent": 2}, {"separators": (",", ":")}, {"indent": "\t", "ensure_ascii": False}])


def oracle(doc: Any) -> tuple[list[dict[str, Any]], int | None]:
    """What the envelope holds, read from the whole document (json.loads keeps member order)."""
    if isinstance(doc, list):
        return [r for r in doc if isinstance(r, dict)], None
    total: int | None = None
    found: list[Any] | None = None
    for key, value in doc.items():
        if key == "totalResults":
            total = value if isinstance(value, int) and not isinstance(value, bool) else None
            if isinstance(value, (bool, str)):
                try:
                    total = int(value)
                except ValueError:
                    total = None
        elif key in ("Resources", "resources") and value is not None and found is None:
            found = value
    return [r for r in (found or []) if isinstance(r, dict)], total


def read(text: str) -> tuple[list[dict[str, Any]], int | None, int]:
    answer = ListAnswer(text, Op("list of users"))
    out = list(answer)
    return out, answer.total, answer.count


def envelope_ok(doc: Any) -> bool:
    if isinstance(doc, list):
        return True
    first = next((v for k, v in doc.items() if k in ("Resources", "resources") and v is not None), [])
    return isinstance(first, list)


@given(members=members, layout=layouts)
def test_an_object_answer_yields_what_the_whole_document_holds(members: list[tuple[str, Any]], layout: dict) -> None:
    doc = dict(members)
    text = json.dumps(doc, **layout)
    if not envelope_ok(doc):
        with pytest.raises(GoToError) as err:
            read(text)
        assert err.value.code == SERVICE_INCOMPATIBLE and "not a list" in str(err.value)
        return
    expected, total = oracle(json.loads(text))
    got, got_total, count = read(text)
    assert got == expected and got_total == total and count == len(expected)


@given(doc=items, layout=layouts)
def test_a_bare_list_yields_its_objects(doc: list[Any], layout: dict) -> None:
    got, total, _ = read(json.dumps(doc, **layout))
    assert got == [r for r in doc if isinstance(r, dict)] and total is None


@given(doc=st.one_of(st.dictionaries(st.sampled_from(["Resources", "totalResults"]), items), items), data=st.data())
def test_an_answer_cut_short_is_an_error_not_a_shorter_list(doc: Any, data: st.DataObject) -> None:
    text = json.dumps(doc)
    cut = data.draw(st.integers(min_value=1, max_value=len(text) - 1))
    with pytest.raises(GoToError) as err:
        read(text[:cut])
    assert err.value.code == SERVICE_INCOMPATIBLE and "list of users" in str(err.value)


@pytest.mark.parametrize(
    "text", ['{"Resources": [] } x', "42", '"users"', "{1: 2}", '{"Resources": [{"id": "1"} {"id": "2"}]}']
)
def test_what_is_not_a_list_answer_is_an_error(text: str) -> None:
    with pytest.raises(GoToError):
        read(text)


def test_an_empty_body_is_an_empty_answer() -> None:
    assert read("") == ([], 0, 0) and read(" \n") == ([], 0, 0)
