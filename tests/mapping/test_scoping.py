"""Scoping filters: Entra's 14 operators, null handling, AND within a filter, OR across."""

from __future__ import annotations

from typing import Any

import pytest

from shared.mapping import OPERATORS, MappingConfigError, ScopingClause, ScopingFilter, mapping_from_dict, scope_check
from shared.mapping.scoping import validate_filters

# (operator, clause value, attribute value, passes)
TABLE: list[tuple[str, str, Any, bool]] = [
    ("&", "Sales,Marketing", "Sales", True),
    ("&", "Sales,Marketing", "Legal", False),
    ("!&", "Sales,Marketing", "Legal", True),
    ("!&", "Sales,Marketing", "Sales", False),
    ("ENDS_WITH", "@contoso.com", "ann@contoso.com", True),
    ("ENDS_WITH", "@contoso.com", "ann@contoso.org", False),
    ("EQUALS", "Sales", "Sales", True),
    ("EQUALS", "Sales", "sales", False),  # case-sensitive
    ("NOT EQUALS", "Sales", "sales", True),
    ("NOT EQUALS", "Sales", "Sales", False),
    ("Includes", "ale", "Sales", True),
    ("Includes", "ALE", "Sales", False),  # case-sensitive
    ("Greater_Than", "1000000", "1500000", True),
    ("Greater_Than", "1000000", "1000000", False),
    ("Greater_Than", "10", "abc", False),  # integers only
    ("Greater_Than", "10", 11, True),
    ("Greater_Than_OR_EQUALS", "1000000", "1000000", True),
    ("Greater_Than_OR_EQUALS", "1000000", "999999", False),
    ("IS TRUE", "", True, True),
    ("IS TRUE", "", False, False),
    ("IS TRUE", "", "true", True),
    ("IS FALSE", "", False, True),
    ("IS FALSE", "", True, False),
    ("IS NULL", "", None, True),
    ("IS NULL", "", "", True),
    ("IS NULL", "", "x", False),
    ("IS NOT NULL", "", "x", True),
    ("IS NOT NULL", "", None, False),
    ("REGEX MATCH", r".*\@domain.com", "ann@domain.com", True),
    ("REGEX MATCH", r".*\@domain.com", "ann@other.com", False),
    ("REGEX MATCH", "([1-9][0-9])", "42", True),
    ("REGEX MATCH", "^(?<id>1[0-9]{6})$", "1234567", True),
    ("NOT REGEX MATCH", r".*\@domain.com", "ann@other.com", True),
    ("NOT REGEX MATCH", r".*\@domain.com", "ann@domain.com", False),
]


@pytest.mark.parametrize(("operator", "value", "actual", "passes"), TABLE)
def test_operator_table(operator: str, value: str, actual: Any, passes: bool) -> None:
    clause = ScopingClause("department", operator, value)
    in_scope, results = scope_check((ScopingFilter((clause,)),), {"department": actual})
    assert in_scope is passes
    assert results[0].passed is passes and results[0].actual == actual


def test_the_table_covers_the_fourteen_operators() -> None:
    assert len(OPERATORS) == 14
    assert {row[0] for row in TABLE} == set(OPERATORS)


@pytest.mark.parametrize("operator", [op for op in OPERATORS if op != "IS NULL"])
@pytest.mark.parametrize("empty", [None, ""])
def test_null_or_empty_makes_every_clause_false_but_is_null(operator: str, empty: Any) -> None:
    value = "5" if operator.startswith("Greater") else "x"
    in_scope, _ = scope_check((ScopingFilter((ScopingClause("jobTitle", operator, value),)),), {"jobTitle": empty})
    assert in_scope is False


def test_clauses_are_and_ed_and_filters_or_ed() -> None:
    new_york_engineers = ScopingFilter(
        (
            ScopingClause("state", "EQUALS", "New York"),
            ScopingClause("department", "EQUALS", "Engineering"),
            ScopingClause("employeeId", "Greater_Than_OR_EQUALS", "1000000"),
            ScopingClause("jobTitle", "IS NOT NULL"),
        )
    )
    sales = ScopingFilter((ScopingClause("department", "EQUALS", "Sales"),))
    engineer = {"state": "New York", "department": "Engineering", "employeeId": "1500000", "jobTitle": "Dev"}
    assert scope_check((new_york_engineers,), engineer)[0] is True
    assert scope_check((new_york_engineers,), {**engineer, "jobTitle": ""})[0] is False
    assert scope_check((new_york_engineers, sales), {"department": "Sales"})[0] is True
    in_scope, results = scope_check((new_york_engineers, sales), {"department": "Legal"})
    assert in_scope is False and len(results) == 5  # every clause is reported for the log


def test_no_filters_means_in_scope() -> None:
    assert scope_check((), {}) == (True, [])


def test_filters_read_sub_properties_and_entra_names_but_not_the_stripped_upn() -> None:
    attributes = {
        "onPremisesExtensionAttributes": {"extensionAttribute1": "GoTo"},
        "userPrincipalName": "ann_fabrikam.com#EXT#@contoso.onmicrosoft.com",
    }
    assert scope_check((ScopingFilter((ScopingClause("extensionAttribute1", "EQUALS", "GoTo"),)),), attributes)[0]
    assert scope_check((ScopingFilter((ScopingClause("userPrincipalName", "Includes", "#EXT#"),)),), attributes)[0]


@pytest.mark.parametrize(
    ("attribute", "operator", "value", "message"),
    [
        ("department", "CONTAINS", "x", "unknown operator 'CONTAINS'"),
        ("appRoleAssignments", "EQUALS", "Admin", "cannot filter on appRoleAssignments"),
        ("userType", "EQUALS", "Guest", "cannot filter on userType"),
        ("manager", "IS NOT NULL", "", "cannot filter on manager"),
        ("IsMemberOf", "EQUALS", "GoTo users", "cannot filter on IsMemberOf"),
        ("proxyAddresses", "Includes", "smtp:", "multi-valued"),
        ("employeeHireDate", "IS NOT NULL", "", "is a date"),
        ("createdDateTime", "Greater_Than", "0", "is a date"),
        ("IsSoftDeleted", "IS TRUE", "", "computed"),
        ("employeeId", "Greater_Than", "ten", "compares integers"),
        ("userPrincipalName", "REGEX MATCH", "(a+)+", "nested quantifiers"),
        ("userPrincipalName", "REGEX MATCH", "(", "not a valid regular expression"),
        ("bad name!", "EQUALS", "x", "not a source attribute name"),
        ("Department", "EQUALS", "x", "case-sensitive: department"),
    ],
)
def test_validation_names_the_filter_and_the_clause(attribute: str, operator: str, value: str, message: str) -> None:
    flt = ScopingFilter(
        (ScopingClause("department", "EQUALS", "Sales"), ScopingClause(attribute, operator, value)), "GoTo users"
    )
    errors = validate_filters((ScopingFilter((ScopingClause("jobTitle", "IS NOT NULL"),)), flt))
    assert len(errors) == 1
    assert message in errors[0].problem
    assert errors[0].mapping.startswith("scoping filter 2 ('GoTo users'), clause 2")


def test_operators_are_accepted_in_any_case_from_a_file_and_stored_as_entra_spells_them() -> None:
    cfg = mapping_from_dict(
        {
            "users": {
                "mappings": [
                    {"target": "userName", "type": "direct", "source": "userPrincipalName", "matchingPrecedence": 1}
                ],
                "scopingFilters": [{"clauses": [{"attribute": "department", "operator": "not equals", "value": "x"}]}],
            }
        }
    )
    assert cfg.scoping[0].clauses[0].operator == "NOT EQUALS"
    with pytest.raises(MappingConfigError, match="unknown operator"):
        mapping_from_dict(
            {
                "users": {
                    "mappings": [
                        {"target": "userName", "type": "direct", "source": "userPrincipalName", "matchingPrecedence": 1}
                    ],
                    "scopingFilters": [{"clauses": [{"attribute": "department", "operator": "LIKE", "value": "x"}]}],
                }
            }
        )
