"""Helpers for the safety tests: a world provisioned by one initial cycle, and the GoTo write
journal read as "what was deprovisioned"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from shared.store.errors import StoreError  # noqa: F401  (re-exported for the tests)
from tests.fixtures.world import World

VISIBLE = {"active": "honour", "extension_attrs": "store"}
DEPROVISIONS = {"disabled", "deleted", "removed-from-account"}


def deprovisions(world: World, since: int = 0) -> list[dict[str, Any]]:
    """Journal entries since `since` that disabled, deleted or released a GoTo user."""
    out = []
    for entry in world.goto.journal_entries(since):
        released = "licenses" in entry["events"] and entry["licenses"]["after"] == [] and entry["licenses"]["before"]
        if DEPROVISIONS & set(entry["events"]) or released:
            out.append(entry)
    return out


def creates(world: World, since: int = 0) -> list[dict[str, Any]]:
    return [e for e in world.goto.journal_entries(since) if "created" in e["events"]]


def journal_mark(world: World) -> int:
    entries = world.goto.journal_entries()
    return entries[-1]["seq"] if entries else 0


def active_accounts(world: World, user_name: str) -> list[dict[str, Any]]:
    return [u for u in world.goto.users() if str(u["userName"]).lower() == user_name.lower() and u["active"]]


ProvisionedWorld = Callable[..., Awaitable[World]]


@pytest.fixture
def provisioned(make_world: Callable[..., World]) -> ProvisionedWorld:
    """``await provisioned(users=12, assign=12, graph={...})``: a world after one initial cycle
    (GoTo keeps `active` and externalId unless `goto` says otherwise)."""

    async def make(**kwargs: Any) -> World:
        kwargs["goto"] = {**VISIBLE, **kwargs.get("goto", {})}
        world = make_world(**kwargs)
        result = await world.cycle()
        assert result.by_status.get("Failure", 0) == 0
        return world

    return make
