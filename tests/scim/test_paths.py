"""The SCIM path algebra: parsing, reading, writing; examples, then hypothesis properties checked
against a small oracle written here that knows each path's parts by construction (it never
parses a path) and reads resources with its own case-insensitive walk."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.scim.paths import (
    ABSENT,
    get_value,
    has_value,
    lookup,
    parse_path,
    set_value,
    short_name,
    split_path,
)
from shared.scim.resource import build_resource
from shared.scim.schemas import ENTERPRISE_URN, USER_URN

DEPT = f"{ENTERPRISE_URN}:department"
WORK_EMAIL = 'emails[type eq "work"].value'


# --- examples


def test_parse_path_forms():
    assert parse_path("active").attr == "active"
    name = parse_path("name.givenName")
    assert (name.attr, name.sub, name.urn) == ("name", "givenName", None)
    email = parse_path(WORK_EMAIL)
    assert (email.attr, email.filter_attr, email.filter_value, email.sub) == ("emails", "type", "work", "value")
    dept = parse_path(DEPT)
    assert (dept.urn, dept.attr, dept.top) == (ENTERPRISE_URN, "department", ENTERPRISE_URN)
    mgr = parse_path(f"{ENTERPRISE_URN}:manager.value")
    assert (mgr.urn, mgr.attr, mgr.sub) == (ENTERPRISE_URN, "manager", "value")
    assert parse_path("urn:ietf:params:scim:schemas:core:2.0:User:userName").urn is None
    with pytest.raises(ValueError, match="unsupported SCIM attribute path"):
        parse_path('emails[type ne "work"].value')


@pytest.mark.parametrize(
    "path",
    ["", "name..givenName", "a.b.c", "1abc", 'emails[type eq "work"', "emails[type eq work].value", "urn:x y:a"],
)
def test_a_path_outside_scim_attribute_notation_is_refused_by_name(path: str) -> None:
    with pytest.raises(ValueError, match="unsupported SCIM attribute path"):
        parse_path(path)


def test_scim_paths_read_and_write_filtered_and_extension_attributes() -> None:
    resource = build_resource({'emails[type eq "work"].value': "a@contoso.com", f"{ENTERPRISE_URN}:department": "X"})
    assert resource["emails"] == [{"type": "work", "value": "a@contoso.com", "primary": True}]
    assert get_value(resource, 'emails[type eq "work"].value') == "a@contoso.com"
    assert get_value(resource, f"{ENTERPRISE_URN}:department") == "X"
    assert "schemas" not in resource  # GoTo's UserDefinition carries none


def test_names_urns_operator_and_type_are_matched_in_any_case() -> None:
    resource = {
        "UserName": "a@contoso.com",
        "Emails": [{"Type": "Work", "Value": "a@contoso.com"}],
        ENTERPRISE_URN.upper(): {"Department": "R&D"},
    }
    assert get_value(resource, "userName") == "a@contoso.com"
    assert get_value(resource, 'emails[TYPE EQ "work"].value') == "a@contoso.com"
    assert get_value(resource, DEPT) == "R&D"
    assert get_value(resource, f"{USER_URN.upper()}:username") == "a@contoso.com"


def test_has_value_says_whether_the_server_returned_the_attribute_at_all() -> None:
    resource = {"name": {"familyName": "Smith"}, "emails": [{"type": "home", "value": "h@example.com"}]}
    assert has_value(resource, "name.givenName")  # the server returns name: givenName is empty
    assert has_value(resource, WORK_EMAIL)  # the server returns emails: there is no work one
    assert not has_value(resource, "title")
    assert not has_value(resource, DEPT)  # the server dropped the enterprise extension
    assert lookup(resource, "name.givenName") is ABSENT
    assert lookup({"title": None}, "title") is None


def test_the_first_email_of_a_list_without_a_primary_one_becomes_primary() -> None:
    resource: dict[str, Any] = {"emails": [{"type": "other", "value": "o@example.com"}]}
    set_value(resource, WORK_EMAIL, "w@contoso.com")
    assert resource["emails"][1] == {"type": "work", "value": "w@contoso.com", "primary": True}
    set_value(resource, 'emails[type eq "home"].value', "h@example.com")
    assert "primary" not in resource["emails"][2]
    phones: dict[str, Any] = {}
    set_value(phones, 'phoneNumbers[type eq "work"].value', "+1")
    assert phones == {"phoneNumbers": [{"type": "work", "value": "+1"}]}


def test_clearing_a_value_drops_the_element_and_clearing_another_part_keeps_it() -> None:
    address = {"type": "work", "streetAddress": "1 Main St", "postalCode": "12345"}
    resource: dict[str, Any] = {
        "addresses": [dict(address)],
        "emails": [{"type": "work", "value": "w", "primary": True}],
    }
    set_value(resource, 'addresses[type eq "work"].postalCode', None)
    assert resource["addresses"] == [{"type": "work", "streetAddress": "1 Main St"}]
    set_value(resource, WORK_EMAIL, None)
    assert resource["emails"] == []


def test_a_whole_element_is_written_with_its_filter_value() -> None:
    resource: dict[str, Any] = {}
    set_value(resource, 'phoneNumbers[type eq "mobile"]', {"value": "+1"})
    assert resource == {"phoneNumbers": [{"value": "+1", "type": "mobile"}]}
    with pytest.raises(ValueError, match="is an object"):
        set_value(resource, 'phoneNumbers[type eq "fax"]', "+2")


def test_null_is_written_unless_removal_is_asked_for() -> None:
    resource: dict[str, Any] = {"title": "Clerk", "name": {"givenName": "Ann"}}
    set_value(resource, "title", None)
    set_value(resource, "name.givenName", None, none_removes=True)
    assert resource == {"title": None, "name": {}}


def test_split_and_short_name_keep_a_colon_inside_a_filter_value() -> None:
    path = f'{ENTERPRISE_URN}:emails[type eq "a:b"].value'
    assert split_path(path) == (ENTERPRISE_URN, 'emails[type eq "a:b"].value')
    assert split_path("name.givenName") == (None, "name.givenName")
    assert split_path("urn:bad urn:department") == ("urn:bad urn", "department")
    assert short_name(DEPT) == "department"
    assert parse_path(path).filter_value == "a:b"


# --- properties against the oracle

URNS = (None, ENTERPRISE_URN, "urn:example:params:scim:schemas:extension:acme:1.0:User")
SCALARS = ("title", "displayName", "department")
COMPLEX = {"name": ("givenName", "familyName"), "manager": ("value", "displayName")}
MULTI = {"emails": ("value", "display"), "phoneNumbers": ("value", "display")}
TYPES = ("work", "home", "other")
VALUES = st.text(alphabet="abcXYZ@.", min_size=1, max_size=5)


@dataclass(frozen=True)
class Spec:
    """A path by its parts, as the oracle knows it."""

    urn: str | None
    attr: str
    sub: str | None = None
    type: str | None = None  # the filter value of a multi-valued attribute

    def same(self, other: Spec) -> bool:
        return _key(self) == _key(other)


def _key(spec: Spec) -> tuple[str, ...]:
    return tuple((part or "").lower() for part in (spec.urn, spec.attr, spec.sub, spec.type))


def same_element(one: Spec, other: Spec) -> bool:
    """Both paths select the same element type of the same multi-valued attribute (a removed
    element moves a later one of its type up)."""
    return _key(one)[:2] + _key(one)[3:] == _key(other)[:2] + _key(other)[3:]


def specs() -> list[Spec]:
    out: list[Spec] = []
    for urn in URNS:
        out += [Spec(urn, a) for a in SCALARS]
        out += [Spec(urn, a, s) for a, subs in COMPLEX.items() for s in subs]
        out += [Spec(urn, a, s, t) for a, subs in MULTI.items() for s in subs for t in TYPES]
    return out


SPECS = specs()


@st.composite
def recased(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.integers(0, 2 ** len(text) - 1))  # bit n set: character n swaps case
    return "".join(c.swapcase() if flips >> n & 1 else c for n, c in enumerate(text))


@st.composite
def rendered(draw: st.DrawFn, spec: Spec) -> str:
    """The path text, every name in a random case."""
    text = draw(recased(spec.attr))
    if spec.type is not None:
        text += f'[{draw(recased("type"))} {draw(recased("eq"))} "{draw(recased(spec.type))}"]'
    if spec.sub is not None:
        text += "." + draw(recased(spec.sub))
    return f"{draw(recased(spec.urn))}:{text}" if spec.urn else text


@st.composite
def container_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Some of the attributes, each under one spelling; lists may hold two elements of one type."""
    obj: dict[str, Any] = {}
    for attr in draw(st.lists(st.sampled_from(SCALARS), unique=True)):
        obj[draw(recased(attr))] = draw(VALUES)
    for attr in draw(st.lists(st.sampled_from(sorted(COMPLEX)), unique=True)):
        subs = draw(st.lists(st.sampled_from(COMPLEX[attr]), unique=True))
        obj[draw(recased(attr))] = {draw(recased(s)): draw(VALUES) for s in subs}
    for attr in draw(st.lists(st.sampled_from(sorted(MULTI)), unique=True)):
        elements = []
        for kind in draw(st.lists(st.sampled_from(TYPES), max_size=4)):
            subs = draw(st.lists(st.sampled_from(MULTI[attr]), unique=True))
            element = {draw(recased("type")): draw(recased(kind))}
            element.update({draw(recased(s)): draw(VALUES) for s in subs})
            if attr == "emails" and draw(st.booleans()):
                element["primary"] = True
            elements.append(element)
        obj[draw(recased(attr))] = elements
    return obj


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    resource = draw(container_objects())
    for urn in URNS[1:]:
        if draw(st.booleans()):
            resource[draw(recased(urn))] = draw(container_objects())
    return resource


def find(obj: Any, name: str) -> Any:
    """The oracle's reader: the value under ``name`` in any case, or None."""
    if not isinstance(obj, dict):
        return None
    return next((v for k, v in obj.items() if k.lower() == name.lower()), None)


def selected(items: Any, kind: str) -> list[int]:
    """Indexes of the elements of type ``kind`` (any case)."""
    if not isinstance(items, list):
        return []
    return [n for n, e in enumerate(items) if str(find(e, "type") or "").lower() == kind.lower()]


def oracle_get(resource: dict[str, Any], spec: Spec) -> Any:
    box = find(resource, spec.urn) if spec.urn else resource
    value = find(box, spec.attr)
    if spec.type is not None:
        hits = selected(value, spec.type)
        value = value[hits[0]] if hits else None
    return find(value, spec.sub) if spec.sub is not None else value


def no_key_twice(obj: Any) -> bool:
    """No object holds two keys that differ only in case."""
    if isinstance(obj, list):
        return all(no_key_twice(v) for v in obj)
    if not isinstance(obj, dict):
        return True
    keys = [k.lower() for k in obj]
    return len(keys) == len(set(keys)) and all(no_key_twice(v) for v in obj.values())


@st.composite
def cases(draw: st.DrawFn, among: tuple[Spec, ...] = tuple(SPECS)) -> tuple[dict[str, Any], Spec, str]:
    spec = draw(st.sampled_from(among))
    return draw(resources()), spec, draw(rendered(spec))


@settings(max_examples=200, deadline=None)
@given(cases())
def test_reading_a_path_agrees_with_the_oracle_in_any_case(case: tuple[dict[str, Any], Spec, str]) -> None:
    resource, spec, path = case
    assert get_value(resource, path) == oracle_get(resource, spec)
    if spec.urn is None:
        assert get_value(resource, f"{USER_URN}:{path}") == oracle_get(resource, spec)


@settings(max_examples=200, deadline=None)
@given(cases(), VALUES)
def test_set_then_get_returns_the_value_and_leaves_every_other_path_alone(
    case: tuple[dict[str, Any], Spec, str], value: str
) -> None:
    resource, spec, path = case
    before = copy.deepcopy(resource)
    set_value(resource, path, value)
    assert get_value(resource, path) == value
    assert oracle_get(resource, spec) == value
    for other in SPECS:
        if not other.same(spec):
            assert oracle_get(resource, other) == oracle_get(before, other), other
    assert no_key_twice(resource)  # a re-cased path updated the key the resource had


@settings(max_examples=200, deadline=None)
@given(cases(tuple(s for s in SPECS if s.type is not None)), VALUES)
def test_a_filtered_write_creates_or_updates_exactly_one_element(
    case: tuple[dict[str, Any], Spec, str], value: str
) -> None:
    resource, spec, path = case
    assert spec.type is not None
    before = copy.deepcopy(oracle_list(resource, spec))
    set_value(resource, path, value)
    after = oracle_list(resource, spec)
    hits = selected(before, spec.type)
    if hits:
        assert len(after) == len(before)
        changed = [n for n in range(len(after)) if after[n] != before[n]]
        assert changed in ([], [hits[0]])  # [] when it already held the value
    else:
        assert after[:-1] == before
        added = after[-1]
        assert str(find(added, "type")).lower() == spec.type and find(added, spec.sub or "") == value
        had_primary = any(e.get("primary") is True for e in before)
        assert added.get("primary") is (True if spec.attr == "emails" and not had_primary else None)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_removing_a_path_removes_only_what_it_names(case: tuple[dict[str, Any], Spec, str]) -> None:
    resource, spec, path = case
    before = copy.deepcopy(resource)
    set_value(resource, path, None, none_removes=True)
    for other in SPECS:
        if not (other.same(spec) or (spec.type is not None and same_element(other, spec))):
            assert oracle_get(resource, other) == oracle_get(before, other), other
    if spec.type is None:
        assert lookup(resource, path) is ABSENT
        return
    items, old = oracle_list(resource, spec), oracle_list(before, spec)
    hits = selected(old, spec.type)
    if not hits:
        assert items == old
        return
    first = hits[0]
    rest = old[:first] + old[first + 1 :]
    if len(items) == len(old):  # the element keeps other attributes: only the sub-attribute went
        assert items[:first] + items[first + 1 :] == rest
        assert find(items[first], spec.sub or "") is None
    else:
        assert items == rest


def oracle_list(resource: dict[str, Any], spec: Spec) -> list[Any]:
    box = find(resource, spec.urn) if spec.urn else resource
    value = find(box, spec.attr)
    return value if isinstance(value, list) else []


@given(st.sampled_from(SPECS), st.text(alphabet='ab"\\: ', min_size=1, max_size=6))
def test_a_parsed_path_gives_back_its_parts_with_escapes_undone(spec: Spec, kind: str) -> None:
    if spec.type is not None:
        spec = Spec(spec.urn, spec.attr, spec.sub, kind)
    text = spec.attr
    if spec.type is not None:
        escaped = spec.type.replace("\\", "\\\\").replace('"', '\\"')
        text += f'[type eq "{escaped}"]'
    if spec.sub:
        text += f".{spec.sub}"
    ref = parse_path(f"{spec.urn}:{text}" if spec.urn else text)
    assert (ref.urn, ref.attr, ref.filter_value, ref.sub) == (spec.urn, spec.attr, spec.type, spec.sub)
