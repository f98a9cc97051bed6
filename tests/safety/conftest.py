"""Helpers for the safety tests: a world provisioned by one initial cycle, and the GoTo write
journal read as "what was deprovisioned"."""

from __future__ import annotations

from typing import Any

from tests.fixtures.world import ProvisionedWorld, World

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


__all__ = ["VISIBLE", "ProvisionedWorld", "active_accounts", "creates", "deprovisions", "journal_mark"]
