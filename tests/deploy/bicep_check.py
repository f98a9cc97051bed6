"""Checks a Bicep file without the Bicep compiler (none runs here): pycep-parser's grammar for the
syntax, then a small lexer of our own for what the grammar does not look at.

- pycep-parser (Lark grammar of Bicep, incl. `extension`, user-defined `type`, `func`, `import`,
  lambdas, `.?` and `??`) must parse the file;
- our lexer: balanced ()[]{} (also inside `${...}`), terminated strings, interpolations and
  comments; every statement starts with a known keyword or a decorator;
- resource types are `Namespace/type@version` (child resources nested in a parent may omit both);
- module paths exist; module params exist in the module, and required ones are passed;
- every `X.outputs.Y` of a module X names an output the module declares;
- every `param` and `var` is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycep import BicepParser

KEYWORDS = frozenset(
    {"param", "var", "resource", "module", "output", "targetScope", "extension", "type", "func", "import", "metadata"}
)
_API_VERSION = r"(\d{4}-\d{2}-\d{2}(-(preview|beta|alpha|privatepreview))?|v1\.0|beta)"
TOP_RESOURCE_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)+(/[A-Za-z][A-Za-z0-9]*)+@" + _API_VERSION)
CHILD_RESOURCE_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9]*(/[A-Za-z][A-Za-z0-9]*)*(@" + _API_VERSION + ")?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"\d+")
_CLOSERS = {"(": ")", "[": "]", "{": "}"}
_PRAGMAS = ("#disable-next-line", "#disable-diagnostics", "#restore-diagnostics")


class BicepError(ValueError):
    """What is wrong with a Bicep file, with the file and line."""


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, punct, nl
    value: str
    line: int
    depth: int  # bracket depth where the token starts (0 = statement level)
    in_string: bool = False  # an identifier inside ${...}


@dataclass
class BicepFile:
    path: Path
    parsed: dict[str, Any]
    tokens: list[Token]
    params: dict[str, bool] = field(default_factory=dict)  # name -> has a default
    outputs: set[str] = field(default_factory=set)
    modules: dict[str, str] = field(default_factory=dict)  # symbol -> path


def lex(text: str, where: str = "<snippet>") -> list[Token]:
    tokens: list[Token] = []
    stack: list[tuple[str, int]] = []
    line = 1

    def fail(message: str, at: int) -> BicepError:
        return BicepError(f"{where}:{at}: {message}")

    def scan(i: int, in_interp: bool) -> int:
        nonlocal line
        base = len(stack)
        n = len(text)
        while i < n:
            c = text[i]
            if c == "\n":
                tokens.append(Token("nl", "\n", line, len(stack)))
                line += 1
                i += 1
            elif c in " \t\r":
                i += 1
            elif text.startswith("//", i) or text.startswith(_PRAGMAS, i):
                end = text.find("\n", i)
                i = n if end < 0 else end
            elif text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    raise fail("unterminated /* comment", line)
                line += text.count("\n", i, end)
                i = end + 2
            elif text.startswith("'''", i):
                end = text.find("'''", i + 3)
                if end < 0:
                    raise fail("unterminated ''' string", line)
                tokens.append(Token("string", text[i + 3 : end], line, len(stack)))
                line += text.count("\n", i, end)
                i = end + 3
            elif c == "'":
                i = scan_string(i)
            elif in_interp and c == "}" and len(stack) == base:
                return i + 1
            elif c in _CLOSERS:
                tokens.append(Token("punct", c, line, len(stack)))
                stack.append((c, line))
                i += 1
            elif c in ")]}":
                if len(stack) == base:
                    raise fail(f"unexpected {c!r}", line)
                opener, opened = stack.pop()
                if _CLOSERS[opener] != c:
                    raise fail(f"{c!r} closes {opener!r} opened on line {opened}", line)
                tokens.append(Token("punct", c, line, len(stack)))
                i += 1
            elif m := _IDENT.match(text, i):
                tokens.append(Token("ident", m.group(), line, len(stack), in_string=in_interp))
                i = m.end()
            elif m := _NUMBER.match(text, i):
                tokens.append(Token("number", m.group(), line, len(stack)))
                i = m.end()
            elif c in "@=:,.?!<>+-*/%&|~":
                tokens.append(Token("punct", c, line, len(stack)))
                i += 1
            else:
                raise fail(f"unexpected character {c!r}", line)
        if in_interp:
            raise fail("unterminated ${...} interpolation", line)
        return i

    def scan_string(i: int) -> int:
        nonlocal line
        start = line
        j = i + 1
        literal: list[str] = []
        while True:
            if j >= len(text) or text[j] == "\n":
                raise fail("unterminated string", start)
            ch = text[j]
            if ch == "\\":
                if j + 1 >= len(text) or text[j + 1] not in "\\'nrt$u":
                    raise fail(f"bad escape in string: {text[j : j + 2]!r}", line)
                literal.append(text[j : j + 2])
                j += 2
            elif ch == "'":
                tokens.append(Token("string", "".join(literal), start, len(stack)))
                return j + 1
            elif text.startswith("${", j):
                literal.append("${…}")
                depth = len(stack)
                j = scan(j + 2, in_interp=True)
                if len(stack) != depth:
                    raise fail("unbalanced brackets in ${...}", line)
            else:
                literal.append(ch)
                j += 1

    end = scan(0, in_interp=False)
    assert end == len(text)
    if stack:
        opener, opened = stack[-1]
        raise fail(f"{opener!r} opened here is never closed", opened)
    return tokens


def _statements(tokens: list[Token]) -> list[list[Token]]:
    """Tokens of each statement (a logical line at bracket depth 0)."""
    out: list[list[Token]] = []
    current: list[Token] = []
    for t in tokens:
        if t.kind == "nl" and t.depth == 0:
            if current:
                out.append(current)
            current = []
        elif t.kind != "nl":
            current.append(t)
    if current:
        out.append(current)
    return out


def check_file(path: Path) -> BicepFile:
    text = path.read_text(encoding="utf-8")
    try:
        parsed = BicepParser().parse(text=text)
    except Exception as exc:
        raise BicepError(f"{path}: pycep-parser: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    return check_text(text, path, parsed)


def check_text(text: str, path: Path, parsed: dict[str, Any] | None = None) -> BicepFile:
    if parsed is None:
        try:
            parsed = BicepParser().parse(text=text)
        except Exception as exc:
            raise BicepError(f"{path}: pycep-parser: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    tokens = lex(text, str(path))
    bf = BicepFile(path, parsed, tokens)
    declared: dict[tuple[str, str], int] = {}  # (kind, name) -> index of the declaring name token

    for stmt in _statements(tokens):
        head = stmt[0]
        if head.kind == "punct" and head.value == "@":
            # a decorator: the statement it decorates follows on a later line
            continue
        if head.kind != "ident" or head.value not in KEYWORDS:
            raise BicepError(f"{path}:{head.line}: a statement cannot start with {head.value!r}")
        if head.value in ("param", "var", "output", "resource", "module", "type", "func") and len(stmt) > 1:
            name = stmt[1]
            if name.kind != "ident":
                raise BicepError(f"{path}:{head.line}: {head.value} without a name")
            declared[(head.value, name.value)] = tokens.index(name)
            if head.value == "param":
                bf.params[name.value] = any(t.kind == "punct" and t.value == "=" for t in stmt)
            elif head.value == "output":
                bf.outputs.add(name.value)
            elif head.value == "module":
                target = stmt[2] if len(stmt) > 2 else None
                if target is None or target.kind != "string":
                    raise BicepError(f"{path}:{head.line}: module {name.value} has no path")
                bf.modules[name.value] = target.value

    # resource types, nested ones included
    for i, t in enumerate(tokens[:-2]):
        if t.kind == "ident" and t.value == "resource" and not t.in_string and tokens[i + 1].kind == "ident":
            kind = tokens[i + 2]
            if kind.kind != "string":
                raise BicepError(f"{path}:{t.line}: resource {tokens[i + 1].value} has no type")
            pattern = TOP_RESOURCE_TYPE if t.depth == 0 else CHILD_RESOURCE_TYPE
            if not pattern.fullmatch(kind.value):
                raise BicepError(f"{path}:{t.line}: resource type {kind.value!r} is not Namespace/type@version")

    # every param and var used (an object key `name:` is not a use; `a ? name : b` is)
    declaring = set(declared.values())
    uses: dict[str, int] = {}
    for i, t in enumerate(tokens):
        if t.kind != "ident":
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        prev = tokens[i - 1] if i else None
        is_key = (
            nxt is not None
            and nxt.value == ":"
            and (prev is None or prev.kind == "nl" or prev.value in ("{", ","))
            and not t.in_string
        )
        if not is_key and i not in declaring:
            uses[t.value] = uses.get(t.value, 0) + 1
    for kind, name in declared:
        if kind in ("param", "var") and not uses.get(name):
            raise BicepError(f"{path}: {kind} {name!r} is never used")

    # modules: paths, params, outputs
    for symbol, target in bf.modules.items():
        if target.startswith(("br:", "br/", "ts:", "ts/")):
            continue
        module_path = (path.parent / target).resolve()
        if not module_path.is_file():
            raise BicepError(f"{path}: module {symbol}: {target} does not exist")
        module = check_file(module_path)
        config = (parsed.get("modules", {}).get(symbol) or {}).get("config") or {}
        if "condition" in config:  # `module x '...' = if (...) {...}`
            config = config.get("config") or {}
        passed = set((config.get("params") or {}).keys())
        unknown = passed - set(module.params)
        if unknown:
            raise BicepError(f"{path}: module {symbol} passes params {sorted(unknown)} that {target} does not declare")
        missing = {p for p, has_default in module.params.items() if not has_default} - passed
        if missing:
            raise BicepError(f"{path}: module {symbol} does not pass the required params {sorted(missing)}")
        for i, t in enumerate(tokens[:-4]):
            if (
                t.kind == "ident"
                and t.value == symbol
                and tokens[i + 1].value == "."
                and tokens[i + 2].value == "outputs"
                and tokens[i + 3].value == "."
            ):
                output = tokens[i + 4].value
                if output not in module.outputs:
                    raise BicepError(f"{path}:{t.line}: {symbol}.outputs.{output}: {target} has no such output")
    return bf


def object_entries(text: str, var_name: str) -> dict[str, str]:
    """``KEY: expression`` entries of ``var <var_name> = { ... }`` (one per line), comments removed."""
    match = re.search(rf"^var {re.escape(var_name)} = \{{\n(.*?)^\}}", text, re.M | re.S)
    if not match:
        raise BicepError(f"var {var_name} = {{...}} not found")
    entries: dict[str, str] = {}
    for raw in match.group(1).splitlines():
        line = re.sub(r"\s//.*$", "", raw).strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise BicepError(f"var {var_name}: cannot read the line {raw!r}")
        entries[key.strip().strip("'")] = value.strip()
    return entries
