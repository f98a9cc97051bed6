"""Small functions: no function of shared/ has a cyclomatic complexity above 20, as radon counts
it (every branch, loop, boolean operator and comprehension condition adds one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Function

SHARED = Path(__file__).resolve().parents[2] / "shared"
LIMIT = 20


def functions(code: str) -> Iterator[Function]:
    """Every function, method and nested function of `code` (radon counts a nested function
    apart from the function around it)."""
    stack = [block for block in cc_visit(code) if isinstance(block, Function)]
    while stack:
        function = stack.pop()
        yield function
        stack.extend(function.closures)


def test_radon_counts_every_kind_of_branch() -> None:
    code = (
        "def f(x, y):\n"
        "    if x and y:\n"  # if: +1, and: +1
        "        return [i for i in x if i]\n"  # for: +1, if: +1
        "    def inner():\n"
        "        while y: pass\n"  # counted apart: inner is 2
        "    return 0\n"
    )
    found = {f.name: f.complexity for f in functions(code)}
    assert found == {"f": 5, "inner": 2}


def test_no_function_in_shared_is_more_complex_than_the_limit() -> None:
    too_complex = sorted(
        f"{path.relative_to(SHARED.parent)}:{f.lineno} {f.fullname} ({f.complexity})"
        for path in sorted(SHARED.rglob("*.py"))
        for f in functions(path.read_text(encoding="utf-8"))
        if f.complexity > LIMIT
    )
    assert too_complex == [], "split these into smaller named functions:\n" + "\n".join(too_complex)
