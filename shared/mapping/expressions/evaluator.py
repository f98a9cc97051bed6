"""Evaluates a parsed expression against one source object."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.mapping.errors import ExpressionEvaluationError
from shared.mapping.expressions import dates
from shared.mapping.expressions.functions import FUNCTIONS
from shared.mapping.expressions.parser import Attribute, Call, Comparison, Empty, Literal, Node
from shared.mapping.expressions.values import (
    MISSING,
    is_null,
    is_number_like,
    single,
    to_bool,
    to_number,
    to_text,
)


class Evaluator:
    """One evaluation: reads attributes through `read`, remembers whether Redact was used."""

    def __init__(
        self,
        read: Callable[[str], Any],
        *,
        now: datetime | None = None,
        value_in_use: Callable[[str], bool] | None = None,
    ) -> None:
        self.read = read
        self.now = now or datetime.now(UTC)
        self.value_in_use = value_in_use
        self.redacted = False

    def eval(self, node: Node) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Attribute):
            return self.read(node.name)
        if isinstance(node, Empty):
            return MISSING
        if isinstance(node, Comparison):
            return self.compare(node)
        return self.call(node)

    def call(self, node: Call) -> Any:
        spec = FUNCTIONS[node.name]
        if spec.lazy:
            return spec.impl(self, node.args)
        args = [self.eval(a) for a in node.args]
        if spec.nulls == "propagate":
            positions = spec.propagate if spec.propagate is not None else range(len(args))
            if any(i < len(args) and args[i] is not MISSING and is_null(args[i]) for i in positions):
                return None
        return spec.impl(self, *args)

    def compare(self, node: Comparison) -> bool | None:
        left, right = self.eval(node.left), self.eval(node.right)
        if is_null(left) or is_null(right):
            return None  # a comparison with a null operand fails, as IIF's condition does in Entra
        left, right = single(left, "IIF", "operand"), single(right, "IIF", "operand")
        ordering = _order(left, right)
        op = node.op
        if op == "=":
            return ordering == 0
        if op == "<>":
            return ordering != 0
        if op == "<":
            return ordering < 0
        if op == "<=":
            return ordering <= 0
        if op == ">":
            return ordering > 0
        return ordering >= 0


def _order(left: Any, right: Any) -> int:
    """-1/0/1. Numbers compare as numbers, dates as dates, booleans as booleans; anything else
    compares as text, ordinally and case-sensitively."""
    a: Any
    b: Any
    if isinstance(left, datetime) or isinstance(right, datetime):
        a, b = _as_date(left), _as_date(right)
    elif isinstance(left, bool) or isinstance(right, bool):
        a, b = to_bool(left, "IIF", "operand"), to_bool(right, "IIF", "operand")
    elif (_is_number(left) or _is_number(right)) and is_number_like(left) and is_number_like(right):
        a, b = to_number(left, "IIF"), to_number(right, "IIF")
    else:
        a, b = to_text(left, "IIF", "operand"), to_text(right, "IIF", "operand")
    return (a > b) - (a < b)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_date(value: Any) -> datetime:
    if isinstance(value, datetime):
        return dates.as_utc(value)
    if isinstance(value, str):
        return dates.parse_date(value, "IIF")
    raise ExpressionEvaluationError(f"cannot compare {type(value).__name__} with a date", function="IIF")
