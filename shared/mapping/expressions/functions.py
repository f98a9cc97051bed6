"""Every function of Entra's expression language: its arity, its static checks (made when the
mapping is loaded) and its behaviour, including how it treats null arguments.

Unless a function is marked `nulls="handle"`, a null argument in a `propagate` position makes
the call null, and a null mapping value leaves the attribute out of the flow (Entra never sends
nulls). Empty arguments (`Switch([x], , ...)`) arrive as MISSING, which is not null.
"""

from __future__ import annotations

import base64
import secrets
import string
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.mapping.errors import ExpressionEvaluationError
from shared.mapping.expressions import dates
from shared.mapping.expressions.parser import Attribute, Call, Empty, Literal
from shared.mapping.expressions.regex_guard import GuardedRegex, RegexRefused, compile_guarded, expand_dotnet
from shared.mapping.expressions.values import (
    MISSING,
    flatten,
    is_null,
    is_null_or_empty,
    single,
    to_bool,
    to_int,
    to_text,
)

if TYPE_CHECKING:
    from shared.mapping.expressions.evaluator import Evaluator

ROLE_TYPE = "WindowsAzureActiveDirectoryRole"
RANDOM_MAX = 256
# The special characters of Windows' password complexity rules (RandomString's alphabet).
SPECIALS = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/"


class IgnoreFlow(Exception):
    """IgnoreFlowIfNullOrEmpty met a null or empty value: the attribute leaves the flow."""


@dataclass(frozen=True)
class Function:
    name: str
    impl: Callable[..., Any]
    min_args: int
    max_args: int | None  # None: any number
    nulls: str = "propagate"  # "propagate" | "handle"
    propagate: tuple[int, ...] | None = None  # positions whose null makes the result null; None = all
    lazy: bool = False  # impl(evaluator, nodes) evaluates its own arguments
    optional: tuple[int, ...] = ()  # positions (besides >= min_args) that may be left empty
    checks: tuple[Callable[[Call], tuple[str, int] | None], ...] = field(default=())
    even: bool = False

    def check_call(self, call: Call) -> tuple[str, int] | None:
        n = len(call.args)
        if n < self.min_args or (self.max_args is not None and n > self.max_args):
            if self.max_args is None:
                expected = f"at least {self.min_args}"
            elif self.min_args == self.max_args:
                expected = str(self.min_args)
            else:
                expected = f"{self.min_args} to {self.max_args}"
            return f"{self.name} takes {expected} argument(s), got {n}", call.pos
        if self.even and n % 2:
            return (
                f"{self.name} takes an even number of arguments (source, default, then key/value pairs), got {n}",
                call.pos,
            )
        for i, arg in enumerate(call.args):
            if isinstance(arg, Empty) and i < self.min_args and i not in self.optional:
                return f"argument {i + 1} of {self.name} cannot be empty", arg.pos
        for check in self.checks:
            problem = check(call)
            if problem:
                return problem
        return None


def _fail(function: str, problem: str) -> ExpressionEvaluationError:
    return ExpressionEvaluationError(problem, function=function)


def _given(value: Any) -> bool:
    return value is not MISSING


# --- static checks on literal arguments ----------------------------------------------------


def _literal(call: Call, index: int) -> Literal | None:
    arg = call.args[index] if index < len(call.args) else None
    return arg if isinstance(arg, Literal) else None


def _check_interval(index: int) -> Callable[[Call], tuple[str, int] | None]:
    def check(call: Call) -> tuple[str, int] | None:
        lit = _literal(call, index)
        if lit is not None and lit.value not in dates.INTERVALS:
            return f"unknown interval {lit.value!r}; use one of {', '.join(dates.INTERVALS)}", lit.pos
        return None

    return check


def _check_regex(index: int) -> Callable[[Call], tuple[str, int] | None]:
    def check(call: Call) -> tuple[str, int] | None:
        lit = _literal(call, index)
        if lit is not None and isinstance(lit.value, str):
            try:
                compile_guarded(lit.value)
            except RegexRefused as e:
                return f"regular expression refused: {e}", lit.pos
        return None

    return check


def _check_formats(call: Call) -> tuple[str, int] | None:
    for index in (2, 3):
        lit = _literal(call, index)
        if lit is not None and isinstance(lit.value, str):
            try:
                dates.format_tokens(lit.value)
            except ValueError as e:
                return f"bad date format {lit.value!r}: {e}", lit.pos
    lit = _literal(call, 1)
    if lit is not None and isinstance(lit.value, str):
        try:
            _styles(lit.value)
        except ExpressionEvaluationError as e:
            return e.problem, lit.pos
    return None


def _check_compare_type(call: Call) -> tuple[str, int] | None:
    lit = _literal(call, 3)
    if lit is not None:
        try:
            _text_compare(lit.value)
        except ExpressionEvaluationError as e:
            return e.problem, lit.pos
    return None


def _check_culture(call: Call) -> tuple[str, int] | None:
    lit = _literal(call, 1)
    if lit is not None and isinstance(lit.value, str):
        try:
            _culture(lit.value, call.name)
        except ExpressionEvaluationError as e:
            return e.problem, lit.pos
    return None


def _check_roles_argument(call: Call) -> tuple[str, int] | None:
    arg = call.args[0] if call.args else None
    if not (isinstance(arg, Attribute) and arg.name == "appRoleAssignments"):
        return f"{call.name} takes the [appRoleAssignments] attribute", arg.pos if arg else call.pos
    return None


def _check_positive(index: int, what: str) -> Callable[[Call], tuple[str, int] | None]:
    def check(call: Call) -> tuple[str, int] | None:
        lit = _literal(call, index)
        if lit is not None and isinstance(lit.value, int) and not isinstance(lit.value, bool) and lit.value < 1:
            return f"{what} starts at 1 (got {lit.value})", lit.pos
        return None

    return check


def _check_random(call: Call) -> tuple[str, int] | None:
    literals = [_literal(call, i) for i in range(5)]
    numbers = [lit.value for lit in literals if lit is not None]
    if len(numbers) == 5 and all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        try:
            _random_plan(numbers, "RandomString")
        except ExpressionEvaluationError as e:
            return e.problem, call.pos
    return None


def _check_nonempty(index: int, what: str) -> Callable[[Call], tuple[str, int] | None]:
    def check(call: Call) -> tuple[str, int] | None:
        lit = _literal(call, index)
        if lit is not None and lit.value == "":
            return f"{what} cannot be empty", lit.pos
        return None

    return check


# --- the functions -------------------------------------------------------------------------


def _append(ev: Evaluator, source: Any, suffix: Any) -> str:
    return to_text(source, "Append", "source") + ("" if is_null(suffix) else to_text(suffix, "Append", "suffix"))


def _role_values(roles: Any) -> list[str]:
    """The role values held; Default Access has no value and is left out."""
    return sorted({r for r in flatten(roles) if isinstance(r, str) and r}) if not is_null(roles) else []


def _app_role_assignments_complex(ev: Evaluator, roles: Any) -> list[dict[str, Any]] | None:
    values = _role_values(roles)
    if not values:
        return None
    return [{"primary": False, "type": ROLE_TYPE, "display": v, "value": v} for v in values]


def _single_app_role_assignment(ev: Evaluator, roles: Any) -> str | None:
    values = _role_values(roles)
    return values[0] if values else None  # several roles: "no guarantee which" in Entra; stable here


def _bit_and(ev: Evaluator, a: Any, b: Any) -> int:
    return to_int(a, "BitAnd", "value1") & to_int(b, "BitAnd", "value2")


def _cbool(ev: Evaluator, value: Any) -> bool:
    return to_bool(value, "CBool", "expression")


def _cdate(ev: Evaluator, value: Any) -> datetime:
    value = single(value, "CDate")
    return dates.to_datetime(value if isinstance(value, datetime) else to_text(value, "CDate"), "CDate")


def _coalesce(ev: Evaluator, *values: Any) -> Any:
    for value in values:
        if not is_null(value):
            return value
    return None


def _base64(ev: Evaluator, value: Any) -> str:
    return base64.b64encode(to_text(value, "ConvertToBase64").encode("utf-16-le", "surrogatepass")).decode("ascii")


def _utf8_hex(ev: Evaluator, value: Any) -> str:
    return to_text(value, "ConvertToUTF8Hex").encode("utf-8", "surrogatepass").hex().upper()


def _count(ev: Evaluator, value: Any) -> int:
    if is_null(value):
        return 0
    return len(value) if isinstance(value, list | tuple) else 1


def _cstr(ev: Evaluator, value: Any) -> str:
    return to_text(value, "CStr", "value")


def _date_arg(value: Any, function: str) -> datetime:
    value = single(value, function)
    return dates.to_datetime(value if isinstance(value, datetime) else to_text(value, function, "date"), function)


def _date_add(ev: Evaluator, interval: Any, amount: Any, value: Any) -> datetime:
    return dates.date_add(
        to_text(interval, "DateAdd", "interval"), to_int(amount, "DateAdd", "value"), _date_arg(value, "DateAdd")
    )


def _date_diff(ev: Evaluator, interval: Any, first: Any, second: Any) -> int:
    return dates.date_diff(
        to_text(interval, "DateDiff", "interval"), _date_arg(first, "DateDiff"), _date_arg(second, "DateDiff")
    )


def _date_from_num(ev: Evaluator, value: Any) -> datetime:
    return dates.from_ad_number(to_int(value, "DateFromNum", "value"))


def _styles(text: str) -> set[str]:
    names = {part.strip() for part in text.replace("|", ",").split(",") if part.strip()}
    unknown = sorted(n for n in names if n.removeprefix("DateTimeStyles.") not in dates.DATETIME_STYLES)
    if unknown:
        raise _fail("FormatDateTime", f"unknown DateTimeStyles value(s): {', '.join(unknown)}")
    return {n.removeprefix("DateTimeStyles.") for n in names}


def _format_date_time(ev: Evaluator, source: Any, styles: Any, in_format: Any, out_format: Any) -> str:
    name = "FormatDateTime"
    style_names = _styles(to_text(styles, name, "dateTimeStyles")) if not is_null(styles) else set()
    source = single(source, name, "source")
    if isinstance(source, datetime):
        value = source
    else:
        value = dates.dotnet_parse(to_text(source, name, "source"), to_text(in_format, name, "inputFormat"), ev.now)
    if "AdjustToUniversal" in style_names:
        value = dates.as_utc(value)
    try:
        return dates.dotnet_format(value, to_text(out_format, name, "outputFormat"))
    except ValueError as e:
        raise _fail(name, f"bad output format: {e}") from None


def _guid(ev: Evaluator) -> str:
    return str(uuid.uuid4())


def _ignore_flow(ev: Evaluator, value: Any) -> Any:
    if is_null_or_empty(value):
        raise IgnoreFlow
    return value


def _iif(ev: Evaluator, nodes: tuple[Any, ...]) -> Any:
    condition = ev.eval(nodes[0])
    if is_null(condition):
        return None  # Entra: "if the source attribute used within IIF is null, the condition check fails"
    chosen = nodes[1] if to_bool(condition, "IIF", "condition") else nodes[2]
    value = ev.eval(chosen)
    return None if value is MISSING else value


def _text_compare(value: Any) -> bool:
    if value is MISSING or value is None or value in ("vbBinaryCompare", 0, "0"):
        return False
    if value in ("vbTextCompare", 1, "1"):
        return True
    raise _fail("InStr", f"compareType must be vbBinaryCompare or vbTextCompare, got {value!r}")


def _instr(ev: Evaluator, haystack: Any, needle: Any, start: Any = MISSING, compare: Any = MISSING) -> int:
    text = to_text(haystack, "InStr", "value1")
    find = to_text(needle, "InStr", "value2")
    begin = 1 if not _given(start) or start is None else to_int(start, "InStr", "start")
    if begin < 1:
        raise _fail("InStr", f"start is 1-based (got {begin})")
    if _text_compare(compare):
        text, find = text.casefold(), find.casefold()
    if begin > len(text) + 1:
        return 0
    return text.find(find, begin - 1) + 1


def _is_null(ev: Evaluator, value: Any) -> bool:
    return is_null(value)


def _is_null_or_empty(ev: Evaluator, value: Any) -> bool:
    return is_null_or_empty(value)


def _is_present(ev: Evaluator, value: Any) -> bool:
    return not is_null_or_empty(value)


def _is_string(ev: Evaluator, value: Any) -> bool:
    return isinstance(value, str)


def _item(ev: Evaluator, values: Any, index: Any) -> Any:
    position = to_int(index, "Item", "index")
    if position < 1:
        raise _fail("Item", f"index is 1-based (got {position})")
    items = flatten(values)
    return items[position - 1] if position <= len(items) else None


def _join(ev: Evaluator, separator: Any, *sources: Any) -> str | None:
    sep = "" if is_null(separator) else to_text(separator, "Join", "separator")
    parts: list[str] = []
    for source in sources:
        for item in flatten(source) if not is_null(source) else []:
            if is_null(item) or item == "":
                continue
            parts.append(to_text(item, "Join", "source"))
    if not parts and all(is_null(s) for s in sources):
        return None
    return sep.join(parts)


def _left(ev: Evaluator, value: Any, count: Any) -> str:
    n = to_int(count, "Left", "numChars")
    if is_null(value):
        return ""
    text = to_text(value, "Left", "string")
    if n < 0:
        return text
    return text[:n]


def _mid(ev: Evaluator, value: Any, start: Any, length: Any) -> str:
    text = to_text(value, "Mid", "source")
    begin = to_int(start, "Mid", "start")
    count = to_int(length, "Mid", "length")
    if begin < 1:
        raise _fail("Mid", f"start is 1-based (got {begin})")
    if count < 0:
        raise _fail("Mid", f"length cannot be negative (got {count})")
    return text[begin - 1 : begin - 1 + count]


# Letters that Unicode does not decompose, mapped as Entra's NormalizeDiacritics table does.
_DIACRITIC_LETTERS = str.maketrans(
    {
        "æ": "ae",
        "Æ": "AE",
        "ø": "oe",
        "Ø": "OE",
        "œ": "oe",
        "Œ": "OE",
        "ß": "ss",
        "ł": "l",
        "Ł": "L",
        "ı": "i",
        "đ": "d",
        "Đ": "D",
    }
)


def normalize_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", stripped).translate(_DIACRITIC_LETTERS)


def _normalize_diacritics(ev: Evaluator, value: Any) -> str:
    return normalize_diacritics(to_text(value, "NormalizeDiacritics", "source"))


def _not(ev: Evaluator, value: Any) -> bool:
    return not to_bool(value, "Not", "source")


def _now(ev: Evaluator) -> datetime:
    return ev.now


def _num_from_date(ev: Evaluator, value: Any) -> int:
    return dates.to_ad_number(_date_arg(value, "NumFromDate"))


# .NET's ToTitleCase separates words at these Unicode categories (Entra's PCase remarks);
# an apostrophe stays inside a word ("o'neil" -> "O'neil"), as in .NET.
_SEPARATOR_CATEGORIES = frozenset(
    {"Zs", "Zl", "Zp", "Cc", "Cf", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So"}
)
_APOSTROPHES = frozenset("'\u2019")


def proper_case(text: str, separators: str | None = None) -> str:
    out: list[str] = []
    at_start = True
    for c in text:
        if separators is not None:
            is_separator = c in separators
        else:
            is_separator = c not in _APOSTROPHES and unicodedata.category(c) in _SEPARATOR_CATEGORIES
        if is_separator:
            out.append(c)
            at_start = True
            continue
        mapped = _char_case(c, upper=at_start)
        out.append(mapped)
        at_start = False
    return "".join(out)


def _pcase(ev: Evaluator, value: Any, separators: Any = MISSING) -> str:
    seps = None if is_null(separators) else to_text(separators, "PCase", "wordSeparators")
    return proper_case(to_text(value, "PCase", "source"), seps)


def _random_plan(values: list[int], function: str) -> tuple[int, int, int, int, int]:
    length, numbers, specials, capitals, lowers = values
    if not 1 <= length <= RANDOM_MAX:
        raise _fail(function, f"length must be 1 to {RANDOM_MAX} (got {length})")
    if min(numbers, specials, capitals, lowers) < 0:
        raise _fail(function, "the minimum counts cannot be negative")
    if numbers + specials + capitals + lowers > length:
        raise _fail(function, f"the minimum counts add up to more than the length {length}")
    return length, numbers, specials, capitals, lowers


def _random_string(ev: Evaluator, *args: Any) -> str:
    name = "RandomString"
    labels = ("Length", "MinimumNumbers", "MinimumSpecialCharacters", "MinimumCapital", "MinimumLowerCase")
    length, numbers, specials, capitals, lowers = _random_plan(
        [to_int(a, name, label) for a, label in zip(args[:5], labels, strict=True)], name
    )
    avoid = set(to_text(args[5], name, "CharactersToAvoid")) if len(args) > 5 and not is_null(args[5]) else set()
    pools = [
        [c for c in string.digits if c not in avoid],
        [c for c in SPECIALS if c not in avoid],
        [c for c in string.ascii_uppercase if c not in avoid],
        [c for c in string.ascii_lowercase if c not in avoid],
    ]
    chosen: list[str] = []
    for pool, count in zip(pools, (numbers, specials, capitals, lowers), strict=True):
        if count and not pool:
            raise _fail(name, "CharactersToAvoid leaves no character for a required class")
        chosen.extend(secrets.choice(pool) for _ in range(count))
    everything = [c for pool in pools for c in pool]
    if not everything:
        raise _fail(name, "CharactersToAvoid leaves no character at all")
    chosen.extend(secrets.choice(everything) for _ in range(length - len(chosen)))
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)


def _redact(ev: Evaluator, value: Any) -> Any:
    ev.redacted = True
    return value


def _remove_duplicates(ev: Evaluator, values: Any) -> list[Any]:
    out: list[Any] = []
    for item in flatten(values):
        if item not in out:
            out.append(item)
    return out


def _regex(pattern: str) -> GuardedRegex:
    try:
        return compile_guarded(pattern)
    except RegexRefused as e:
        raise _fail("Replace", f"regular expression refused: {e}") from None


def _replace(
    ev: Evaluator,
    source: Any,
    old: Any = MISSING,
    pattern: Any = MISSING,
    group: Any = MISSING,
    replacement: Any = MISSING,
    replacement_attribute: Any = MISSING,
    template: Any = MISSING,
) -> Any:
    """Replace's documented forms, chosen by which parameters are given (see docs/mappings.md)."""
    has_old, has_pattern, has_group = _given(old), _given(pattern), _given(group)
    has_replacement = _given(replacement)
    if has_pattern and has_group and _given(replacement_attribute) and not has_replacement:
        return _replace_from_attribute(source, pattern, group, replacement_attribute)
    if is_null(source):
        return None
    subject = _replace_text(source, "source")
    if has_old and _given(template) and not has_pattern:
        return _replace_in_template(subject, old, template)
    if has_old and not has_pattern:
        if not has_replacement:
            raise _fail(_REPLACE, "oldValue needs a replacementValue or a template")
        old_text = _replace_text(old, "oldValue") if not is_null(old) else ""
        new_text = "" if is_null(replacement) else _replace_text(replacement, "replacementValue")
        return subject.replace(old_text, new_text) if old_text else subject
    if has_pattern:
        regex = _regex(_replace_text(pattern, "regexPattern"))
        if not has_replacement:
            raise _fail(
                _REPLACE, "regexPattern needs a replacementValue (or a regexGroupName and replacementAttributeName)"
            )
        new_text = "" if is_null(replacement) else _replace_text(replacement, "replacementValue")
        if has_group:
            return _replace_group(subject, regex, _replace_text(group, "regexGroupName"), new_text)
        return _guarded(lambda: regex.sub(lambda m: expand_dotnet(m, new_text), subject))
    raise _fail(_REPLACE, "give oldValue or regexPattern (see the documented forms)")


_REPLACE = "Replace"


def _replace_text(value: Any, what: str) -> str:
    return to_text(value, _REPLACE, what)


def _guarded(run: Callable[[], Any]) -> Any:
    """`run()`, with the regular expression guard's refusal as Replace's error."""
    try:
        return run()
    except RegexRefused as e:
        raise _fail(_REPLACE, str(e)) from None


def _replace_from_attribute(source: Any, pattern: Any, group: Any, replacement_attribute: Any) -> Any:
    """The source when it has a value; else the named group of the pattern's first match in the
    replacement attribute."""
    if not is_null_or_empty(source):
        return source
    if is_null_or_empty(replacement_attribute):
        return None
    subject = _replace_text(replacement_attribute, "replacementAttributeName")
    regex = _regex(_replace_text(pattern, "regexPattern"))
    match = _guarded(lambda: regex.search(subject))
    group_name = _replace_text(group, "regexGroupName")
    if match is None:
        return None
    try:
        return match.group(group_name)
    except IndexError:
        raise _fail(_REPLACE, f"the pattern has no group named {group_name!r}") from None


def _replace_in_template(subject: str, old: Any, template: Any) -> str | None:
    """The template with oldValue replaced by the source."""
    if is_null(template) or is_null(old):
        return None
    old_text = _replace_text(old, "oldValue")
    return _replace_text(template, "template").replace(old_text, subject) if old_text else None


def _replace_group(subject: str, regex: GuardedRegex, group_name: str, new_text: str) -> str:
    """Only the named group of each match replaced."""
    if group_name not in regex.compiled.groupindex:
        raise _fail(_REPLACE, f"the pattern has no group named {group_name!r}")
    matches = _guarded(lambda: regex.finditer(subject))
    out, last = [], 0
    for m in matches:
        start, end = m.span(group_name)
        if start < 0 or start < last:
            continue
        out.append(subject[last:start])
        out.append(new_text)
        last = end
    out.append(subject[last:])
    return "".join(out)


def _select_unique_value(ev: Evaluator, nodes: tuple[Any, ...]) -> Any:
    candidates: list[str] = []
    for node in nodes:
        value = ev.eval(node)
        if is_null_or_empty(value):
            continue
        candidate = to_text(value, "SelectUniqueValue", "rule")
        if ev.value_in_use is None or not ev.value_in_use(candidate):
            return candidate
        candidates.append(candidate)
    if candidates:
        raise _fail("SelectUniqueValue", f"every candidate is already taken in the target: {', '.join(candidates)}")
    return None


def _split(ev: Evaluator, value: Any, delimiter: Any) -> list[str]:
    delim = to_text(delimiter, "Split", "delimiter")
    if not delim:
        raise _fail("Split", "the delimiter cannot be empty")
    return to_text(value, "Split", "source").split(delim)


def _strip_spaces(ev: Evaluator, value: Any) -> str:
    return to_text(value, "StripSpaces", "source").replace(" ", "")


def _switch(ev: Evaluator, nodes: tuple[Any, ...]) -> Any:
    source = ev.eval(nodes[0])
    # A null source matches the key "" (Entra's advice: "use a literal empty string as a key").
    key_text = "" if is_null(source) else to_text(source, "Switch", "source")
    for i in range(2, len(nodes) - 1, 2):
        key = ev.eval(nodes[i])
        if ("" if is_null(key) else to_text(key, "Switch", "key")) == key_text:
            value = ev.eval(nodes[i + 1])
            return None if value is MISSING else value
    default = ev.eval(nodes[1])
    return None if default is MISSING else default


def _culture(value: Any, function: str) -> str:
    if is_null(value):
        return ""
    text = to_text(value, function, "culture")
    parts = text.split("-")
    if not (2 <= len(parts[0]) <= 3 and parts[0].isalpha() and all(p.isalnum() and 1 <= len(p) <= 8 for p in parts)):
        raise _fail(function, f"{text!r} is not a culture name such as en-US")
    return parts[0].lower()


def _char_case(c: str, *, upper: bool, language: str = "") -> str:
    if language in ("tr", "az"):
        special = {"i": "İ", "ı": "I"} if upper else {"I": "ı", "İ": "i"}
        if c in special:
            return special[c]
    mapped = c.upper() if upper else c.lower()
    return mapped if len(mapped) == 1 else c  # .NET maps one character to one character


def _to_lower(ev: Evaluator, value: Any, culture: Any = MISSING) -> str:
    language = _culture(culture, "ToLower")
    return "".join(_char_case(c, upper=False, language=language) for c in to_text(value, "ToLower", "source"))


def _to_upper(ev: Evaluator, value: Any, culture: Any = MISSING) -> str:
    language = _culture(culture, "ToUpper")
    return "".join(_char_case(c, upper=True, language=language) for c in to_text(value, "ToUpper", "source"))


def _word(ev: Evaluator, value: Any, number: Any, delimiters: Any) -> str:
    n = to_int(number, "Word", "wordNumber")
    if is_null(value) or n < 1:
        return ""
    delims = set("" if is_null(delimiters) else to_text(delimiters, "Word", "delimiters"))
    words: list[str] = []
    current: list[str] = []
    for c in to_text(value, "Word", "string"):
        if c in delims:
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(c)
    if current:
        words.append("".join(current))
    return words[n - 1] if n <= len(words) else ""


_ROLES = (_check_roles_argument,)
FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("Append", _append, 2, 2, propagate=(0,)),
        Function("AppRoleAssignmentsComplex", _app_role_assignments_complex, 1, 1, nulls="handle", checks=_ROLES),
        Function(
            "AssertiveAppRoleAssignmentsComplex", _app_role_assignments_complex, 1, 1, nulls="handle", checks=_ROLES
        ),
        Function("BitAnd", _bit_and, 2, 2),
        Function("CBool", _cbool, 1, 1),
        Function("CDate", _cdate, 1, 1),
        Function("Coalesce", _coalesce, 1, None, nulls="handle", optional=(0,)),
        Function("ConvertToBase64", _base64, 1, 1),
        Function("ConvertToUTF8Hex", _utf8_hex, 1, 1),
        Function("Count", _count, 1, 1, nulls="handle"),
        Function("CStr", _cstr, 1, 1),
        Function("DateAdd", _date_add, 3, 3, checks=(_check_interval(0),)),
        Function("DateDiff", _date_diff, 3, 3, checks=(_check_interval(0),)),
        Function("DateFromNum", _date_from_num, 1, 1),
        Function("FormatDateTime", _format_date_time, 4, 4, propagate=(0,), optional=(1,), checks=(_check_formats,)),
        Function("Guid", _guid, 0, 0),
        Function("IgnoreFlowIfNullOrEmpty", _ignore_flow, 1, 1, nulls="handle"),
        Function("IIF", _iif, 3, 3, lazy=True, optional=(1, 2)),
        Function("InStr", _instr, 2, 4, propagate=(0, 1), checks=(_check_compare_type, _check_positive(2, "start"))),
        Function("IsNull", _is_null, 1, 1, nulls="handle"),
        Function("IsNullOrEmpty", _is_null_or_empty, 1, 1, nulls="handle"),
        Function("IsPresent", _is_present, 1, 1, nulls="handle"),
        Function("IsString", _is_string, 1, 1, nulls="handle"),
        Function("Item", _item, 2, 2, checks=(_check_positive(1, "the index"),)),
        Function("Join", _join, 2, None, nulls="handle", optional=(1,)),
        Function("Left", _left, 2, 2, propagate=(1,)),
        Function("Mid", _mid, 3, 3, checks=(_check_positive(1, "start"),)),
        Function("NormalizeDiacritics", _normalize_diacritics, 1, 1),
        Function("Not", _not, 1, 1),
        Function("Now", _now, 0, 0),
        Function("NumFromDate", _num_from_date, 1, 1),
        Function("PCase", _pcase, 1, 2, propagate=(0,)),
        Function("RandomString", _random_string, 5, 6, checks=(_check_random,)),
        Function("Redact", _redact, 1, 1),
        Function("RemoveDuplicates", _remove_duplicates, 1, 1),
        Function(
            "Replace",
            _replace,
            7,
            7,
            nulls="handle",
            optional=(1, 2, 3, 4, 5, 6),
            checks=(_check_regex(2),),
        ),
        Function("SelectUniqueValue", _select_unique_value, 2, None, lazy=True),
        Function("SingleAppRoleAssignment", _single_app_role_assignment, 1, 1, nulls="handle", checks=_ROLES),
        Function("Split", _split, 2, 2, checks=(_check_nonempty(1, "the delimiter"),)),
        Function("StripSpaces", _strip_spaces, 1, 1),
        Function("Switch", _switch, 4, None, lazy=True, optional=(1,), even=True),
        Function("ToLower", _to_lower, 1, 2, propagate=(0,), checks=(_check_culture,)),
        Function("ToUpper", _to_upper, 1, 2, propagate=(0,), checks=(_check_culture,)),
        Function("Word", _word, 3, 3, propagate=(1,)),
    )
}
