"""SCIM ``eq`` filters: built so nothing can be injected, and their results checked on the
client side (a server may ignore the filter and answer with everything)."""

from __future__ import annotations

import pytest

from shared.scim.filters import matches_eq, scim_filter
from shared.scim.schemas import ENTERPRISE_URN

DEPT = f"{ENTERPRISE_URN}:department"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("alice@contoso.com", 'userName eq "alice@contoso.com"'),
        ('al"ice', 'userName eq "al\\"ice"'),
        ("back\\slash", 'userName eq "back\\\\slash"'),
        ('both\\"', 'userName eq "both\\\\\\""'),
    ],
)
def test_filter_escapes_quote_and_backslash(value, expected):
    assert scim_filter("userName", value) == expected


@pytest.mark.parametrize("attribute", ['userName eq "x" or userName', "userName)", "", "1abc"])
def test_filter_refuses_anything_but_an_attribute_path(attribute):
    with pytest.raises(ValueError, match="attribute path"):
        scim_filter(attribute, "x")


def test_filter_accepts_dotted_and_extension_attributes():
    assert scim_filter("name.familyName", "Smith") == 'name.familyName eq "Smith"'
    assert scim_filter(DEPT, "Sales") == f'{DEPT} eq "Sales"'


def test_eq_check_drops_results_a_server_did_not_filter():
    assert matches_eq({"userName": "Alice@Contoso.com"}, "userName", "alice@contoso.com")
    assert not matches_eq({"userName": "bob@contoso.com"}, "userName", "alice@contoso.com")
    assert matches_eq({"id": "1"}, "externalId", "e-1")  # not returned: cannot be checked


def test_filter_refuses_a_path_with_a_filter_of_its_own_or_a_spaced_urn():
    for attribute in ('emails[type eq "work"].value', "urn:x y:department", 'urn:a:b"c:department'):
        with pytest.raises(ValueError, match="not a plain SCIM attribute path"):
            scim_filter(attribute, "x")
    with pytest.raises(ValueError, match="unsupported filter operator"):
        scim_filter("userName", "x", "pr")


def test_eq_check_finds_the_attribute_in_any_case_and_inside_the_extension():
    assert not matches_eq({"UserName": "bob@contoso.com"}, "userName", "alice@contoso.com")
    assert matches_eq({"name": {"FamilyName": "Smith"}}, "name.familyName", "smith")
    assert not matches_eq({ENTERPRISE_URN.upper(): {"department": "Sales"}}, DEPT, "R&D")
    assert matches_eq({"name": {}}, "name.familyName", "Smith")  # not returned: cannot be checked
    assert not matches_eq({"userName": None}, "userName", "alice@contoso.com")  # returned as null: no match
