"""Admin input is hostile until validated: every identifier an admin gives (provision a user or a
group, mapping preview, log filters) is an object id, a UPN or a mail address (a display name
for a group), length-capped, or a clear 400 / exit 2 naming the field, before any Graph call;
what passes reaches Graph's URL path percent-encoded."""

from __future__ import annotations

import string
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.ops import InvalidInput
from shared.ops.identifiers import (
    MAX_IDENTIFIER,
    cycle_identifier,
    group_identifier,
    log_user_filter,
    user_identifier,
)
from tests.fixtures.world import World
from tests.ops.conftest import CliRun, http

SP = "6a1b8a3e-0000-4000-8000-000000000000"
HOSTILE_USERS = [
    f"../servicePrincipals/{SP}@x",
    f"..%2FservicePrincipals%2F{SP}@contoso.com",
    "a" * 1_000_000,
    "alice@contoso.com/../../servicePrincipals",
    "alice@contoso.com?$select=passwordProfile",
    "alice@contoso.com#frag",
    "al ice@contoso.com",
    "alice\x00@contoso.com",
    "@contoso.com",
    "alice@",
    "alice@localhost",
    ".alice@contoso.com",
    "al..ice@contoso.com",
]


@pytest.mark.parametrize("value", HOSTILE_USERS, ids=lambda v: v[:40])
async def test_a_hostile_user_is_a_400_naming_the_field_before_any_graph_call(
    ops_world: Callable[..., World], value: str
) -> None:
    world = ops_world(users=2, assign=1)
    world.graph.counters.reset()
    status, doc = await http("ops_provision", "POST", {"user": value})
    assert status == 400, doc
    assert doc["error"]["field"] == "user" and doc["error"]["code"] == "BadRequest"
    assert len(doc["error"]["message"]) < 300  # the value is not echoed back whole
    assert world.graph.counters.total() == 0


@pytest.mark.parametrize("value", ["g" * (MAX_IDENTIFIER + 1), "Sales\nTeam", "x" * 1_000_000])
async def test_a_hostile_group_is_a_400_naming_the_field(ops_world: Callable[..., World], value: str) -> None:
    ops_world(users=2, assign=1)
    status, doc = await http("ops_provision", "POST", {"group": value})
    assert status == 400 and doc["error"]["field"] == "group"


async def test_log_filters_are_validated(ops_world: Callable[..., World]) -> None:
    ops_world(users=2, assign=1)
    for params, field in (({"user": "u" * 100_000}, "user"), ({"cycle": "not-a-cycle"}, "cycle"),
                          ({"user": "a\x07b"}, "user")):  # fmt: skip
        status, doc = await http("ops_logs", params=params)
        assert status == 400 and doc["error"]["field"] == field, doc


def test_the_cli_refuses_the_same_with_exit_2(ops_world: Callable[..., World], cli: CliRun) -> None:
    ops_world(users=2, assign=1)
    for argv in (["provision", f"../servicePrincipals/{SP}@x"], ["provision", "--group", "g" * 300],
                 ["mapping", "preview", "a" * 5000], ["logs", "--cycle", "abc"]):  # fmt: skip
        code, text = cli(*argv)
        assert code == 2 and "Traceback" not in text, (argv, text)
        assert text.startswith("gotosync: ") and len(text) < 400


def test_a_guest_upn_and_an_apostrophe_reach_graph_encoded(ops_world: Callable[..., World], cli: CliRun) -> None:
    """`#` and `'` are legal in UPNs (guests: `name_home#EXT#@tenant`): they pass, and reach the
    path percent-encoded (a raw `#` would cut the path)."""
    world = ops_world(users=3, assign=2)
    guest, apostrophe = world.assigned_user_ids()[:2]
    world.graph.update_user(guest, userPrincipalName="jo_fabrikam.com#EXT#@contoso.com")
    world.graph.update_user(apostrophe, userPrincipalName="o'brien@contoso.com", mail="o'brien@contoso.com")
    for upn, uid in (("jo_fabrikam.com#EXT#@contoso.com", guest), ("o'brien@contoso.com", apostrophe)):
        code, doc = cli("provision", upn, "--dry-run", "--json")
        assert code == 0, doc
        assert doc["requested"]["id"] == uid and doc["requested"]["resolvedBy"] == "userPrincipalName"


def test_identifiers_that_are_valid_pass_unchanged() -> None:
    assert user_identifier("  Alice.Smith+news@contoso.co.uk ") == "Alice.Smith+news@contoso.co.uk"
    assert user_identifier(SP.upper()) == SP
    assert group_identifier("Sales (EMEA) / Berlin") == "Sales (EMEA) / Berlin"  # goes into a $filter literal
    assert log_user_filter("smith") == "smith"
    assert cycle_identifier(SP) == SP
    with pytest.raises(InvalidInput, match=r"^user: must be text"):
        user_identifier(42)


_ADDRESS_CHARS = string.ascii_letters + string.digits + "'-_!#^~+&$=*."


@given(st.text(min_size=1, max_size=80))
def test_whatever_passes_as_a_user_can_never_climb_out_of_the_users_path(value: str) -> None:
    """The oracle: a value that could change the path once decoded (a slash, a backslash, a
    percent sign, a query or fragment start, whitespace) or that is too long never passes."""
    try:
        checked = user_identifier(value)
    except InvalidInput as exc:
        refused_field = exc.field
        assert refused_field == "user"  # a refusal is one of the two allowed outcomes
        return
    assert len(checked) <= MAX_IDENTIFIER
    assert not any(ch in checked for ch in '/\\%? \t\r\n"<>')
    assert ".." not in checked
    if "@" in checked:
        local, _, domain = checked.partition("@")
        assert local and all(ch in _ADDRESS_CHARS for ch in local)
        assert "." in domain and all(ch.isascii() and (ch.isalnum() or ch in "-.") for ch in domain)
