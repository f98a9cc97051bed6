"""Turns one source user into the target values a configuration maps it to (Entra's mapping
semantics: apply-on-create, default-if-null on create, nulls never sent unless clear-on-null)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.mapping.config import AttributeMapping, MappingConfig
from shared.mapping.errors import ExpressionEvaluationError, ExpressionSyntaxError, MappingError
from shared.mapping.expressions import Evaluator, IgnoreFlow, parse
from shared.mapping.expressions.dates import format_entra
from shared.mapping.expressions.values import MISSING, is_null, to_bool
from shared.mapping.sources import SourceContext

BOOLEAN_TARGETS = frozenset({"active"})


@dataclass
class Evaluation:
    values: dict[str, Any]  # target path -> value; None only for a clear-on-null mapping (clear it)
    errors: list[MappingError]  # one per mapping that could not be evaluated
    dropped: list[str]  # targets left out because their value was null (or IgnoreFlowIfNullOrEmpty)
    redacted: list[str] = field(default_factory=list)  # targets whose value logs must show as [Redact]


def evaluate_expression(expr: str, ctx: SourceContext) -> Any:
    """The value an expression gives for this object, as it would flow (None: not sent).
    Raises ExpressionSyntaxError or ExpressionEvaluationError only."""
    return _run(parse(expr), ctx, target="").value


@dataclass
class _Outcome:
    value: Any
    ignored: bool = False  # IgnoreFlowIfNullOrEmpty dropped the attribute
    redacted: bool = False


def _run(node: Any, ctx: SourceContext, target: str) -> _Outcome:
    in_use = ctx.value_in_use
    evaluator = Evaluator(
        ctx.read,
        now=ctx.now,
        value_in_use=(lambda candidate: in_use(target, candidate)) if in_use else None,
    )
    try:
        value = evaluator.eval(node)
    except IgnoreFlow:
        return _Outcome(None, ignored=True, redacted=evaluator.redacted)
    return _Outcome(_flow_value(value), redacted=evaluator.redacted)


def _flow_value(value: Any) -> Any:
    if value is MISSING:
        return None
    if isinstance(value, datetime):
        return format_entra(value)
    if isinstance(value, list | tuple):
        return [format_entra(v) if isinstance(v, datetime) else v for v in value] or None
    return value


def _coerce(target: str, value: Any) -> Any:
    """Entra converts to the target attribute's type: SCIM's `active` is a boolean."""
    if target.lower() in BOOLEAN_TARGETS and value is not None and not isinstance(value, bool):
        try:
            return to_bool(value)
        except MappingError:
            raise ExpressionEvaluationError(f"{target} needs True or False, got {value!r}") from None
    return value


def _outcome(m: AttributeMapping, ctx: SourceContext) -> _Outcome:
    if m.kind == "constant":
        return _Outcome(m.constant)
    if m.kind == "direct":
        value = ctx.read(m.source)
        return _Outcome(None if value == "" else _flow_value(value))  # Graph's "" is no value
    if m.kind == "expression":
        return _run(parse(m.expression), ctx, m.target)
    return _Outcome(None)  # "none": the target is left alone


def evaluate_user(config: MappingConfig, ctx: SourceContext) -> Evaluation:
    """Every mapping's value for this user. Never raises for a bad mapping: its error is
    collected (naming the mapping) and the other mappings are still evaluated."""
    result = Evaluation(values={}, errors=[], dropped=[])
    for m in config.users:
        if m.apply == "create" and not ctx.creating:
            continue
        try:
            outcome = _outcome(m, ctx)
            value = _coerce(m.target, outcome.value)
            default = _coerce(m.target, m.default) if ctx.creating else None
        except (ExpressionEvaluationError, ExpressionSyntaxError) as e:
            result.errors.append(e.for_mapping(m.target))
            continue
        except MappingError as e:
            result.errors.append(ExpressionEvaluationError(e.problem, m.target))
            continue
        except Exception as e:  # a bug in one function must not stop the other mappings
            result.errors.append(ExpressionEvaluationError(f"internal error: {type(e).__name__}: {e}", m.target))
            continue
        if outcome.redacted:
            result.redacted.append(m.target)
        if outcome.ignored:
            result.dropped.append(m.target)
        elif not is_null(value):
            result.values[m.target] = value
        elif default is not None:  # "default value if null", used on create only
            result.values[m.target] = default
        elif m.kind == "none":
            continue
        elif m.clear_on_null and not ctx.creating:
            result.values[m.target] = None
        else:
            result.dropped.append(m.target)
    return result
