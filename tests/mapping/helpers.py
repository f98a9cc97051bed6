"""Builders shared by the mapping tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.mapping import SourceContext, evaluate_expression

NOW = datetime(2021, 8, 25, 17, 41, 18, tzinfo=UTC)


def ctx(
    *,
    roles: tuple[str, ...] = (),
    soft_deleted: bool = False,
    creating: bool = False,
    object_id: str = "00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
    **attributes: Any,
) -> SourceContext:
    return SourceContext(
        attributes=dict(attributes),
        object_id=object_id,
        is_soft_deleted=soft_deleted,
        app_roles=roles,
        creating=creating,
        now=NOW,
    )


def run(expression: str, **attributes: Any) -> Any:
    return evaluate_expression(expression, ctx(**attributes))
