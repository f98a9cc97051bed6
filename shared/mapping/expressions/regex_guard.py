"""Regular expressions from mappings and scoping filters (.NET syntax) run on Python's `re`,
behind a guard against catastrophic backtracking.

`re` cannot be interrupted, so the guard bounds the work before matching instead:
  * the pattern is at most 1,000 characters and compiles;
  * backreferences and conditional groups are refused;
  * a repeated part (`(...)*`, `(...){2,}`, `(...){3}`) may not itself contain a quantifier of
    variable length or an alternation: the nested forms behind exponential backtracking;
  * what is left backtracks at most polynomially: about (n+1) × Π(choices of each variable
    quantifier) × Π(alternatives), n being the subject's length. That product must stay under
    a budget (50 million steps, well under a second); a subject too long for the pattern is refused,
    and no subject may exceed 4,096 characters.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

try:  # CPython's own pattern parser (private, stable in 3.11); without it, fail closed
    import re._parser as _sre_parse
    from re._constants import MAXREPEAT
except ImportError:  # pragma: no cover
    _sre_parse = None
    MAXREPEAT = None

MAX_PATTERN = 1_000
MAX_SUBJECT = 4_096
BUDGET = 50_000_000
MAX_ALTERNATIVES = 10_000


class RegexRefused(ValueError):
    """A pattern or subject the guard will not run."""


@dataclass(frozen=True)
class GuardedRegex:
    source: str  # as written, .NET syntax
    compiled: re.Pattern[str]
    choices: tuple[int, ...]  # per variable-length quantifier: max - min + 1 (MAXREPEAT = unbounded)
    alternatives: int

    def cost(self, n: int) -> int:
        total = (n + 1) * self.alternatives
        for c in self.choices:
            total *= min(n + 1, c)
            if total > BUDGET:
                break
        return total

    def check_subject(self, subject: str) -> None:
        if len(subject) > MAX_SUBJECT:
            raise RegexRefused(
                f"the value is {len(subject)} characters; regular expressions run on at most {MAX_SUBJECT}"
            )
        if self.cost(len(subject)) > BUDGET:
            raise RegexRefused(
                f"the pattern has {len(self.choices)} variable-length quantifiers; on a value of {len(subject)} "
                "characters it could backtrack too long (simplify the pattern)"
            )

    def search(self, subject: str) -> re.Match[str] | None:
        self.check_subject(subject)
        return self.compiled.search(subject)

    def finditer(self, subject: str) -> list[re.Match[str]]:
        self.check_subject(subject)
        return list(self.compiled.finditer(subject))

    def sub(self, replace: Callable[[re.Match[str]], str], subject: str) -> str:
        self.check_subject(subject)
        return self.compiled.sub(replace, subject)


def translate(pattern: str) -> str:
    """.NET pattern syntax -> Python's: named groups `(?<name>...)` / `(?'name'...)`."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if pattern.startswith("k<", i + 1) or pattern.startswith("k'", i + 1):
                raise RegexRefused("backreferences (\\k<name>) are not supported")
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading ']' is a literal
                out.append("\\]")
                i += 1
            continue
        if pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
            out.append("(?P<")
            i += 3
            continue
        if pattern.startswith("(?'", i):
            end = pattern.find("'", i + 3)
            if end < 0:
                raise RegexRefused("unterminated group name")
            out.append(f"(?P<{pattern[i + 3 : end]}>")
            i = end + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


@dataclass
class _Shape:
    choices: list[int]
    alternatives: int = 1


_BACKREFERENCES = frozenset(
    {"GROUPREF", "GROUPREF_EXISTS", "GROUPREF_IGNORE", "GROUPREF_LOC_IGNORE", "GROUPREF_UNI_IGNORE"}
)
_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})


def _analyse(items: Any, shape: _Shape, inside_repeat: bool) -> bool:
    """Walks the parsed pattern; returns whether it holds a variable quantifier or an alternation."""
    risky = False
    for op, av in items:  # a SubPattern: (opcode, argument) pairs
        risky = _analyse_item(str(op), av, shape, inside_repeat) or risky
    return risky


def _analyse_item(name: str, av: Any, shape: _Shape, inside_repeat: bool) -> bool:
    if name in _BACKREFERENCES:
        raise RegexRefused("backreferences and conditional groups are not supported")
    if name in _REPEATS:
        return _analyse_repeat(av, shape, inside_repeat)
    if name == "BRANCH":
        return _analyse_branch(av[1], shape, inside_repeat)
    if name == "SUBPATTERN":
        return _analyse(av[-1], shape, inside_repeat)
    if name in ("ASSERT", "ASSERT_NOT"):
        return _analyse(av[1], shape, inside_repeat)
    if name == "ATOMIC_GROUP":
        return _analyse(av, shape, inside_repeat)
    return False


def _analyse_repeat(av: Any, shape: _Shape, inside_repeat: bool) -> bool:
    low, high, body = av
    variable = low != high
    repeated = high == MAXREPEAT or high > 1
    inner = _analyse(body, shape, inside_repeat or repeated)
    if repeated and inner:
        raise RegexRefused(
            "a repeated group contains another variable quantifier or an alternation "
            "(nested quantifiers can backtrack for ever)"
        )
    if variable:
        shape.choices.append(MAX_SUBJECT + 1 if high == MAXREPEAT else high - low + 1)
    return variable or inner


def _analyse_branch(branches: Any, shape: _Shape, inside_repeat: bool) -> bool:
    if inside_repeat:
        raise RegexRefused("a repeated group contains an alternation (use a character class such as [ab] instead)")
    shape.alternatives *= len(branches)
    if shape.alternatives > MAX_ALTERNATIVES:
        raise RegexRefused("too many alternations")
    for branch in branches:
        _analyse(branch, shape, inside_repeat)
    return True


@lru_cache(maxsize=512)
def compile_guarded(pattern: str, ignore_case: bool = False) -> GuardedRegex:
    """Compiles a .NET-syntax pattern behind the guard; raises RegexRefused with the reason."""
    if len(pattern) > MAX_PATTERN:
        raise RegexRefused(f"the pattern is {len(pattern)} characters; at most {MAX_PATTERN}")
    if _sre_parse is None:  # pragma: no cover
        raise RegexRefused("regular expressions are unavailable on this Python")
    translated = translate(pattern)
    flags = re.IGNORECASE if ignore_case else 0
    try:
        with warnings.catch_warnings():  # "possible nested set" and the like: not the admin's concern
            warnings.simplefilter("ignore")
            compiled = re.compile(translated, flags)
            parsed = _sre_parse.parse(translated, flags)
    except (re.error, OverflowError, RecursionError, ValueError) as e:
        raise RegexRefused(f"not a valid regular expression: {e}") from None
    shape = _Shape(choices=[])
    try:
        _analyse(parsed, shape, inside_repeat=False)
    except RecursionError:
        raise RegexRefused("the pattern nests too deeply") from None
    return GuardedRegex(pattern, compiled, tuple(shape.choices), shape.alternatives)


def expand_dotnet(match: re.Match[str], replacement: str) -> str:
    """A .NET replacement string for one match: `$1`, `${name}`, `$$`, `$&`, `` $` ``, `$'`."""
    out: list[str] = []
    i, n = 0, len(replacement)
    while i < n:
        c = replacement[i]
        if c != "$" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = replacement[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "&":
            out.append(match.group(0))
            i += 2
        elif nxt == "`":
            out.append(match.string[: match.start()])
            i += 2
        elif nxt == "'":
            out.append(match.string[match.end() :])
            i += 2
        elif nxt == "{":
            end = replacement.find("}", i + 2)
            name = replacement[i + 2 : end] if end > 0 else ""
            group = _group(match, name)
            if end < 0 or group is None:
                out.append(c)
                i += 1
            else:
                out.append(group)
                i = end + 1
        elif nxt.isdigit():
            j = i + 1
            while j < n and replacement[j].isdigit() and j - i <= 3:
                j += 1
            # the longest number that names a group, as .NET does
            while j > i + 1 and _group(match, replacement[i + 1 : j]) is None:
                j -= 1
            group = _group(match, replacement[i + 1 : j]) if j > i + 1 else None
            if group is None:
                out.append(c)
                i += 1
            else:
                out.append(group)
                i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _group(match: re.Match[str], name: str) -> str | None:
    try:
        key: int | str = int(name) if name.isdigit() else name
        if isinstance(key, int) and key > (match.re.groups or 0):
            return None
        return match.group(key) or ""
    except (IndexError, ValueError):
        return None
