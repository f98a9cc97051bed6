"""Fixed step lists of the convergence suite's state machine for the failures issue 10 lists (and
one it found), so that each is checked in every run, not only when the random search finds it.
Each test is a scenario as the suite prints one; the machine checks the safety invariant after
every run, and its last step, `teardown()`, runs the clean cycles and checks convergence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.convergence.conftest import Suite
from tests.convergence.test_convergence import ConvergenceMachine


@pytest.fixture
def machine(suite: Suite) -> Iterator[ConvergenceMachine]:
    """12 users, all directly assigned with a role that carries a seat, and one group; the
    first cycle still to run."""
    state = ConvergenceMachine(suite)
    state.setup(users=12, groups=1, hard_delete_action="delete", goto_keeps_extensions=True, layout=0)
    for index in range(12):
        state.assign_user(user=index, role="MeetingOrganizer")
    try:
        yield state
    finally:
        if not state.closed:
            state.broken = True  # the test failed before its teardown step: only close
            state.teardown()


def index_of_first_created(state: ConvergenceMachine) -> int:
    """The user whose GoTo account the journal shows created first (counted from the newest)."""
    first = next(e for e in state.goto.journal_entries() if "created" in e["events"])
    return len(state.ids) - 1 - state.ids.index(state.judge.upn_owner[first["userName"].lower()])


@pytest.mark.parametrize("kind", ["drop-value", "empty-200", "no-content", "error-200", "wrong-shape"])
def test_a_users_page_without_value_deletes_nobody(machine: ConvergenceMachine, kind: str) -> None:
    machine.full_cycle()
    machine.graph_fault(fault=f"users-page2-{kind}")
    machine.full_cycle()
    machine.teardown()


@pytest.mark.parametrize("kind", ["drop-value", "empty-200", "no-content", "error-200", "wrong-shape"])
def test_an_assignments_answer_without_value_disables_nobody(machine: ConvergenceMachine, kind: str) -> None:
    machine.incremental_cycle()
    machine.graph_fault(fault=f"assignments-{kind}")
    machine.incremental_cycle()
    machine.teardown()


def test_a_transient_404_in_a_webhook_run_deletes_nobody(machine: ConvergenceMachine) -> None:
    machine.incremental_cycle()
    machine.graph_fault(fault="user-404")
    machine.webhook_run(user=0, group=0)
    machine.teardown()


def test_a_killed_cycle_then_a_upn_change_gives_no_second_account(machine: ConvergenceMachine) -> None:
    machine.killed_cycle(writes=2, at="create", full=True)  # two users created, their links not saved
    created = index_of_first_created(machine)
    machine.change_user(user=created, change="upn")
    machine.webhook_run(user=created, group=0)  # a targeted run does not wait for the cycle lease
    machine.teardown()


def test_a_killed_cycle_does_not_block_the_cycles_after_it(machine: ConvergenceMachine) -> None:
    machine.killed_cycle(writes=2, at="write", full=True)
    machine.teardown()  # the clean cycles must start within CONVERGENCE_LEASE_WAIT seconds


def test_an_attribute_change_of_a_user_in_scope_through_a_group_keeps_it_enabled(
    machine: ConvergenceMachine,
) -> None:
    machine.assign_group(group=0, role="MeetingOrganizer")
    machine.unassign_user(user=0)
    machine.membership(group=0, user=0, join=True)
    machine.incremental_cycle()
    machine.change_user(user=0, change="upn")
    machine.incremental_cycle()
    machine.teardown()


def test_a_user_created_by_a_killed_cycle_then_unassigned_is_disabled_and_its_seat_released(
    machine: ConvergenceMachine,
) -> None:
    machine.killed_cycle(writes=2, at="create", full=True)  # created and licensed; the links not saved
    created = index_of_first_created(machine)
    machine.unassign_user(user=created)
    machine.incremental_cycle()
    machine.teardown()  # the oracle: disabled, and no seat held


def test_a_change_of_a_user_assigned_directly_and_through_a_group_keeps_both_seats(
    machine: ConvergenceMachine,
) -> None:
    machine.unassign_user(user=0)
    machine.assign_user(user=0, role="WebinarOrganizer")
    machine.assign_group(group=0, role="MeetingOrganizer")
    machine.membership(group=0, user=0, join=True)
    machine.full_cycle()
    machine.change_user(user=0, change="department")
    machine.incremental_cycle()
    machine.teardown()  # the oracle: the seats of both roles


def test_a_user_created_by_a_killed_cycle_whose_role_loses_its_seat_gives_the_seat_back(
    machine: ConvergenceMachine,
) -> None:
    machine.killed_cycle(writes=2, at="create", full=True)  # created with a seat; the links not saved
    created = index_of_first_created(machine)
    machine.unassign_user(user=created)
    machine.assign_user(user=created, role="Admin")  # still in scope; a role without a seat
    machine.incremental_cycle()
    machine.teardown()  # the oracle: in scope, no seat


def test_a_seat_change_killed_before_its_link_write_is_not_forgotten(machine: ConvergenceMachine) -> None:
    machine.full_cycle()
    for user in (0, 1):
        machine.unassign_user(user=user)
        machine.assign_user(user=user, role="WebinarOrganizer")
    machine.killed_cycle(writes=1, at="write", full=False)  # one seat change landed; no link says so
    for user in (0, 1):
        machine.unassign_user(user=user)
        machine.assign_user(user=user, role="MeetingOrganizer")  # back to the seat the link records
    machine.incremental_cycle()
    machine.teardown()  # the oracle: each holds the MeetingOrganizer seat only
