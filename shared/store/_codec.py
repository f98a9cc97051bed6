"""Serialisation primitives the repositories share: UTC datetimes, 64-bit integers, and text or
JSON bounded to what one Table Storage property can hold."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from azure.data.tables import EdmType, EntityProperty

# A string property holds at most 64 KiB of UTF-16, i.e. 32,768 code units; an entity at most
# 1 MiB in all. 30,000 units per property leaves room for keys and other properties, so that an
# entity with a few bounded JSON columns still stays far below 1 MiB.
MAX_PROPERTY_CHARS = 30_000

TRUNCATED_KEY = "_truncated"
"""Key added to a JSON object that had to lose keys to fit; its value is how many were dropped."""


def utc(value: datetime) -> datetime:
    """The same instant in UTC (a naive datetime is taken to be UTC already)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def dt_to_entity(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def dt_to_iso(value: datetime | None) -> str | None:
    """ISO 8601 text of the UTC instant, for datetimes nested in JSON properties."""
    return None if value is None else utc(value).isoformat()


def dt_from_entity(value: Any) -> datetime | None:
    """A plain aware UTC datetime from what the SDK returns (its datetime subclass, or ISO text)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    value = utc(value)
    return datetime(
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, tzinfo=UTC
    )


def int64(value: int) -> EntityProperty:
    """An Int64 property (the SDK's default for int is Int32, which overflows at 2**31)."""
    return EntityProperty(int(value), EdmType.INT64)


def as_int(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, EntityProperty):
        return int(value.value)
    return int(value)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def bounded_text(text: str, limit: int = MAX_PROPERTY_CHARS) -> str:
    """`text` itself when it fits in one property, else its head and a marker saying how much was cut."""
    if len(text) * 2 <= limit or utf16_units(text) <= limit:
        return text
    marker = f"...[truncated {len(text)} chars]"
    budget = limit - len(marker)
    head = text[:budget]
    while (excess := utf16_units(head) - budget) > 0:  # characters outside the BMP count twice
        head = head[: len(head) - excess]
    return head + marker


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def to_json(value: Any) -> str:
    # ASCII-only output: one character is one UTF-16 unit, so len() is the stored size.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), default=_default)


def _clip_strings(value: Any, max_chars: int) -> Any:
    if isinstance(value, str):
        if len(value) <= max_chars:
            return value
        return value[:max_chars] + f"...[truncated {len(value) - max_chars} chars]"
    if isinstance(value, Mapping):
        return {k: _clip_strings(v, max_chars) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clip_strings(v, max_chars) for v in value]
    return value


_OVERFLOW_RESERVE = 200  # room for the marker appended when items are dropped


def bounded_json(
    value: Any,
    limit: int = MAX_PROPERTY_CHARS,
    *,
    overflow_item: Callable[[int], Any] | None = None,
) -> str:
    """JSON for `value` that fits in one property.

    Whole when it fits. Otherwise long strings inside are clipped (each with a marker), and if
    that is not enough, trailing list items / object keys are dropped: a list gets
    `overflow_item(dropped)` appended (or `{"_truncated": dropped}`), an object a `"_truncated"`
    key. Never raises for size: a provisioning log with a clipped value beats a failed cycle.
    """
    text = to_json(value)
    if len(text) <= limit:
        return text
    for max_chars in (4096, 512, 64):
        clipped = _clip_strings(value, max_chars)
        text = to_json(clipped)
        if len(text) <= limit:
            return text
    budget = limit - _OVERFLOW_RESERVE
    if isinstance(clipped, list):
        kept: list[Any] = []
        used = 2
        for item in clipped:
            size = len(to_json(item)) + 1
            if used + size > budget:
                break
            kept.append(item)
            used += size
        dropped = len(clipped) - len(kept)
        kept.append(overflow_item(dropped) if overflow_item else {TRUNCATED_KEY: dropped})
        return to_json(kept)
    if isinstance(clipped, dict):
        kept_map: dict[str, Any] = {}
        used = 2
        for key, item in clipped.items():
            size = len(to_json({key: item}))
            if used + size > budget:
                break
            kept_map[key] = item
            used += size
        kept_map[TRUNCATED_KEY] = len(clipped) - len(kept_map)
        return to_json(kept_map)
    return to_json(bounded_text(str(clipped), budget))


def from_json(text: Any, default: Any) -> Any:
    if text is None or text == "":
        return default
    return json.loads(text)


_FORBIDDEN_KEY_CHARS = frozenset("/\\#?") | {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)}


def check_key(value: str, what: str = "key") -> str:
    """`value` if it can be a PartitionKey/RowKey, else ValueError (rather than a 400 from the service)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > 512 or any(ch in _FORBIDDEN_KEY_CHARS for ch in value):
        raise ValueError(f"{what} {value!r} cannot be a table key (no / \\ # ? or control characters, at most 512)")
    return value


def safe_key_part(value: str) -> str:
    """`value` with the characters a table key may not hold replaced by "_" (for ids we do not own)."""
    return "".join("_" if ch in _FORBIDDEN_KEY_CHARS else ch for ch in value)[:400]
