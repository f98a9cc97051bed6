"""Entra's expression syntax -> an AST with positions.

    expression := operand [ ("=" | "<>" | "<" | "<=" | ">" | ">=") operand ]
    operand    := "[" attribute "]" | "string" | number | &Hhex | True | False | vbBinaryCompare
                | vbTextCompare | Function "(" [ argument { "," argument } ] ")"
    argument   := expression | (nothing: an empty argument)

Function names are case-sensitive. Strings escape `"` and `\\` with a backslash; any other
backslash is kept as written, so regular expressions read the same as in Entra's examples.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shared.mapping.errors import ExpressionSyntaxError

MAX_LENGTH = 10_000  # Entra's documented limit for one expression
MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 20
COMPARISONS = ("<=", ">=", "<>", "=", "<", ">")
CONSTANTS: dict[str, Any] = {
    "True": True,
    "False": False,
    "vbBinaryCompare": "vbBinaryCompare",
    "vbTextCompare": "vbTextCompare",
}
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_DIGITS = frozenset("0123456789")
_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_HEX = re.compile(r"&[Hh]([0-9A-Fa-f]+)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Literal:
    value: Any
    pos: int
    raw: str = ""  # a number as written, for the canonical text


@dataclass(frozen=True)
class Attribute:
    name: str
    pos: int


@dataclass(frozen=True)
class Empty:
    """An argument left out: `Switch([IsSoftDeleted], , "False", "True")`."""

    pos: int


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True)
class Comparison:
    op: str
    left: Node
    right: Node
    pos: int


Node = Literal | Attribute | Empty | Call | Comparison


@dataclass(frozen=True)
class _Token:
    kind: str  # string number name attr ( ) , op end
    text: str
    pos: int
    value: Any = None


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        token = _token_at(text, i)
        tokens.append(token)
        i = token.pos + len(token.text)  # every token is the text it was read from
    tokens.append(_Token("end", "", n))
    return tokens


def _token_at(text: str, i: int) -> _Token:
    """The token that starts at ``text[i]`` (not a blank)."""
    c = text[i]
    if c == '"':
        return _string_at(text, i)
    if c == "[":
        return _attribute_at(text, i)
    if c in _DIGITS or (c == "-" and text[i + 1 : i + 2] in _DIGITS):
        return _number_at(text, i)
    if c == "&" and text[i + 1 : i + 2] in ("H", "h"):
        return _hex_at(text, i)
    if c in _NAME_START:
        m = _NAME.match(text, i)
        if m is None:  # pragma: no cover - the branch condition guarantees a letter
            raise ExpressionSyntaxError(f"unexpected character {c!r}", i, text)
        return _Token("name", m.group(0), i)
    if c in "(),":
        return _Token(c, c, i)
    if c in "<>=":
        return _Token("op", next(o for o in COMPARISONS if text.startswith(o, i)), i)
    raise ExpressionSyntaxError(f"unexpected character {c!r}", i, text)


def _string_at(text: str, start: int) -> _Token:
    """A string literal: ``\\"`` and ``\\\\`` are escapes, any other backslash is kept."""
    i, n = start + 1, len(text)
    chars: list[str] = []
    while True:
        if i >= n:
            raise ExpressionSyntaxError('unterminated string (missing closing ")', start, text)
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in '"\\':
            chars.append(text[i + 1])
            i += 2
        elif c == '"':
            return _Token("string", text[start : i + 1], start, "".join(chars))
        else:
            chars.append(c)
            i += 1


def _attribute_at(text: str, i: int) -> _Token:
    end = text.find("]", i + 1)
    if end < 0:
        raise ExpressionSyntaxError("unterminated attribute reference (missing ])", i, text)
    name = text[i + 1 : end].strip()
    if not ATTRIBUTE_NAME.match(name):
        raise ExpressionSyntaxError(
            f"{name!r} is not an attribute name (letters, digits and _, with one optional .sub-property)",
            i + 1,
            text,
        )
    return _Token("attr", text[i : end + 1], i, name)


def _number_at(text: str, i: int) -> _Token:
    m = _NUMBER.match(text, i)
    if m is None:  # pragma: no cover - the branch condition guarantees a digit
        raise ExpressionSyntaxError("bad number", i, text)
    digits = m.group(0)
    if len(digits.replace("-", "").replace(".", "")) > MAX_NUMBER_DIGITS:
        raise ExpressionSyntaxError(f"number longer than {MAX_NUMBER_DIGITS} digits", i, text)
    value: Any = float(digits) if "." in digits else int(digits)
    return _Token("number", digits, i, value)


def _hex_at(text: str, i: int) -> _Token:
    m = _HEX.match(text, i)
    if not m:
        raise ExpressionSyntaxError("&H must be followed by hexadecimal digits", i, text)
    if len(m.group(1)) > 16:
        raise ExpressionSyntaxError("hexadecimal number longer than 16 digits", i, text)
    return _Token("number", m.group(0), i, int(m.group(1), 16))


class _Parser:
    def __init__(self, text: str) -> None:
        # imported here: the function table checks calls built from this module's node types
        from shared.mapping.expressions.functions import FUNCTIONS

        self.functions = FUNCTIONS
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def error(self, problem: str, pos: int) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(problem, pos, self.text)

    @property
    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def parse(self) -> Node:
        if self.peek.kind == "end":
            raise self.error("the expression is empty", 0)
        node = self.expression(0)
        token = self.peek
        if token.kind != "end":
            hint = " (a comma or a parenthesis too many?)" if token.kind in ",)" else ""
            raise self.error(f"unexpected {_describe(token)} after the end of the expression{hint}", token.pos)
        return node

    def expression(self, depth: int) -> Node:
        left = self.operand(depth)
        if self.peek.kind == "op":
            op = self.take()
            right = self.operand(depth)
            if self.peek.kind == "op":
                raise self.error("only one comparison per condition (no AND/OR: nest IIF instead)", self.peek.pos)
            return Comparison(op.text, left, right, op.pos)
        return left

    def operand(self, depth: int) -> Node:
        token = self.take()
        if token.kind == "string":
            return Literal(token.value, token.pos)
        if token.kind == "number":
            return Literal(token.value, token.pos, token.text)
        if token.kind == "attr":
            return Attribute(token.value, token.pos)
        if token.kind == "name":
            if self.peek.kind == "(":
                return self.call(token, depth)
            if token.text in CONSTANTS:
                return Literal(CONSTANTS[token.text], token.pos)
            if token.text in self.functions:
                raise self.error(f"{token.text} is a function: write {token.text}(...)", token.pos)
            lower = {k.lower(): k for k in CONSTANTS}
            if token.text.lower() in lower:
                raise self.error(
                    f"unknown name {token.text!r} (names are case-sensitive: {lower[token.text.lower()]})", token.pos
                )
            raise self.error(
                f"unknown name {token.text!r}; write attributes in brackets ([{token.text}]) and text in quotes",
                token.pos,
            )
        if token.kind == "end":
            raise self.error("the expression ends too early", token.pos)
        raise self.error(f"unexpected {_describe(token)}", token.pos)

    def call(self, name: _Token, depth: int) -> Call:
        if depth + 1 > MAX_DEPTH:
            raise self.error(f"functions nest deeper than {MAX_DEPTH} levels", name.pos)
        spec = self.functions.get(name.text)
        if spec is None:
            raise self.error(_unknown_function(name.text, self.functions), name.pos)
        open_paren = self.take()
        args: list[Node] = []
        if self.peek.kind == ")":
            self.take()
        else:
            while True:
                if self.peek.kind in (",", ")"):
                    args.append(Empty(self.peek.pos))
                else:
                    args.append(self.expression(depth + 1))
                token = self.take()
                if token.kind == ")":
                    break
                if token.kind != ",":
                    if token.kind == "end":
                        raise self.error(f"missing ) to close {name.text}(", open_paren.pos)
                    raise self.error(f"expected , or ) in {name.text}(...), found {_describe(token)}", token.pos)
        call = Call(name.text, tuple(args), name.pos)
        problem = spec.check_call(call)
        if problem:
            raise self.error(problem[0], problem[1])
        return call


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "end of expression"
    return repr(token.text if len(token.text) <= 30 else token.text[:27] + "...")


def _unknown_function(name: str, functions: dict[str, Any]) -> str:
    by_lower = {k.lower(): k for k in functions}
    if name.lower() in by_lower:
        return f"unknown function {name!r} (function names are case-sensitive: {by_lower[name.lower()]})"
    close = difflib.get_close_matches(name, list(functions), n=1)
    return f"unknown function {name!r}" + (f" (did you mean {close[0]}?)" if close else "")


@lru_cache(maxsize=2048)
def parse(text: str) -> Node:
    """Parses an expression; raises ExpressionSyntaxError with the 0-based position."""
    if not isinstance(text, str):
        raise ExpressionSyntaxError("the expression must be text", 0, "")
    if len(text) > MAX_LENGTH:
        raise ExpressionSyntaxError(
            f"the expression is {len(text)} characters; Entra's limit is {MAX_LENGTH}",
            MAX_LENGTH,
            text[: MAX_LENGTH + 20],
        )
    parsed = _Parser(text).parse()
    if isinstance(parsed, Call):
        for node in walk(parsed):
            if isinstance(node, Call) and node.name == "SelectUniqueValue" and node is not parsed:
                raise ExpressionSyntaxError("SelectUniqueValue must be the outermost function", node.pos, text)
    return parsed


def walk(node: Node) -> list[Node]:
    """The node and every node under it, depth first."""
    out: list[Node] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        out.append(current)
        if isinstance(current, Call):
            stack.extend(reversed(current.args))
        elif isinstance(current, Comparison):
            stack.extend((current.right, current.left))
    return out


def attributes(node: Node) -> list[str]:
    """The attribute names an expression reads, in order of appearance."""
    seen: dict[str, None] = {}
    for n in walk(node):
        if isinstance(n, Attribute):
            seen.setdefault(n.name, None)
    return list(seen)


def to_source(node: Node) -> str:
    """The canonical text of an expression: one form per meaning, used in digests."""
    if isinstance(node, Literal):
        value = node.value
        if isinstance(value, bool):
            return "True" if value else "False"
        if isinstance(value, int | float):
            return node.raw or repr(value)
        if value in ("vbBinaryCompare", "vbTextCompare") and not isinstance(value, bool):
            return f'"{value}"'
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(node, Attribute):
        return f"[{node.name}]"
    if isinstance(node, Empty):
        return ""
    if isinstance(node, Comparison):
        return f"{to_source(node.left)} {node.op} {to_source(node.right)}"
    return f"{node.name}({', '.join(to_source(a) for a in node.args)})"
