"""OData query options as Graph reads them: normalising ``$`` options, ``$top``/``$select``
validation, a small ``$filter`` language, and the signed opaque tokens behind
``$skiptoken``/``$deltatoken``. Pure: no HTTP, no tenant state."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import GraphError, bad_request, unsupported_query

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EXTENSION_RE = re.compile(r"^extension_[0-9a-fA-F]{32}_\w+$")


def is_guid(value: str) -> bool:
    return bool(GUID_RE.match(value))


def normalize_query(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """System query options are case-insensitive and the ``$`` is optional in v1.0; the first
    occurrence of a repeated option wins."""
    out: dict[str, str] = {}
    for key, value in pairs:
        name = key.lower()
        if not name.startswith("$") and name in _SYSTEM_OPTIONS:
            name = "$" + name
        out.setdefault(name, value)
    return out


_SYSTEM_OPTIONS = {
    "select",
    "filter",
    "top",
    "skip",
    "skiptoken",
    "deltatoken",
    "count",
    "orderby",
    "expand",
    "search",
    "format",
}


def parse_top(params: Mapping[str, str], default: int, maximum: int) -> int:
    raw = params.get("$top")
    if raw is None:
        return default
    try:
        top = int(raw)
    except ValueError:
        raise bad_request(f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.") from None
    if not 1 <= top <= maximum:
        raise bad_request(f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.")
    return top


def parse_select(raw: str | None, catalog: Mapping[str, str], type_name: str) -> list[str] | None:
    """``$select`` as canonical property names (case-insensitive, like Graph), ``id`` first;
    an unknown property is Graph's 400. ``catalog`` maps lower-case name -> canonical name."""
    if raw is None:
        return None
    names: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        canonical = catalog.get(name.lower())
        if canonical is None and EXTENSION_RE.match(name):
            canonical = name
        if canonical is None:
            raise bad_request(f"Could not find a property named '{name}' on type '{type_name}'.")
        if canonical not in names:
            names.append(canonical)
    if not names:
        raise bad_request("Invalid $select: no properties given.")
    if "id" not in names:
        names.insert(0, "id")
    return names


def require_no(params: Mapping[str, str], options: Iterable[str], where: str) -> None:
    for option in options:
        if option in params:
            raise unsupported_query(f"The query option '{option}' is not supported for {where}.")


# ---------------------------------------------------------------------------------------------
# $filter: eq/ne/startswith/endswith/in, and/or/not, parentheses. Enough for the lookups an app
# makes (userPrincipalName eq '...', startswith(principalDisplayName,'...'), resourceId eq GUID).

Getter = Callable[[str], Any]
Predicate = Callable[[Getter], bool]

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),])|(?P<word>[A-Za-z_][\w/.@]*))"
)


@dataclass(frozen=True)
class Comparison:
    """One leaf of a parsed filter; kept so callers can inspect simple filters (delta ids)."""

    op: str
    prop: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class BoolNode:
    op: str  # "and" | "or" | "not"
    children: tuple[Any, ...]


FilterNode = Comparison | BoolNode


def _tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            raise bad_request(f"Invalid filter clause: syntax error at position {pos} in '{text}'.")
        pos = match.end()
        if match.group("str") is not None:
            tokens.append(("lit", match.group("str")[1:-1].replace("''", "'")))
        elif match.group("guid") is not None:
            tokens.append(("lit", match.group("guid").lower()))
        elif match.group("num") is not None:
            num = match.group("num")
            tokens.append(("lit", float(num) if "." in num else int(num)))
        elif match.group("punct") is not None:
            tokens.append((match.group("punct"), None))
        else:
            word = match.group("word")
            low = word.lower()
            if low in ("true", "false"):
                tokens.append(("lit", low == "true"))
            elif low == "null":
                tokens.append(("lit", None))
            else:
                tokens.append(("word", word))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


class _Parser:
    def __init__(self, text: str, props: Mapping[str, str], type_name: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.props = props
        self.type_name = type_name

    def error(self) -> GraphError:
        return bad_request(f"Invalid filter clause: '{self.text}'.")

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, Any]:
        token = self.peek()
        if token is None:
            raise self.error()
        self.i += 1
        return token

    def expect(self, kind: str) -> None:
        if self.take()[0] != kind:
            raise self.error()

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].lower() == word:
            self.i += 1
            return True
        return False

    def parse(self) -> FilterNode:
        node = self.parse_or()
        if self.peek() is not None:
            raise self.error()
        return node

    def parse_or(self) -> FilterNode:
        children = [self.parse_and()]
        while self.keyword("or"):
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else BoolNode("or", tuple(children))

    def parse_and(self) -> FilterNode:
        children = [self.parse_atom()]
        while self.keyword("and"):
            children.append(self.parse_atom())
        return children[0] if len(children) == 1 else BoolNode("and", tuple(children))

    def prop(self, word: str) -> str:
        canonical = self.props.get(word.lower())
        if canonical is None:
            raise bad_request(f"Could not find a property named '{word}' on type '{self.type_name}'.")
        return canonical

    def literal(self) -> Any:
        kind, value = self.take()
        if kind != "lit":
            raise self.error()
        return value

    def parse_atom(self) -> FilterNode:
        token = self.take()
        if token[0] == "(":
            node = self.parse_or()
            self.expect(")")
            return node
        if token[0] != "word":
            raise self.error()
        word = token[1]
        low = word.lower()
        if low == "not":
            return BoolNode("not", (self.parse_atom(),))
        if low in ("startswith", "endswith"):
            self.expect("(")
            kind, name = self.take()
            if kind != "word":
                raise self.error()
            prop = self.prop(name)
            self.expect(",")
            value = self.literal()
            self.expect(")")
            return Comparison(low, prop, (value,))
        prop = self.prop(word)
        op_token = self.take()
        if op_token[0] != "word":
            raise self.error()
        op = op_token[1].lower()
        if op in ("eq", "ne"):
            return Comparison(op, prop, (self.literal(),))
        if op == "in":
            self.expect("(")
            values = [self.literal()]
            while self.peek() and self.peek()[0] == ",":  # type: ignore[index]
                self.take()
                values.append(self.literal())
            self.expect(")")
            return Comparison("in", prop, tuple(values))
        raise unsupported_query(f"Unsupported or invalid query filter clause specified for property '{prop}'.")


def parse_filter(text: str, props: Mapping[str, str], type_name: str) -> FilterNode:
    """Parses ``$filter``; ``props`` maps lower-case property names the collection supports for
    filtering to their canonical names (anything else is a 400, as in Graph)."""
    return _Parser(text, props, type_name).parse()


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def compile_filter(node: FilterNode) -> Predicate:
    """Directory string comparisons are case-insensitive."""
    if isinstance(node, BoolNode):
        parts = [compile_filter(c) for c in node.children]
        if node.op == "and":
            return lambda get: all(p(get) for p in parts)
        if node.op == "or":
            return lambda get: any(p(get) for p in parts)
        return lambda get: not parts[0](get)
    prop, values = node.prop, tuple(_fold(v) for v in node.values)
    if node.op == "eq":
        return lambda get: _fold(get(prop)) == values[0]
    if node.op == "ne":
        return lambda get: _fold(get(prop)) != values[0]
    if node.op == "in":
        return lambda get: _fold(get(prop)) in values
    if node.op == "startswith":
        return lambda get: isinstance(get(prop), str) and _fold(get(prop)).startswith(str(values[0]))
    return lambda get: isinstance(get(prop), str) and _fold(get(prop)).endswith(str(values[0]))


def is_advanced(node: FilterNode) -> bool:
    """``ne``, ``not`` and ``endswith`` are advanced queries on directory objects
    (docs/reference/microsoft-graph.md#counting-and-advanced-queries)."""
    if isinstance(node, BoolNode):
        return node.op == "not" or any(is_advanced(c) for c in node.children)
    return node.op in ("ne", "endswith")


def filter_ids(node: FilterNode) -> list[str] | None:
    """The ids of a filter shaped ``id eq 'a' or id eq 'b' ...`` (the only form delta allows,
    docs/reference/microsoft-graph.md#delta-rounds); None for any other shape."""
    leaves: list[Any] = [node]
    ids: list[str] = []
    while leaves:
        current = leaves.pop(0)
        if isinstance(current, BoolNode) and current.op == "or":
            leaves[0:0] = list(current.children)
        elif isinstance(current, Comparison) and current.op == "eq" and current.prop == "id":
            value = current.values[0]
            if not isinstance(value, str):
                return None
            ids.append(value.lower())
        else:
            return None
    return ids


# ---------------------------------------------------------------------------------------------
# Tokens: Graph's page and delta tokens are opaque. Ours carry their state (position, seq,
# options) signed with a per-tenant secret, so a garbled or foreign token is detected.


class TokenCodec:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def encode(self, payload: Mapping[str, Any]) -> str:
        raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        sig = hmac.new(self.secret, raw, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(sig + raw).rstrip(b"=").decode()

    def decode(self, token: str) -> dict[str, Any] | None:
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        sig, raw = blob[:12], blob[12:]
        if len(sig) < 12 or not hmac.compare_digest(sig, hmac.new(self.secret, raw, hashlib.sha256).digest()[:12]):
            return None
        try:
            payload = json.loads(raw)
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None
