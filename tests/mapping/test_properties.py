"""Hostile input: whatever the text, the attributes or the file, the library raises only its
typed errors, and always finishes (hypothesis, bounded examples; speed is measured by
bench/regex_guard.py, not asserted here)."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.mapping import (
    FUNCTIONS,
    OPERATORS,
    AttributeMapping,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    MappingConfig,
    MappingConfigError,
    MappingError,
    ScopingClause,
    ScopingFilter,
    SourceContext,
    evaluate_expression,
    evaluate_user,
    mapping_from_dict,
    mapping_from_json,
    parse,
    scope_check,
)
from shared.mapping.expressions import to_source
from shared.mapping.expressions.regex_guard import RegexRefused, compile_guarded
from tests.mapping.helpers import NOW

# GOTOSYNC_PROPERTY_EXAMPLES=20000 for a longer soak; 300 keeps the suite fast.
EXAMPLES = int(os.environ.get("GOTOSYNC_PROPERTY_EXAMPLES", "300"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Drawing whole configurations or filter sets costs more than running them: fewer, larger examples.
HEAVY = settings(PROPERTY, max_examples=max(1, EXAMPLES // 3))

ATTRIBUTE_NAMES = [
    "a",
    "b",
    "mail",
    "proxyAddresses",
    "userPrincipalName",
    "IsSoftDeleted",
    "appRoleAssignments",
    "objectId",
    "missing",
    "extensionAttribute1",
    "employeeOrgData.costCenter",
    "telephoneNumber",
]
INTERESTING = [
    "",
    " ",
    "2021-08-25",
    "8/25/2021 5:41:18 PM",
    "20150123105347.1Z",
    "2020-03-16-07:00",
    "True",
    "false",
    "-1",
    "0",
    "3",
    "129699324000000000",
    "(a+)+$",
    "(?<g>a*)b",
    "[",
    "yyyy-MM-dd",
    "yyyyMMddHHmmss.fZ",
    "F%F%F%F%F%F%F%F%F%F%F%F%F%F%F%F%F%F%F%F",
    "vbTextCompare",
    "d",
    "ww",
    "tr-TR",
    "a" * 300 + "!",
    "${g}$1$$",
]
REGEXISH = st.text(alphabet="ab()[]{}*+?|.^$\\-,:0123456789<>?=!dDswWPk'\"", max_size=25)
values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**25), max_value=10**25),
        st.floats(),
        st.text(max_size=40),
        st.sampled_from(INTERESTING),
        REGEXISH,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)
attributes = st.dictionaries(
    st.sampled_from([*ATTRIBUTE_NAMES, "employeeOrgData", "onPremisesExtensionAttributes"]), values, max_size=8
)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


leaves = st.one_of(
    st.sampled_from(ATTRIBUTE_NAMES).map(lambda n: f"[{n}]"),
    st.one_of(st.text(max_size=15), st.sampled_from(INTERESTING), REGEXISH).map(_quote),
    st.integers(min_value=-(10**21), max_value=10**21).map(str),
    st.integers(min_value=0, max_value=2**70).map(lambda n: f"&H{n:X}"),
    st.sampled_from(["True", "False", "vbTextCompare", "vbBinaryCompare", "1.5", "-0"]),
)


@st.composite
def calls(draw: st.DrawFn, children: st.SearchStrategy[str]) -> str:
    name = draw(st.sampled_from(sorted(FUNCTIONS)))
    spec = FUNCTIONS[name]
    high = spec.max_args if spec.max_args is not None else spec.min_args + 4
    count = draw(st.integers(spec.min_args, high)) if draw(st.integers(0, 9)) else draw(st.integers(0, 9))
    if spec.even and count % 2:
        count += 1
    args = [draw(st.one_of(children, st.just(""))) for _ in range(count)]
    if name.endswith("AppRoleAssignmentsComplex") or name == "SingleAppRoleAssignment":
        args = ["[appRoleAssignments]"]
    return f"{name}({', '.join(args)})"


expressions = st.recursive(
    leaves,
    lambda children: st.one_of(
        calls(children),
        st.tuples(st.one_of(leaves, calls(leaves)), st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), leaves).map(
            "".join
        ),
    ),
    max_leaves=25,
)


def _context(attrs: dict[str, Any], roles: tuple[str, ...] = ("Admin",)) -> SourceContext:
    return SourceContext(attributes=attrs, object_id="oid", is_soft_deleted=False, app_roles=roles, now=NOW)


@PROPERTY
@given(st.text(max_size=200))
def test_random_text_parses_or_raises_a_syntax_error(text: str) -> None:
    error: ExpressionSyntaxError | None = None
    try:
        parse(text)
    except ExpressionSyntaxError as e:
        error = e
    if error is not None:
        assert 0 <= error.position <= len(text)
        assert str(error)


@PROPERTY
@given(st.text(alphabet='[]()",\\ =<>&H-0123456789.abAJoinLeftSwitchIIFReplace', max_size=120))
def test_random_expression_characters_raise_only_typed_errors(text: str) -> None:
    with contextlib.suppress(ExpressionSyntaxError, ExpressionEvaluationError):
        evaluate_expression(text, _context({"a": "x"}))


@PROPERTY
@given(expressions, attributes)
def test_well_formed_ish_expressions_raise_only_typed_errors_and_finish(expression: str, attrs: dict[str, Any]) -> None:
    with contextlib.suppress(ExpressionSyntaxError, ExpressionEvaluationError):
        evaluate_expression(expression, _context(attrs))


@PROPERTY
@given(expressions)
def test_canonical_source_parses_back_to_itself(expression: str) -> None:
    try:
        node = parse(expression)
    except ExpressionSyntaxError:
        return
    canonical = to_source(node)
    assert to_source(parse(canonical)) == canonical


@HEAVY
@given(st.lists(expressions, min_size=1, max_size=4), attributes, st.booleans())
def test_evaluate_user_never_raises(exprs: list[str], attrs: dict[str, Any], creating: bool) -> None:
    cfg = MappingConfig(
        users=(
            *(AttributeMapping(f"t{i}", "expression", expression=e) for i, e in enumerate(exprs)),
            AttributeMapping("active", "direct", source="a"),
        )
    )
    context = _context(attrs)
    context.creating = creating
    result = evaluate_user(cfg, context)
    assert len(result.values) + len(result.errors) + len(result.dropped) <= len(cfg.users)
    assert all(isinstance(e, MappingError) and e.mapping for e in result.errors)


@PROPERTY
@given(REGEXISH, st.one_of(st.text(max_size=60), st.sampled_from(INTERESTING)))
def test_the_regex_guard_refuses_or_runs_to_an_answer(pattern: str, subject: str) -> None:
    try:
        regex = compile_guarded(pattern)
    except RegexRefused:
        return
    for text in (subject, subject * 20, "a" * 300 + "!", "ab" * 150 + "!"):
        with contextlib.suppress(RegexRefused):
            regex.search(text)


@HEAVY
@given(
    st.lists(
        st.lists(
            st.builds(
                ScopingClause,
                st.sampled_from([*ATTRIBUTE_NAMES, "department", "accountEnabled"]),
                st.one_of(st.sampled_from(OPERATORS), st.text(max_size=10)),
                st.one_of(st.text(max_size=20), REGEXISH, st.sampled_from(INTERESTING)),
            ),
            max_size=4,
        ).map(lambda cs: ScopingFilter(tuple(cs))),
        max_size=3,
    ),
    attributes,
)
def test_scope_check_never_raises(filters: list[ScopingFilter], attrs: dict[str, Any]) -> None:
    in_scope, results = scope_check(tuple(filters), attrs)
    assert isinstance(in_scope, bool)
    assert len(results) == sum(len(f.clauses) for f in filters)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.sampled_from(INTERESTING)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "users",
                    "mappings",
                    "scopingFilters",
                    "target",
                    "type",
                    "source",
                    "expression",
                    "value",
                    "default",
                    "apply",
                    "matchingPrecedence",
                    "clearOnNull",
                    "clauses",
                    "attribute",
                    "operator",
                    "name",
                    "x",
                ]
            ),
            inner,
            max_size=6,
        ),
    ),
    max_leaves=30,
)


@HEAVY
@given(json_values)
def test_any_json_document_loads_or_raises_a_mapping_config_error(data: Any) -> None:
    errors: list[MappingError] = []
    try:
        mapping_from_dict(data)
    except MappingConfigError as e:
        errors = e.errors or [e]
    assert all(isinstance(x, MappingError) and not isinstance(x, MappingConfigError) for x in errors)
    with contextlib.suppress(MappingConfigError):
        mapping_from_json(json.dumps(data))


@PROPERTY
@given(st.text(max_size=100))
def test_any_file_text_loads_or_raises_a_mapping_config_error(text: str) -> None:
    with contextlib.suppress(MappingConfigError):
        mapping_from_json(text)
