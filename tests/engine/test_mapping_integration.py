"""The mapping library inside the engine, end to end (Graph emulator, GoTo emulator, Azurite): a
custom mapping file changes what GoTo receives, a mapping change makes the next cycle a full
one, scoping filters exclude and later deprovision, app roles drive GoToMeeting licenses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.mapping import builtin
from shared.model import Action, CycleKind, Status
from tests.fixtures.world import World

VISIBLE = {"active": "honour", "extension_attrs": "store"}
ROLE_LICENSES = {"MeetingOrganizer": ("G2M",), "WebinarOrganizer": ("G2W",)}


def mapping_file(tmp_path: Path, name: str = "mapping.json", **changes: Any) -> str:
    """The built-in GoTo mapping as a file, with `changes` (target -> mapping dict, or
    "scopingFilters" -> filters) applied."""
    doc = builtin("goto").to_dict()
    filters = changes.pop("scopingFilters", None)
    for target, mapping in changes.items():
        doc["users"]["mappings"] = [m for m in doc["users"]["mappings"] if m["target"] != target]
        doc["users"]["mappings"].append({"target": target, **mapping})
    if filters is not None:
        doc["users"]["scopingFilters"] = filters
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return str(path)


def goto_user(world: World, user_id: str) -> dict[str, Any]:
    user = world.goto.user_by_username(world.upn(user_id))
    assert user is not None, world.upn(user_id)
    return user


async def logs_for(world: World, user_id: str) -> list[Any]:
    async with world.store() as store:
        return await store.logs.query(user=user_id)


async def test_a_custom_mapping_changes_what_goto_receives_and_a_mapping_change_runs_a_full_cycle(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(users=6, assign=4, goto=VISIBLE)
    first = await world.cycle()  # the built-in mapping
    assert first.by_action == {"Create": 4}
    ids = world.assigned_user_ids()
    assert all(goto_user(world, uid)["displayName"] == world.graph.user(uid)["displayName"] for uid in ids)

    shouting = mapping_file(
        tmp_path,
        displayName={"type": "expression", "expression": 'Join(" ", [givenName], ToUpper([surname]))'},
    )
    world.goto.counters.reset()
    changed = await world.cycle(settings={"mapping_file": shouting})
    # Nothing changed in Entra, yet the changed mapping re-evaluates everyone (a full cycle).
    assert changed.kind is CycleKind.INITIAL
    assert changed.by_action == {"Update": 4} and changed.by_status == {"Success": 4}
    for uid in ids:
        source = world.graph.user(uid)
        assert goto_user(world, uid)["displayName"] == f"{source['givenName']} {source['surname'].upper()}"
    entry = (await logs_for(world, ids[0]))[0]
    assert [m.name for m in entry.modified] == ["displayName"]

    # Same mapping again: back to incremental cycles, nothing to write.
    world.goto.counters.reset()
    quiet = await world.cycle(settings={"mapping_file": shouting})
    assert quiet.kind is CycleKind.INCREMENTAL and world.goto.counters.writes() == 0

    # A new user created under the custom mapping gets the computed value on create.
    newcomer = world.graph.create_user(
        userPrincipalName="zoe.quinn@contoso.com", givenName="Zoe", surname="Quinn", displayName="Zoe Quinn"
    )
    world.graph.assign(newcomer, "MeetingOrganizer")
    created = await world.cycle(settings={"mapping_file": shouting})
    assert created.by_action == {"Create": 1}
    assert world.goto.user_by_username("zoe.quinn@contoso.com")["displayName"] == "Zoe QUINN"  # type: ignore[index]


async def test_a_mapping_that_fails_for_one_user_is_that_users_failure_only(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(users=4, assign=4, goto=VISIBLE)
    odd = world.assigned_user_ids()[0]
    world.graph.update_user(odd, onPremisesExtensionAttributes={"extensionAttribute1": "soon"})
    # A hire date kept as AD text: "soon" does not parse, so the mapping fails for that user only.
    path = mapping_file(
        tmp_path,
        title={
            "type": "expression",
            "expression": 'FormatDateTime([extensionAttribute1], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")',
        },
    )
    result = await world.cycle(settings={"mapping_file": path})
    assert result.by_status == {"Success": 3, "Failure": 1}
    entry = (await logs_for(world, odd))[0]
    assert entry.status is Status.FAILURE and entry.error_code == "UnprocessableEntity"
    assert "the mapping for title failed" in entry.reason
    assert world.goto.user_by_username(world.upn(odd)) is None
    async with world.store() as store:
        assert [e.entra_id for e in await store.escrow.all()] == [odd]


async def test_a_scoping_filter_excludes_users_and_deprovisions_one_who_leaves_it(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(users=6, assign=5, goto=VISIBLE)
    ids = world.assigned_user_ids()
    sales, others = ids[:3], ids[3:]
    for uid in sales:
        world.graph.update_user(uid, department="Sales")
    for uid in others:
        world.graph.update_user(uid, department="Marketing")
    path = mapping_file(
        tmp_path,
        scopingFilters=[
            {"name": "Sales only", "clauses": [{"attribute": "department", "operator": "EQUALS", "value": "Sales"}]}
        ],
    )
    first = await world.cycle(settings={"mapping_file": path})
    assert first.by_action == {"Create": 3, "Other": 2}
    assert all(world.goto.user_by_username(world.upn(uid)) is None for uid in others)
    skipped = (await logs_for(world, others[0]))[0]
    assert skipped.status is Status.SKIPPED and "Scoping filters" in skipped.reason
    scoping = next(s for s in skipped.steps if s.name == "EntrySynchronizationScoping")
    assert scoping.details["Scoping filters"].startswith("fail:")
    assert scoping.details["filter 1 (Sales only): department EQUALS 'Sales'"] == "fail (value: 'Marketing')"

    # One Sales user moves to Marketing: out of scope, disabled by the usual rules.
    mover = sales[0]
    world.graph.update_user(mover, department="Marketing")
    moved = await world.cycle(settings={"mapping_file": path})
    assert moved.kind is CycleKind.INCREMENTAL
    assert moved.by_action == {"Disable": 1}
    assert goto_user(world, mover)["active"] is False
    entry = (await logs_for(world, mover))[0]
    assert entry.action is Action.DISABLE and "department EQUALS 'Sales' is false" in entry.reason

    # With SKIP_OUT_OF_SCOPE_DELETIONS the next one to leave is left alone.
    world.graph.update_user(sales[1], department="Support")
    kept = await world.cycle(settings={"mapping_file": path, "skip_out_of_scope_deletions": True})
    assert kept.by_action == {"Other": 1} and kept.by_status == {"Skipped": 1}
    assert goto_user(world, sales[1])["active"] is True


async def test_roles_grant_licenses_a_role_change_swaps_them_and_disable_releases_them(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=4, assign=3, goto=VISIBLE)
    g2m, g2w = world.goto.license_key("G2M"), world.goto.license_key("G2W")
    settings = {"role_licenses": ROLE_LICENSES}
    first = await world.cycle(settings=settings)
    assert first.by_action == {"Create": 3} and first.by_status == {"Success": 3}
    ids = world.assigned_user_ids()
    for uid in ids:
        assert world.goto.licenses_of(goto_user(world, uid)["key"]) == [g2m]
    entry = (await logs_for(world, ids[0]))[0]
    assert any(m.name == "licenses" and m.new == [g2m] for m in entry.modified)
    async with world.store() as store:
        assert (await store.links.get(ids[0], "user")).licenses == [g2m]  # type: ignore[union-attr]

    # MeetingOrganizer -> WebinarOrganizer: the G2M seat goes back, a G2W seat is taken.
    swapper = ids[1]
    world.graph.unassign(swapper)
    world.graph.assign(swapper, "WebinarOrganizer")
    swapped = await world.cycle(settings=settings)
    assert swapped.kind is CycleKind.INCREMENTAL
    assert swapped.by_action == {"Update": 1} and swapped.by_status == {"Success": 1}
    assert world.goto.licenses_of(goto_user(world, swapper)["key"]) == [g2w]
    entry = (await logs_for(world, swapper))[0]
    assert entry.reason == "licenses changed"
    assert [(m.name, m.old, m.new) for m in entry.modified] == [("licenses", [g2m], [g2w])]

    # Holding both roles: the union of their licenses.
    world.graph.assign(swapper, "MeetingOrganizer")
    await world.cycle(settings=settings)
    assert sorted(world.goto.licenses_of(goto_user(world, swapper)["key"])) == sorted([g2m, g2w])

    # Unassigned: disabled, and its seats released.
    world.graph.unassign(swapper)
    released = await world.cycle(settings=settings)
    assert released.by_action == {"Disable": 1}
    target = goto_user(world, swapper)
    assert target["active"] is False and world.goto.licenses_of(target["key"]) == []
    entry = (await logs_for(world, swapper))[0]
    assert ("licenses", sorted([g2m, g2w]), []) in [(m.name, m.old, m.new) for m in entry.modified]


async def test_exhausted_seats_fail_with_license_limit_exceeded_while_the_others_provision(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=5, assign=4, goto=VISIBLE)
    g2m = world.goto.license_key("G2M")
    world.goto.set_seats(g2m, 2)
    settings = {"role_licenses": {"MeetingOrganizer": ("G2M",)}}
    result = await world.cycle(settings=settings)
    assert result.by_action == {"Create": 4}
    assert result.by_status == {"Success": 2, "Failure": 2}
    ids = world.assigned_user_ids()
    # Every user exists in GoTo (the SCIM create is done and linked); two hold the seats.
    licensed = [uid for uid in ids if world.goto.licenses_of(goto_user(world, uid)["key"]) == [g2m]]
    failed = [uid for uid in ids if uid not in licensed]
    assert len(licensed) == 2 and len(failed) == 2
    async with world.store() as store:
        assert {lk.entra_id for lk in await store.links.all("user")} == set(ids)
        escrow = {e.entra_id: e.last_error_code for e in await store.escrow.all()}
    assert escrow == dict.fromkeys(failed, "LicenseLimitExceeded")
    for uid in failed:
        entry = (await logs_for(world, uid))[0]
        assert entry.action is Action.CREATE and entry.status is Status.FAILURE
        assert entry.error_code == "LicenseLimitExceeded"
        assert "created, but its licenses could not be assigned" in entry.reason
    for uid in licensed:
        assert (await logs_for(world, uid))[0].status is Status.SUCCESS

    # A licensed user leaves: disabling releases the seat, and the retry gives it to a waiting user.
    world.graph.unassign(licensed[0])
    freed = await world.cycle(settings=settings)
    assert freed.by_action == {"Disable": 1}
    assert world.goto.licenses_of(goto_user(world, licensed[0])["key"]) == []
    retry = await world.cycle(full=True, settings=settings)
    assert retry.by_action.get("Update") == 2
    assert retry.by_status.get("Failure") == 1 and retry.by_status.get("Success") == 1
    holders = [uid for uid in ids if world.goto.licenses_of(goto_user(world, uid)["key"]) == [g2m]]
    assert len(holders) == 2 and licensed[1] in holders


async def test_without_role_licenses_the_admin_api_is_never_called(make_world: Callable[..., World]) -> None:
    world = make_world(users=4, assign=4, goto=VISIBLE)
    await world.cycle()
    world.graph.unassign(world.assigned_user_ids()[0])
    await world.cycle()
    assert world.goto.counters.total(path_prefix="/admin") == 0
    assert all(world.goto.licenses_of(goto_user(world, uid)["key"]) == [] for uid in world.assigned_user_ids())


async def test_default_access_only_is_not_entitled_unless_role_licenses_maps_it(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=3, assign=3, role=None, goto=VISIBLE)
    skipped = await world.cycle(settings={"role_licenses": ROLE_LICENSES})
    assert skipped.by_status == {"Skipped": 3}
    assert "not effectively entitled" in (await logs_for(world, world.assigned_user_ids()[0]))[0].reason
    # Mapping Default Access ("") is a configuration change: a full cycle provisions them.
    mapped = await world.cycle(settings={"role_licenses": {**ROLE_LICENSES, "": ("G2M",)}})
    assert mapped.kind is CycleKind.INITIAL and mapped.by_action == {"Create": 3}
    g2m = world.goto.license_key("G2M")
    assert all(world.goto.licenses_of(goto_user(world, uid)["key"]) == [g2m] for uid in world.assigned_user_ids())


async def test_a_license_name_the_account_lacks_fails_the_users_holding_that_role(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=3, assign=2, goto=VISIBLE)
    odd = world.graph.create_user(userPrincipalName="webinar.host@contoso.com", givenName="W", surname="Host")
    world.graph.assign(odd, "WebinarOrganizer")
    result = await world.cycle(settings={"role_licenses": {"MeetingOrganizer": ("G2M",), "WebinarOrganizer": ("GTX",)}})
    assert result.by_status == {"Success": 2, "Failure": 1}
    entry = (await logs_for(world, odd))[0]
    assert entry.error_code == "LicenseNotFound" and "'GTX'" in entry.reason
    assert world.goto.user_by_username("webinar.host@contoso.com") is None


async def test_the_stored_configuration_hash_follows_the_last_full_cycle(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(users=3, assign=3)
    await world.cycle()
    async with world.store() as store:
        first = (await store.job.get()).config_hash
    assert first.startswith("sha256:")
    # Reordering the file's mappings does not change the meaning: no full cycle.
    doc = builtin("goto").to_dict()
    doc["users"]["mappings"].reverse()
    same = tmp_path / "same.json"
    same.write_text(json.dumps(doc), encoding="utf-8")
    assert (await world.cycle(settings={"mapping_file": str(same)})).kind is CycleKind.INCREMENTAL
    # Changing ROLE_LICENSES does; its hash is stored at the end of that full cycle.
    licensed = await world.cycle(settings={"role_licenses": ROLE_LICENSES})
    assert licensed.kind is CycleKind.INITIAL
    async with world.store() as store:
        second = (await store.job.get()).config_hash
    assert second != first
    assert (await world.cycle(settings={"role_licenses": ROLE_LICENSES})).kind is CycleKind.INCREMENTAL


async def test_matching_attributes_are_tried_in_precedence_order_with_their_mapped_values(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(users=1, assign=0, goto=VISIBLE)
    path = mapping_file(
        tmp_path,
        userName={
            "type": "expression",
            "expression": "ToLower(Coalesce([mail], [userPrincipalName]))",
            "matchingPrecedence": 1,
        },
        displayName={"type": "direct", "source": "displayName", "matchingPrecedence": 2},
    )
    settings = {"mapping_file": path}
    # Ann: GoTo holds her lower-cased mail as userName (precedence 1, a computed value).
    ann = world.graph.create_user(
        userPrincipalName="ann@contoso.com", mail="Ann.Lee@Contoso.com", displayName="Ann Lee", givenName="Ann"
    )
    ann_key = world.goto.add_user(userName="ann.lee@contoso.com", displayName="Old Ann")
    # Cy: no userName hit, but two GoTo users are named "Cy Young" (precedence 2): duplicates.
    cy = world.graph.create_user(userPrincipalName="cy@contoso.com", mail=None, displayName="Cy Young")
    world.goto.add_user(userName="cy.one@contoso.com", displayName="Cy Young")
    world.goto.add_user(userName="cy.two@contoso.com", displayName="Cy Young")
    for uid in (ann, cy):
        world.graph.assign(uid, "MeetingOrganizer")
    first = await world.cycle(settings=settings)  # a full cycle: one indexed listing of GoTo
    assert first.by_action == {"Update": 1, "Other": 1}
    assert world.goto.user(ann_key)["displayName"] == "Ann Lee"  # type: ignore[index]
    matching = next(s for s in (await logs_for(world, ann))[0].steps if s.name == "EntryMatching")
    assert matching.description == "Matched a GoTo user by userName"
    assert matching.details == {f"externalId eq {ann!r}": "0 hit(s)", "userName eq 'ann.lee@contoso.com'": "1 hit(s)"}
    entry = (await logs_for(world, cy))[0]
    assert entry.status is Status.FAILURE and entry.error_code == "DuplicateTargetEntries"
    matching = next(s for s in entry.steps if s.name == "EntryMatching")
    assert matching.details == {
        f"externalId eq {cy!r}": "0 hit(s)",
        "userName eq 'cy@contoso.com'": "0 hit(s)",
        "displayName eq 'Cy Young'": "2 hit(s)",
    }

    # Bo, assigned later (an incremental cycle looks each user up in GoTo): found by displayName.
    bo = world.graph.create_user(userPrincipalName="bo@contoso.com", mail=None, displayName="Bo Diddley")
    bo_key = world.goto.add_user(userName="bo.diddley@contoso.com", displayName="Bo Diddley")
    world.graph.assign(bo, "MeetingOrganizer")
    later = await world.cycle(settings=settings)
    assert later.kind is CycleKind.INCREMENTAL
    entry = (await logs_for(world, bo))[0]
    assert entry.action is Action.UPDATE and entry.status is Status.SUCCESS
    assert ("userName", "bo.diddley@contoso.com", "bo@contoso.com") in [(m.name, m.old, m.new) for m in entry.modified]
    assert world.goto.user(bo_key)["userName"] == "bo@contoso.com"  # type: ignore[index]
    async with world.store() as store:
        assert (await store.links.get(bo, "user")).matched_by == "displayName"  # type: ignore[union-attr]


async def test_a_matching_attribute_goto_cannot_filter_on_fails_that_user_not_the_cycle(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    world = make_world(users=3, assign=2, goto=VISIBLE)
    path = mapping_file(
        tmp_path,
        externalId={"type": "direct", "source": "objectId", "matchingPrecedence": 1},
        userName={"type": "direct", "source": "userPrincipalName", "matchingPrecedence": 2},
    )
    settings = {"mapping_file": path}
    assert (await world.cycle(settings=settings)).by_action == {"Create": 2}  # full: matched in the listing
    newcomer = next(u for u in world.graph.tenant.users if u not in world.assigned_user_ids())
    world.graph.assign(newcomer, "MeetingOrganizer")
    world.graph.update_user(world.assigned_user_ids()[0], surname="Changed")
    result = await world.cycle(settings=settings)  # incremental: `filter=externalId eq …` is refused
    assert result.by_status == {"Success": 1, "Failure": 1}
    entry = (await logs_for(world, newcomer))[0]
    assert entry.status is Status.FAILURE and "GoTo refused the lookup externalId eq" in entry.reason
