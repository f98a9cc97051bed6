"""Graph emulator tenant model, without HTTP: deterministic generation, the demo profile, the
seed format, paging invariants and control-API rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.graph import DEFAULT_ACCESS_ROLE_ID, GraphEmulator, GraphError
from emulators.graph.model import Tenant
from emulators.graph.seeding import generate


def test_generate_is_deterministic() -> None:
    first, second = Tenant(seed=3), Tenant(seed=3)

    generate(first, users=50, groups=5, seed=9)
    generate(second, users=50, groups=5, seed=9)

    assert list(first.users) == list(second.users)
    assert [u.props for u in first.users.values()] == [u.props for u in second.users.values()]
    assert [g.members.snapshot() for g in first.groups.values()] == [
        g.members.snapshot() for g in second.groups.values()
    ]
    assert first.sp == second.sp


def test_generated_users_have_unique_ascii_upns_in_contoso() -> None:
    tenant = Tenant(seed=1)
    generate(tenant, users=3_000, groups=0, seed=1)

    upns = [u.props["userPrincipalName"] for u in tenant.users.values()]
    assert len(set(upns)) == 3_000
    assert all(upn.isascii() and upn.endswith("@contoso.com") for upn in upns)
    assert any(not u.props["displayName"].isascii() for u in tenant.users.values())


def test_generated_ids_never_collide_with_tenant_ids() -> None:
    tenant = Tenant(seed=1)
    generate(tenant, users=10, groups=2, seed=1)

    tenant_ids = {tenant.tenant_id, tenant.sp["id"], tenant.sp["appId"]}
    assert tenant_ids.isdisjoint(set(tenant.users) | set(tenant.groups))


def test_demo_profile_has_the_documented_mix() -> None:
    tenant = Tenant(seed=0)
    generate(tenant, users=500, groups=20, seed=0, profile="demo")
    summary = tenant.summary()

    roles = summary["assignments"]["byRole"]
    assert roles["MeetingOrganizer"] > roles["WebinarOrganizer"] > roles["Admin"] > 0
    assert 0.03 * 500 <= roles["Default Access"] <= 0.09 * 500
    assert summary["assignments"]["groups"] >= 5
    assert 1 <= summary["users"]["disabled"] <= 10
    assert sum(1 for u in tenant.users.values() if not u.props.get("mail")) == 1
    assigned_groups = {a.principal_id for a in tenant.assignments.values() if a.principal_type == "Group"}
    reachable = set(tenant.assignments_by_principal)
    for group_id in assigned_groups:
        reachable |= set(tenant.groups[group_id].members.snapshot())
    unassigned = set(tenant.users) - reachable
    assert 1 <= len(unassigned) <= 30
    nested = [g for g in tenant.groups.values() if any(m in tenant.groups for m in g.members.snapshot())]
    assert len(nested) == 1


def test_seed_format_round_trip(tmp_path: Path) -> None:
    seed = {
        "tenantId": "7f1d4a52-6c1e-4b0b-9d7e-0c1f1f0e9a11",
        "users": [
            {
                "id": "0b6b1b7a-7d1c-4c1e-8d5f-2d0f7b7e1a01",
                "userPrincipalName": "ann@contoso.com",
                "displayName": "Ann",
            },
            {"userPrincipalName": "bo@contoso.com", "displayName": "Bo", "accountEnabled": False},
            {"userPrincipalName": "cy@contoso.com", "displayName": "Cy", "state": "softDeleted"},
        ],
        "groups": [
            {"displayName": "Inner", "members": ["bo@contoso.com"]},
            {"displayName": "Outer", "members": ["ann@contoso.com", "Inner"]},
        ],
        "assignments": [
            {"principal": "ann@contoso.com", "role": "Admin"},
            {"principal": "Outer", "role": None},
        ],
    }
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(seed))
    emulator = GraphEmulator(seed=1)

    summary = emulator.seed(path)

    assert emulator.tenant_id == seed["tenantId"]
    assert summary["users"] == {"active": 2, "disabled": 1, "softDeleted": 1}
    assert summary["assignments"]["byRole"] == {"Admin": 1, "Default Access": 1}
    outer = emulator.tenant.find_group_id("Outer")
    assert outer is not None
    assert len(emulator.tenant.transitive_member_ids(outer)) == 3
    assert emulator.user("0b6b1b7a-7d1c-4c1e-8d5f-2d0f7b7e1a01")["displayName"] == "Ann"


def test_seed_rejects_unknown_fields_and_dangling_references() -> None:
    emulator = GraphEmulator()

    with pytest.raises(GraphError):
        emulator.seed({"people": []})
    with pytest.raises(GraphError):
        emulator.seed({"groups": [{"displayName": "G", "members": ["nobody@contoso.com"]}]})


def test_create_user_defaults_and_duplicate_upn() -> None:
    emulator = GraphEmulator()
    user_id = emulator.create_user(givenName="José", surname="Núñez")

    user = emulator.user(user_id)
    assert user["userPrincipalName"] == "jose.nunez@contoso.com"
    assert user["mail"] == "jose.nunez@contoso.com"
    assert user["displayName"] == "José Núñez"
    assert user["accountEnabled"] is True
    assert emulator.user(emulator.create_user(givenName="José", surname="Núñez"))["userPrincipalName"] == (
        "jose.nunez2@contoso.com"
    )
    with pytest.raises(GraphError):
        emulator.create_user(userPrincipalName="JOSE.NUNEZ@contoso.com")
    assert emulator.user(emulator.create_user(displayName="No Mail", mail=None))["mail"] is None


def test_update_records_only_real_changes() -> None:
    emulator = GraphEmulator()
    user_id = emulator.create_user(displayName="Same", department="Sales")
    before = emulator.tenant.seq

    unchanged = emulator.update_user(user_id, displayName="Same", department="Sales")
    changed = emulator.update_user(user_id, department="Legal")

    assert unchanged == set()
    assert changed == {"department"}
    assert emulator.tenant.seq == before + 1


def test_assign_is_idempotent_per_role_and_unassign_removes_all() -> None:
    emulator = GraphEmulator()
    user_id = emulator.create_user(displayName="Multi Role")

    first = emulator.assign(user_id, "MeetingOrganizer")
    again = emulator.assign(user_id, "MeetingOrganizer")
    emulator.assign(user_id, None)

    assert first == again
    assert len(first) == 43  # base64url like real assignment ids
    assert {a.app_role_id for a in emulator.tenant.assignments.values()} == {
        emulator.app_roles["MeetingOrganizer"],
        DEFAULT_ACCESS_ROLE_ID,
    }
    assert emulator.unassign(user_id) == 2
    with pytest.raises(GraphError):
        emulator.assign(user_id, "NoSuchRole")


def test_hard_delete_removes_memberships_and_assignments() -> None:
    emulator = GraphEmulator()
    user_id = emulator.create_user(displayName="Leaver")
    group_id = emulator.create_group("Team", members=[user_id])
    emulator.assign(user_id, "Admin")

    emulator.hard_delete_user(user_id)

    assert emulator.tenant.groups[group_id].members.snapshot() == []
    assert emulator.tenant.assignments == {}
    with pytest.raises(GraphError):
        emulator.user(user_id)


def test_soft_deleted_principal_assignments_are_hidden_until_restore() -> None:
    emulator = GraphEmulator()
    user_id = emulator.create_user(displayName="Recycled")
    emulator.assign(user_id, "Admin")

    emulator.soft_delete_user(user_id)
    hidden = emulator.tenant.list_app_role_assigned_to(emulator.sp_id, {}, False).items
    emulator.restore_user(user_id)
    back = emulator.tenant.list_app_role_assigned_to(emulator.sp_id, {}, False).items

    assert hidden == []
    assert [a["principalId"] for a in back] == [user_id]


_PAGING_TENANT = Tenant(seed=5)
generate(_PAGING_TENANT, users=120, groups=0, seed=5)
for _uid in list(_PAGING_TENANT.users)[::7]:
    _PAGING_TENANT.soft_delete_user(_uid)


@settings(max_examples=40, deadline=None)
@given(top=st.integers(min_value=1, max_value=130))
def test_paging_visits_every_visible_user_exactly_once(top: int) -> None:
    seen: list[str] = []
    params: dict[str, str] = {"$top": str(top), "$select": "id"}
    while True:
        page = _PAGING_TENANT.list_users(params)
        assert len(page.items) <= top
        seen += [u["id"] for u in page.items]
        if page.next_token is None:
            break
        params = {**params, "$skiptoken": page.next_token}

    expected = [u.id for u in _PAGING_TENANT.users.values() if not u.deleted]
    assert seen == expected
