"""Attribute-based scoping filters (docs/reference/entra-provisioning.md#scoping-filters): clauses
AND-ed within a filter, filters OR-ed, Entra's 14 operators, and the attributes Entra refuses to
filter on."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.mapping.errors import MappingError
from shared.mapping.expressions.regex_guard import RegexRefused, compile_guarded
from shared.mapping.expressions.values import to_text
from shared.mapping.sources import (
    COMPUTED_SOURCES,
    DATE_ATTRIBUTES,
    MULTI_VALUED,
    REFERENCE_SOURCES,
    read_attribute,
    source_problem,
)

OPERATORS = (
    "&",
    "!&",
    "ENDS_WITH",
    "EQUALS",
    "NOT EQUALS",
    "Includes",
    "Greater_Than",
    "Greater_Than_OR_EQUALS",
    "IS TRUE",
    "IS FALSE",
    "IS NULL",
    "IS NOT NULL",
    "REGEX MATCH",
    "NOT REGEX MATCH",
)
UNARY = frozenset({"IS TRUE", "IS FALSE", "IS NULL", "IS NOT NULL"})
_CANONICAL = {op.lower(): op for op in OPERATORS}
_NON_NEGATIVE_INTEGER = re.compile(r"^\s*\d{1,18}\s*$")
# Entra: "appRoleAssignments, userType, manager and date attributes cannot be filtered on".
FORBIDDEN = frozenset({"appRoleAssignments", "userType", "manager", "IsMemberOf", "memberOf", "members"})


@dataclass(frozen=True)
class ScopingClause:
    attribute: str
    operator: str
    value: str = ""


@dataclass(frozen=True)
class ScopingFilter:
    clauses: tuple[ScopingClause, ...]
    name: str = ""  # Entra's "Scoping Filter Title"; not part of the semantics


@dataclass(frozen=True)
class ClauseResult:
    clause: ScopingClause
    passed: bool
    actual: Any
    # Set when the clause could not be evaluated (a regular expression the guard refuses for
    # this value, a value that cannot be read as text): neither true nor false.
    error: str = ""


def canonical_operator(operator: str) -> str | None:
    """The operator as Entra spells it, accepting any letter case; None if unknown."""
    return _CANONICAL.get(" ".join(operator.split()).lower()) if isinstance(operator, str) else None


def filter_label(index: int, flt: ScopingFilter) -> str:
    return f"scoping filter {index + 1}{f' ({flt.name!r})' if flt.name else ''}"


def clause_label(index: int, flt: ScopingFilter, clause_index: int, clause: ScopingClause) -> str:
    shown = f"{clause.attribute} {clause.operator}{f' {clause.value!r}' if clause.value else ''}"
    return f"{filter_label(index, flt)}, clause {clause_index + 1} ({shown})"


def validate_filters(filters: tuple[ScopingFilter, ...]) -> list[MappingError]:
    """Every problem in the filters, each naming the filter and the clause."""
    errors: list[MappingError] = []
    for i, flt in enumerate(filters):
        if not flt.clauses:
            errors.append(MappingError(filter_label(i, flt), "a scoping filter needs at least one clause"))
        for j, clause in enumerate(flt.clauses):
            problem = _clause_problem(clause)
            if problem:
                errors.append(MappingError(clause_label(i, flt, j, clause), problem))
    return errors


def _clause_problem(clause: ScopingClause) -> str | None:
    name, op = clause.attribute, clause.operator
    if name in FORBIDDEN or name in REFERENCE_SOURCES:
        return f"Entra cannot filter on {name}"
    problem = source_problem(name)
    if problem:
        return problem
    if op not in OPERATORS:
        return f"unknown operator {op!r}; use one of: {', '.join(OPERATORS)}"
    if not isinstance(clause.value, str):
        return "the value must be text"
    if name in MULTI_VALUED:
        return f"{name} is multi-valued; scoping filters do not support multi-valued attributes"
    if name in DATE_ATTRIBUTES or name.endswith("DateTime"):
        return f"{name} is a date; scoping filters do not support date attributes"
    if name in COMPUTED_SOURCES and name != "objectId":
        return f"{name} is computed during provisioning and cannot be filtered on"
    if op in ("Greater_Than", "Greater_Than_OR_EQUALS") and not _NON_NEGATIVE_INTEGER.match(clause.value):
        return f"{op} compares integers; {clause.value!r} is not one"
    if op in ("REGEX MATCH", "NOT REGEX MATCH"):
        try:
            compile_guarded(clause.value)
        except RegexRefused as e:
            return f"regular expression refused: {e}"
    if op in ("&", "!&", "ENDS_WITH", "Includes") and clause.value == "":
        return f"{op} needs a value"
    return None


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple) and not value)


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _NON_NEGATIVE_INTEGER.match(value):
        return int(value)
    return None


# Text operators: (the attribute's text, the clause's value) -> whether the clause passes.
_TEXT_TESTS: dict[str, Callable[[str, str], bool]] = {
    "&": lambda text, value: text in value,
    "!&": lambda text, value: text not in value,
    "ENDS_WITH": lambda text, value: text.endswith(value),
    "EQUALS": lambda text, value: text == value,
    "NOT EQUALS": lambda text, value: text != value,
    "Includes": lambda text, value: value in text,
}


def evaluate_clause(clause: ScopingClause, attributes: dict[str, Any]) -> ClauseResult:
    name = clause.attribute
    actual = attributes.get("id") if name == "objectId" else read_attribute(attributes, name, strip_guest=False)
    op = canonical_operator(clause.operator)
    if op is None:
        return ClauseResult(clause, False, actual)
    if op == "IS NULL":
        return ClauseResult(clause, _is_empty(actual), actual)
    if _is_empty(actual) or isinstance(actual, list | tuple | dict):
        return ClauseResult(clause, False, actual)  # null/empty (and multi-values) make a clause false
    if op == "IS NOT NULL":
        return ClauseResult(clause, True, actual)
    if op in ("IS TRUE", "IS FALSE"):
        return ClauseResult(clause, _as_bool(actual) is (op == "IS TRUE"), actual)
    if op in ("Greater_Than", "Greater_Than_OR_EQUALS"):
        left, right = _as_int(actual), _as_int(clause.value)
        passed = left is not None and right is not None and (left > right or (op.endswith("EQUALS") and left == right))
        return ClauseResult(clause, passed, actual)
    return _text_clause(clause, op, actual)


def _text_clause(clause: ScopingClause, op: str, actual: Any) -> ClauseResult:
    try:
        text = to_text(actual)
    except MappingError as exc:
        return ClauseResult(clause, False, actual, error=f"the value cannot be read as text: {exc}")
    test = _TEXT_TESTS.get(op)
    if test is not None:
        return ClauseResult(clause, test(text, clause.value), actual)
    # REGEX MATCH / NOT REGEX MATCH: .NET Regex.IsMatch, a match anywhere
    try:
        found = compile_guarded(clause.value).search(text) is not None
    except RegexRefused as exc:
        return ClauseResult(clause, False, actual, error=f"the regular expression guard refused it: {exc}")
    return ClauseResult(clause, found if op == "REGEX MATCH" else not found, actual)


def scope_check(filters: tuple[ScopingFilter, ...], attributes: dict[str, Any]) -> tuple[bool, list[ClauseResult]]:
    """Whether the object passes the filters (no filters: in scope), with every clause's result.
    Filters are OR-ed, clauses within one filter AND-ed; every clause is evaluated for the log."""
    if not filters:
        return True, []
    results: list[ClauseResult] = []
    in_scope = False
    for flt in filters:
        clause_results = [evaluate_clause(c, attributes) for c in flt.clauses]
        results.extend(clause_results)
        if clause_results and all(r.passed for r in clause_results):
            in_scope = True
    return in_scope, results
