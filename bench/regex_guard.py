"""How long the regex guard lets a regular expression run, at worst (figures go to
docs/benchmarks.md; nothing is asserted).

For each pattern of the shapes that backtrack polynomially (the guard refuses the exponential
ones outright), the longest subject the guard's cost budget accepts is matched against a string
that makes the search fail, and the time is taken.

    python bench/regex_guard.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.mapping.expressions.regex_guard import BUDGET, MAX_SUBJECT, compile_guarded

PATTERNS = ["(.*)(.*)x", ".*.*.*x", r"\d*\d*\d*\d*x", "(?:.*){1}(a|b|c)(d|e).*.*x", "[a-z]+@[a-z]+\\.com"]


def main() -> int:
    print("| pattern | longest accepted subject | worst search |")
    print("|---|---|---|")
    for pattern in PATTERNS:
        regex = compile_guarded(pattern)
        n = max(length for length in range(1, MAX_SUBJECT + 1) if regex.cost(length) <= BUDGET)
        started = time.perf_counter()
        regex.search("a" * n)
        elapsed = time.perf_counter() - started
        shown = pattern.replace("|", "\\|")  # a Markdown table cell
        print(f"| `{shown}` | {n} | {elapsed * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
