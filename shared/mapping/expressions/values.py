"""The value model of expressions (null, strings, numbers, booleans, DateTimes, multi-values)
and the conversions between them, with VBA's spellings ("True", "False")."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Final

from shared.mapping.errors import ExpressionEvaluationError
from shared.mapping.expressions.dates import format_entra


class _Missing:
    """An argument left empty, as in `Switch([IsSoftDeleted], , "False", "True")`."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

_INTEGER = re.compile(r"^\s*[+-]?\d{1,30}\s*$")
_NUMBER = re.compile(r"^\s*[+-]?(\d{1,30}(\.\d{0,30})?|\.\d{1,30})\s*$")


def is_null(value: Any) -> bool:
    """Null: an absent attribute, or a multi-valued attribute without values."""
    return value is None or value is MISSING or (isinstance(value, list | tuple) and len(value) == 0)


def is_null_or_empty(value: Any) -> bool:
    return is_null(value) or value == ""


def single(value: Any, function: str, what: str = "argument") -> Any:
    """A single value: a one-item multi-value counts as its item."""
    if isinstance(value, list | tuple):
        if len(value) == 1:
            return value[0]
        raise ExpressionEvaluationError(
            f"the {what} is a multi-valued attribute with {len(value)} values; a single value is needed",
            function=function,
        )
    return value


def to_text(value: Any, function: str = "", what: str = "argument") -> str:
    """CStr: the string form of a single value. Booleans are "True"/"False" as in VBA."""
    value = single(value, function, what)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, datetime):
        return format_entra(value)
    if value is None or value is MISSING:
        raise ExpressionEvaluationError(f"the {what} is null", function=function)
    raise ExpressionEvaluationError(f"the {what} is a {type(value).__name__}, not a text value", function=function)


def format_number(value: float) -> str:
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def to_int(value: Any, function: str = "", what: str = "argument") -> int:
    value = single(value, function, what)
    if isinstance(value, bool):
        raise ExpressionEvaluationError(f"the {what} must be a whole number, not a boolean", function=function)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    raise ExpressionEvaluationError(f"the {what} must be a whole number, got {_show(value)}", function=function)


def to_number(value: Any, function: str = "", what: str = "argument") -> int | float:
    value = single(value, function, what)
    if isinstance(value, bool):
        raise ExpressionEvaluationError(f"the {what} must be a number, not a boolean", function=function)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER.match(value):
        text = value.strip()
        return int(text) if _INTEGER.match(text) else float(text)
    raise ExpressionEvaluationError(f"the {what} must be a number, got {_show(value)}", function=function)


def is_number_like(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) or (isinstance(value, str) and bool(_NUMBER.match(value)))


def to_bool(value: Any, function: str = "", what: str = "argument") -> bool:
    """CBool: booleans, "True"/"False" (any case), and numbers (non-zero is True)."""
    value = single(value, function, what)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "true":
            return True
        if text == "false":
            return False
        if _NUMBER.match(text):
            return float(text) != 0
    raise ExpressionEvaluationError(f"the {what} must be True or False, got {_show(value)}", function=function)


def flatten(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
