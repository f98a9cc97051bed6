"""The emulators the convergence suite shares between its examples (each example resets them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from emulators.goto import GoToEmulator
from emulators.graph import GraphEmulator


@dataclass
class Suite:
    """What every example shares: the emulators (reset per example) and Azurite."""

    graph: GraphEmulator
    goto: GoToEmulator
    connection_string: str


@pytest.fixture
def suite(
    storage_connection_string: str,
    graph_emulator_factory: Callable[..., GraphEmulator],
    make_goto_emulator: Callable[..., GoToEmulator],
) -> Suite:
    """Lists come in pages of 8 and delta rounds in pages of 5, so small tenants have several
    pages; GoTo stores `active`, so a disable can be seen."""
    graph = graph_emulator_factory(users=0, groups=0, seed=7, page_size_cap=8, delta_page_size=5)
    goto = make_goto_emulator(rate_limit=0, active="honour")
    return Suite(graph, goto, storage_connection_string)
