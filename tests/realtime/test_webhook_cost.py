"""A webhook run costs the same in a small and a large tenant: it reads the user, the user's
groups and its link, never the app's whole assignment list (the stored snapshot, kept current by
the cycles and the assignment watch, says who holds which role); and GoTo one PATCH, computed
from the values the link says were last sent (no GET of the GoTo user)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from shared.model import Initiator
from shared.realtime.keeper import SubscriptionKeeper
from shared.realtime.messages import ItemKind, QueueItem, QueueMessage
from shared.realtime.worker import handle_message
from tests.fixtures.world import World


async def _rename_cost(world: World) -> tuple[int, int]:
    """(Graph requests, GoTo requests) of one webhook run for a renamed, assigned user."""
    await world.cycle()
    uid = world.assigned_user_ids()[0]
    world.graph.update_user(uid, displayName="Renamed By Webhook")
    world.graph.counters.reset()
    world.goto.counters.reset()
    async with world.runtime() as rt:
        keeper = SubscriptionKeeper(rt.reader.client, rt.reader, rt.store, rt.settings)
        result = await handle_message(rt, QueueMessage((QueueItem(ItemKind.USER, uid, "updated"),)), keeper)
    assert result.by_action == {"Update": 1}
    assert world.goto_user(world.upn(uid))["displayName"] == "Renamed By Webhook"  # type: ignore[index]
    return world.graph.counters.total(), world.goto.counters.total()


async def test_a_user_change_costs_the_same_graph_and_goto_requests_in_a_small_and_a_large_tenant(
    make_world: Callable[..., World],
) -> None:
    costs = []
    for users in (12, 600):
        world = make_world(users=users, assign=users, graph={"page_size_cap": 100})
        world.settings = world.settings.with_overrides(table_prefix="t" + uuid.uuid4().hex[:12])  # a store each
        group = world.graph.create_group("Everyone")
        world.graph.add_member(group, world.assigned_user_ids()[-1])
        world.graph.assign(group, "MeetingOrganizer")  # groups are assigned: the user's groups are read
        costs.append(await _rename_cost(world))
    assert costs[0] == costs[1] == (2, 1)  # GET the user and its groups; PATCH it in GoTo


async def test_a_snapshot_that_would_disable_a_linked_user_is_confirmed_from_graph_first(
    make_world: Callable[..., World],
) -> None:
    world = make_world(users=4, assign=4)
    await world.cycle()
    uid = world.assigned_user_ids()[0]
    async with world.store() as store:
        await store.assignments.delete(uid, "User")  # a stale snapshot: the user looks unassigned
    async with world.runtime() as rt:
        result = await rt.engine.sync_users([uid], initiated_by=Initiator.WEBHOOK)
    assert "Disable" not in result.by_action  # Graph still lists the assignment: nothing changes
    assert world.goto_user(world.upn(uid))["active"] is not False  # type: ignore[index]
