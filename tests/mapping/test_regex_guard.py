"""The guard in front of Python's `re`: .NET syntax in, catastrophic backtracking kept out."""

from __future__ import annotations

import re

import pytest

from shared.mapping.expressions.regex_guard import (
    BUDGET,
    MAX_SUBJECT,
    RegexRefused,
    compile_guarded,
    expand_dotnet,
    translate,
)


@pytest.mark.parametrize(
    "pattern",
    [
        "(a+)+$",
        "(a*)*b",
        "(a|a)*c",
        "(a|aa)+$",
        r"(\w+\s?)+$",
        "(.*a){12}",
        r"^(([a-z])+.)+[A-Z]([a-z])+$",
        r"(a)\1",
        r"(?<x>a)\k<x>",
        "(?(1)a|b)",
        "(?:ab|cd){2,}",
        "x" * 1001,
    ],
)
def test_patterns_that_can_backtrack_for_ever_are_refused(pattern: str) -> None:
    with pytest.raises(RegexRefused):
        compile_guarded(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        r"\+(?<isdCode>\d* )(?<phoneNumber>\d{10})",
        r"\+(?<isdCode>\d* )(?<phoneNumber>.*)",
        r"[()\s-]+",
        r"(?<streetNumber>^\d*)",
        r"(?<Suffix>@(.)*)",
        "[a-zA-Z_]*",
        r".*\@domain.com",
        "([1-9][0-9])",
        "(1[0-9][0-9][0-9][0-9][0-9][0-9])",
        r"^(?<first>\w+)\.(?<last>\w+)@(?<domain>.+)$",
        "^(Sales|Support|Marketing)$",
        r"(?<=@)contoso\.com$",
        r"(?:\d{3}-){2}\d{4}",
    ],
)
def test_the_documented_and_everyday_patterns_are_accepted(pattern: str) -> None:
    compile_guarded(pattern).search("+91 9998887777 john.doe@contoso.com 545 Tremont")


def test_polynomial_patterns_run_only_on_values_short_enough() -> None:
    regex = compile_guarded(".*.*.*.*x")
    assert regex.search("a" * 20 + "x")
    with pytest.raises(RegexRefused, match="could backtrack too long"):
        regex.search("a" * 200)
    with pytest.raises(RegexRefused, match=f"at most {MAX_SUBJECT}"):
        compile_guarded("a").search("a" * (MAX_SUBJECT + 1))


@pytest.mark.parametrize("pattern", ["(.*)(.*)x", ".*.*.*x", r"\d*\d*\d*\d*x", "(?:.*){1}(a|b|c)(d|e).*.*x"])
def test_the_worst_accepted_case_runs_to_its_answer(pattern: str) -> None:
    # How long it takes is measured by bench/regex_guard.py (docs/benchmarks.md), not asserted.
    regex = compile_guarded(pattern)
    n = max(length for length in range(1, MAX_SUBJECT + 1) if regex.cost(length) <= BUDGET)
    assert regex.search("a" * n) is None


def test_dotnet_named_groups_become_pythons() -> None:
    assert translate(r"(?<isd>\d+)(?'rest'.*)") == r"(?P<isd>\d+)(?P<rest>.*)"
    assert translate("(?<=a)(?<!b)") == "(?<=a)(?<!b)"
    assert translate(r"[(?<x>]\(?<y>") == r"[(?<x>]\(?<y>"
    assert translate("[]a]") == r"[\]a]"


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        ("${phone}", "9998887777"),
        ("$2-$1", "9998887777-91"),
        ("$$1", "$1"),
        ("[$&]", "[+91 9998887777]"),
        ("${nope}", "${nope}"),
        ("$9", "$9"),
        ("$", "$"),
    ],
)
def test_dotnet_replacement_strings(replacement: str, expected: str) -> None:
    match = re.search(r"\+(?P<isd>\d+) (?P<phone>\d+)", "+91 9998887777")
    assert match is not None
    assert expand_dotnet(match, replacement) == expected
