"""Values bounded to one Table Storage property: always within the limit, always valid, marked when cut."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.store._codec import (
    MAX_PROPERTY_CHARS,
    TRUNCATED_KEY,
    bounded_json,
    bounded_text,
    dt_from_entity,
    utf16_units,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3000),
    lambda children: st.lists(children, max_size=30) | st.dictionaries(st.text(max_size=20), children, max_size=30),
    max_leaves=200,
)


@settings(max_examples=150, deadline=None)
@given(json_values, st.integers(min_value=400, max_value=5000))
def test_bounded_json_always_fits_and_parses(value: object, limit: int) -> None:
    text = bounded_json(value, limit)
    assert len(text) <= limit
    json.loads(text)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=5000), st.integers(min_value=100, max_value=4000))
def test_bounded_text_fits_in_utf16_units(text: str, limit: int) -> None:
    bounded = bounded_text(text, limit)
    assert utf16_units(bounded) <= limit
    if utf16_units(text) <= limit:
        assert bounded == text
    else:
        assert "[truncated" in bounded


def test_values_that_fit_are_stored_whole() -> None:
    value = {"emails": [{"value": "zoë@contoso.com", "primary": True}], "n": 3, "none": None}
    assert json.loads(bounded_json(value)) == value


def test_an_oversized_list_keeps_its_head_and_ends_with_the_overflow_item() -> None:
    items = [{"name": f"p{i}", "value": "v" * 200} for i in range(1000)]
    stored = json.loads(bounded_json(items, overflow_item=lambda n: {"dropped": n}))
    assert stored[-1] == {"dropped": 1000 - (len(stored) - 1)}
    assert [s["name"] for s in stored[:-1]] == [f"p{i}" for i in range(len(stored) - 1)]


def test_an_oversized_object_counts_its_dropped_keys() -> None:
    value = {f"k{i}": list(range(50)) for i in range(2000)}
    text = bounded_json(value)
    stored = json.loads(text)
    assert len(text) <= MAX_PROPERTY_CHARS
    assert stored[TRUNCATED_KEY] == 2000 - (len(stored) - 1)
    assert all(stored[k] == value[k] for k in stored if k != TRUNCATED_KEY)


def test_characters_outside_the_bmp_count_twice() -> None:
    assert utf16_units("🎧") == 2
    assert utf16_units(bounded_text("🎧" * 20_000)) <= MAX_PROPERTY_CHARS


def test_datetimes_read_back_as_plain_utc() -> None:
    assert dt_from_entity("2025-03-01T10:00:00+02:00") == datetime(2025, 3, 1, 8, tzinfo=UTC)
    read = dt_from_entity(datetime(2025, 3, 1, 10, tzinfo=timezone(timedelta(hours=2))))
    assert type(read) is datetime
    assert read.tzinfo is UTC
    assert dt_from_entity(None) is None
