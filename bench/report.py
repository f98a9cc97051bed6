"""How the bench scripts print their figures: a Markdown table, as docs/benchmarks.md shows them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def markdown_table(rows: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None) -> str:
    """The rows as a Markdown table with the columns `keys` (by default the first row's keys)."""
    if not rows:
        return ""
    columns = list(keys if keys is not None else rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in columns) + " |" for row in rows]
    return "\n".join(lines)
