"""The attribute-mapping configuration (Entra's model,
docs/reference/entra-provisioning.md#attribute-mappings): the mappings and scoping filters,
loaded from JSON and validated as a whole, the built-in defaults, the Graph `$select` they need,
and a digest that changes exactly when their meaning does."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.mapping.errors import ExpressionSyntaxError, MappingConfigError, MappingError
from shared.mapping.expressions import Call, attributes, parse, to_source, walk
from shared.mapping.scoping import (
    ScopingClause,
    ScopingFilter,
    canonical_operator,
    filter_label,
    validate_filters,
)
from shared.mapping.sources import REFERENCE_SOURCES, graph_property, source_problem
from shared.scim.paths import parse_path, split_path
from shared.scim.schemas import ENTERPRISE_URN

KINDS = ("direct", "constant", "expression", "none")
APPLY = ("always", "create")
ALWAYS_SELECTED = ("id", "userPrincipalName", "accountEnabled", "displayName")
DIGEST_VERSION = "gotosync-mapping/1"  # bump when evaluation semantics change
ACTIVE_FROM_SOFT_DELETE = 'Switch([IsSoftDeleted], , "False", "True", "True", "False")'

_MAPPING_KEYS = frozenset(
    {"target", "type", "source", "expression", "value", "default", "apply", "matchingPrecedence", "clearOnNull"}
)
_TOP_KEYS = frozenset({"users", "$schema", "description"})
_USERS_KEYS = frozenset({"mappings", "scopingFilters"})
_FILTER_KEYS = frozenset({"name", "clauses"})
_CLAUSE_KEYS = frozenset({"attribute", "operator", "value"})
_ATTR = r"[A-Za-z][A-Za-z0-9_]*"
_CORE_PATH = re.compile(rf'^{_ATTR}(\.{_ATTR})?$|^{_ATTR}\[type eq "[^"]+"\]\.{_ATTR}$')
_URN = re.compile(r"^urn:[A-Za-z0-9][A-Za-z0-9.\-]*(:[A-Za-z0-9][A-Za-z0-9.\-]*)+$")
_SCALAR = (str, int, float, bool)


@dataclass(frozen=True)
class AttributeMapping:
    target: str  # SCIM path: userName, name.givenName, emails[type eq "work"].value, <urn>:attr
    kind: str  # "direct" | "constant" | "expression" | "none"
    source: str = ""  # direct: the source attribute (Graph or Entra name, a.b, or a computed source)
    expression: str = ""
    constant: Any = None
    default: Any = None  # used on create when the value is null
    apply: str = "always"  # "always" | "create"
    matching_precedence: int = 0  # 0 = not a matching attribute
    clear_on_null: bool = False  # Beat: a null value clears the target (default off, Entra parity)

    @property
    def is_matching(self) -> bool:
        return self.matching_precedence > 0

    @property
    def roles_patch(self) -> str:
        """For role mappings: "add" (AppRoleAssignmentsComplex: PATCH add only), "replace"
        (AssertiveAppRoleAssignmentsComplex), or "" for anything else."""
        if self.kind != "expression":
            return ""
        try:
            node = parse(self.expression)
        except MappingError:
            return ""
        if isinstance(node, Call) and node.name == "AppRoleAssignmentsComplex":
            return "add"
        if isinstance(node, Call) and node.name == "AssertiveAppRoleAssignmentsComplex":
            return "replace"
        return ""

    def sources(self) -> list[str]:
        """The source attributes this mapping reads."""
        if self.kind == "direct":
            return [self.source]
        if self.kind == "expression":
            try:
                return attributes(parse(self.expression))
            except MappingError:
                return []
        return []

    def to_dict(self, *, canonical: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "type": self.kind}
        if self.kind == "direct":
            out["source"] = self.source
        elif self.kind == "expression":
            out["expression"] = _canonical_expression(self.expression) if canonical else self.expression
        elif self.kind == "constant":
            out["value"] = self.constant
        if canonical or self.default is not None:
            out["default"] = self.default
        if canonical or self.apply != "always":
            out["apply"] = self.apply
        if canonical or self.matching_precedence:
            out["matchingPrecedence"] = self.matching_precedence
        if canonical or self.clear_on_null:
            out["clearOnNull"] = self.clear_on_null
        return out


def _canonical_expression(expression: str) -> str:
    try:
        return to_source(parse(expression))
    except MappingError:
        return expression


@dataclass(frozen=True)
class MappingConfig:
    users: tuple[AttributeMapping, ...]
    scoping: tuple[ScopingFilter, ...] = ()

    def matching(self) -> list[AttributeMapping]:
        """The matching attributes in precedence order (1 first)."""
        return sorted((m for m in self.users if m.is_matching), key=lambda m: m.matching_precedence)

    def by_target(self, target: str) -> AttributeMapping | None:
        return next((m for m in self.users if m.target.lower() == target.lower()), None)

    def sources(self) -> list[str]:
        """Every source attribute the mappings and the scoping filters read."""
        names: dict[str, None] = {}
        for m in self.users:
            for name in m.sources():
                names.setdefault(name, None)
        for flt in self.scoping:
            for clause in flt.clauses:
                names.setdefault(clause.attribute, None)
        return list(names)

    def graph_select(self) -> list[str]:
        """The Graph `$select` the mappings and filters need, plus what scoping always needs.
        Computed sources are left out; a sub-property selects its parent; Entra's names select
        the Graph property behind them (mobile -> mobilePhone, extensionAttribute1 ->
        onPremisesExtensionAttributes)."""
        needed = set(ALWAYS_SELECTED)
        for name in self.sources():
            prop = graph_property(name)
            if prop:
                needed.add(prop)
        return sorted(needed)

    def graph_expand(self) -> list[str]:
        """Navigation properties the mappings read (`manager`): Graph needs `$expand` for them."""
        return sorted({name for name in self.sources() if name in REFERENCE_SOURCES})

    def to_dict(self, *, canonical: bool = False) -> dict[str, Any]:
        """The mapping-file form of this configuration (canonical: the form the digest hashes)."""
        mappings = [m.to_dict(canonical=canonical) for m in self.users]
        filters: list[Any] = []
        for flt in self.scoping:
            clauses = [{"attribute": c.attribute, "operator": c.operator, "value": c.value} for c in flt.clauses]
            if canonical:
                filters.append(sorted(clauses, key=lambda c: (c["attribute"], c["operator"], c["value"])))
            else:
                filters.append({"name": flt.name, "clauses": clauses} if flt.name else {"clauses": clauses})
        if canonical:
            mappings.sort(key=lambda m: m["target"])
            filters.sort(key=lambda f: json.dumps(f, sort_keys=True))
            return {"version": DIGEST_VERSION, "users": {"mappings": mappings, "scopingFilters": filters}}
        users: dict[str, Any] = {"mappings": mappings}
        if filters:
            users["scopingFilters"] = filters
        return {"users": users}

    def digest(self) -> str:
        """sha256 of the canonical JSON: stable under key order, mapping order, filter and clause
        order and expression white space; changed by anything that changes a result."""
        text = json.dumps(self.to_dict(canonical=True), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- loading and validation --------------------------------------------------------------------


def load_mapping(path: str | Path | None) -> MappingConfig:
    """The mapping file at `path` (JSON), validated. None or "" gives the built-in GoTo mapping;
    "builtin:goto" / "builtin:scim" name a built-in. Raises MappingConfigError with every problem."""
    if path is None or str(path).strip() == "":
        return builtin("goto")
    text_path = str(path).strip()
    if text_path.startswith("builtin:"):
        try:
            return builtin(text_path.removeprefix("builtin:"))
        except MappingError as e:
            raise MappingConfigError([e], text_path) from None
    try:
        text = Path(text_path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise MappingConfigError([MappingError("(file)", f"cannot read the mapping file: {e}")], text_path) from None
    return mapping_from_json(text, origin=text_path)


def mapping_from_json(text: str, origin: str = "") -> MappingConfig:
    duplicates: list[MappingError] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(MappingError("(file)", f"the key {key!r} appears twice in one object"))
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        raise MappingConfigError(
            [MappingError("(file)", f"not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}")], origin
        ) from None
    except RecursionError:
        raise MappingConfigError([MappingError("(file)", "the JSON nests too deeply")], origin) from None
    return mapping_from_dict(data, origin=origin, _errors=duplicates)


def mapping_from_dict(data: Any, origin: str = "", *, _errors: list[MappingError] | None = None) -> MappingConfig:
    """Builds and validates a configuration from the parsed file; raises MappingConfigError."""
    errors: list[MappingError] = list(_errors or [])
    mappings: list[AttributeMapping] = []
    filters: list[ScopingFilter] = []
    if not isinstance(data, dict):
        raise MappingConfigError(
            [MappingError("(file)", "the file must hold a JSON object with a 'users' key")], origin
        )
    _unknown_keys(data, _TOP_KEYS, "(file)", errors)
    users = data.get("users")
    if not isinstance(users, dict):
        errors.append(
            MappingError("(file)", "'users' must be an object with 'mappings' (and optional 'scopingFilters')")
        )
        users = {}
    _unknown_keys(users, _USERS_KEYS, "users", errors)
    raw_mappings = users.get("mappings", [])
    if not isinstance(raw_mappings, list):
        errors.append(MappingError("users", "'mappings' must be a list"))
        raw_mappings = []
    broken: list[Any] = []  # mappings left out for errors: later checks must not blame their absence
    for index, raw in enumerate(raw_mappings):
        mapping = _mapping_from_dict(raw, index, errors)
        if mapping is not None:
            mappings.append(mapping)
        else:
            broken.append(raw)
    raw_filters = users.get("scopingFilters", [])
    if not isinstance(raw_filters, list):
        errors.append(MappingError("users", "'scopingFilters' must be a list"))
        raw_filters = []
    for index, raw in enumerate(raw_filters):
        flt = _filter_from_dict(raw, index, errors)
        if flt is not None:
            filters.append(flt)
    config = MappingConfig(users=tuple(mappings), scoping=tuple(filters))
    errors.extend(
        validate(
            config,
            check_user_name=not any(
                isinstance(r, dict) and str(r.get("target", "")).lower() == "username" for r in broken
            ),
            check_matching=not any(isinstance(r, dict) and r.get("matchingPrecedence") for r in broken)
            and not (broken and not mappings),
        )
    )
    if errors:
        raise MappingConfigError(errors, origin)
    return config


def _unknown_keys(obj: dict[str, Any], allowed: frozenset[str], where: str, errors: list[MappingError]) -> None:
    for key in obj:
        if key not in allowed:
            errors.append(MappingError(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})"))


def _mapping_from_dict(raw: Any, index: int, errors: list[MappingError]) -> AttributeMapping | None:
    label = f"mappings[{index}]"
    if not isinstance(raw, dict):
        errors.append(MappingError(label, "a mapping must be an object"))
        return None
    target = raw.get("target")
    if not isinstance(target, str) or not target.strip():
        errors.append(MappingError(label, "missing 'target' (the SCIM attribute to write)"))
        return None
    _unknown_keys(raw, _MAPPING_KEYS, target, errors)
    before = len(errors)
    kind = _mapping_kind(raw, target, errors)
    if kind is None:
        return None

    def option(key: str, fallback: Any, valid: Callable[[Any], bool], problem: str) -> Any:
        return _option(raw, key, fallback, valid, problem, target, errors)

    apply = option("apply", "always", _is_apply, "'apply' must be 'always' or 'create' (got {!r})")
    precedence = option(
        "matchingPrecedence", 0, _is_precedence, "'matchingPrecedence' must be a whole number >= 0 (got {!r})"
    )
    clear = option("clearOnNull", False, _is_bool, "'clearOnNull' must be true or false (got {!r})")
    default = option("default", None, _is_default, "'default' must be text, a number or a boolean")
    source, expression, constant = _mapping_value(raw, kind, target, errors)
    if len(errors) > before:
        return None
    return AttributeMapping(
        target=target.strip(),
        kind=kind,
        source=source,
        expression=expression,
        constant=constant,
        default=default,
        apply=apply.lower(),
        matching_precedence=precedence,
        clear_on_null=clear,
    )


def _mapping_kind(raw: dict[str, Any], target: str, errors: list[MappingError]) -> str | None:
    """The mapping's type (lower case); without 'type', direct with a source, expression with one."""
    kind = raw.get("type", "direct" if "source" in raw else "expression" if "expression" in raw else None)
    if not isinstance(kind, str) or kind.lower() not in KINDS:
        errors.append(MappingError(target, f"'type' must be one of {', '.join(KINDS)} (got {kind!r})"))
        return None
    return kind.lower()


def _is_apply(value: Any) -> bool:
    return isinstance(value, str) and value.lower() in APPLY


def _is_precedence(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 0


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_default(value: Any) -> bool:
    return value is None or isinstance(value, _SCALAR)


def _option(
    raw: dict[str, Any],
    key: str,
    fallback: Any,
    valid: Callable[[Any], bool],
    problem: str,
    target: str,
    errors: list[MappingError],
) -> Any:
    """``raw[key]`` when `valid`; else `fallback`, with the problem (``{!r}``: the value given)."""
    value = raw.get(key, fallback)
    if valid(value):
        return value
    errors.append(MappingError(target, problem.format(value)))
    return fallback


def _mapping_value(raw: dict[str, Any], kind: str, target: str, errors: list[MappingError]) -> tuple[str, str, Any]:
    """(source, expression, constant): the one that `kind` takes, checked; the others empty."""
    wanted = {"direct": "source", "expression": "expression", "constant": "value"}.get(kind)
    for key in ("source", "expression", "value"):
        if key in raw and key != wanted:
            errors.append(MappingError(target, f"a {kind} mapping takes no {key!r}"))
    source, expression, constant = "", "", None
    if kind == "direct":
        source = raw.get("source")
        if not isinstance(source, str) or not source.strip():
            errors.append(MappingError(target, "a direct mapping needs 'source' (the Entra attribute)"))
            source = ""
        source = source.strip()
    elif kind == "expression":
        expression = raw.get("expression")
        if not isinstance(expression, str) or not expression.strip():
            errors.append(MappingError(target, "an expression mapping needs 'expression'"))
            expression = ""
    elif kind == "constant":
        constant = raw.get("value")
        if constant is None or not isinstance(constant, _SCALAR):
            errors.append(MappingError(target, "a constant mapping needs 'value' (text, a number or a boolean)"))
    return source, expression, constant


def _filter_from_dict(raw: Any, index: int, errors: list[MappingError]) -> ScopingFilter | None:
    label = f"scoping filter {index + 1}"
    if not isinstance(raw, dict):
        errors.append(MappingError(label, "a scoping filter must be an object with 'clauses'"))
        return None
    name = raw.get("name", "")
    if not isinstance(name, str):
        errors.append(MappingError(label, "'name' must be text"))
        name = ""
    label = filter_label(index, ScopingFilter((), name))
    _unknown_keys(raw, _FILTER_KEYS, label, errors)
    raw_clauses = raw.get("clauses")
    if not isinstance(raw_clauses, list):
        errors.append(MappingError(label, "'clauses' must be a list"))
        return None
    clauses: list[ScopingClause] = []
    for j, rc in enumerate(raw_clauses):
        where = f"{label}, clause {j + 1}"
        if not isinstance(rc, dict):
            errors.append(MappingError(where, "a clause must be an object with attribute, operator and value"))
            continue
        _unknown_keys(rc, _CLAUSE_KEYS, where, errors)
        attribute, operator, value = rc.get("attribute"), rc.get("operator"), rc.get("value", "")
        if isinstance(value, bool):
            value = "True" if value else "False"
        elif isinstance(value, int | float):
            value = str(value)
        if not isinstance(attribute, str) or not isinstance(operator, str) or not isinstance(value, str):
            errors.append(MappingError(where, "'attribute' and 'operator' must be text, 'value' text or a number"))
            continue
        clauses.append(ScopingClause(attribute.strip(), canonical_operator(operator) or operator, value))
    return ScopingFilter(tuple(clauses), name)


def validate(config: MappingConfig, *, check_user_name: bool = True, check_matching: bool = True) -> list[MappingError]:
    """Every rule a configuration must meet, as a list of errors naming the mapping."""
    errors: list[MappingError] = []
    seen: dict[str, str] = {}
    for m in config.users:
        key = m.target.lower()
        if key in seen:
            errors.append(MappingError(m.target, f"mapped twice (also as {seen[key]!r}); each target once"))
        seen.setdefault(key, m.target)
        errors.extend(_mapping_problems(m))
    if check_matching:
        errors.extend(_matching_problems(config))
    if check_user_name and not any(m.target.lower() == "username" and m.kind != "none" for m in config.users):
        errors.append(MappingError("userName", "userName must be mapped (GoTo requires it)"))
    if check_user_name and any(m.target.lower() == "username" and m.kind == "constant" for m in config.users):
        errors.append(
            MappingError("userName", "a constant would give every user the same userName; map it from the user")
        )
    errors.extend(validate_filters(config.scoping))
    return errors


def _target_problem(target: str) -> str | None:
    if target.lower() == "id":
        return "the target 'id' is assigned by GoTo and cannot be mapped (Entra's rule)"
    urn, attr = split_path(target)
    if urn is not None and not _URN.match(urn):
        return f"{urn!r} is not a schema URN"
    if _CORE_PATH.match(attr) and _parses(target):
        return None
    if "[" in attr and "type eq" not in attr:
        return 'only [type eq "..."] filters are supported in target paths, e.g. emails[type eq "work"].value'
    return f'{target!r} is not a target path: use attr, attr.sub, attr[type eq "x"].sub or <schema URN>:attr'


def _parses(target: str) -> bool:
    """Whether the SCIM path algebra that reads and writes resources takes the target too."""
    try:
        parse_path(target)
    except ValueError:
        return False
    return True


def _mapping_problems(m: AttributeMapping) -> list[MappingError]:
    problems: list[str | MappingError] = [_target_problem(m.target) or ""]
    if m.kind not in KINDS:
        problems.append(f"unknown mapping type {m.kind!r}")
    if m.apply not in APPLY:
        problems.append(f"unknown apply value {m.apply!r}")
    problems += [source_problem(name) or "" for name in dict.fromkeys(m.sources())]
    if m.kind == "direct":
        problems.append(_direct_problem(m))
    if m.kind == "expression":
        problems += _expression_problems(m)
    if m.is_matching:
        problems += _matching_attribute_problems(m)
    return [p if isinstance(p, MappingError) else MappingError(m.target, p) for p in problems if p]


def _direct_problem(m: AttributeMapping) -> str:
    if m.source == "appRoleAssignments":
        return (
            "appRoleAssignments cannot be mapped directly: use SingleAppRoleAssignment([appRoleAssignments]) "
            "or AppRoleAssignmentsComplex([appRoleAssignments])"
        )
    if m.source == "IsSoftDeleted" and m.target.lower() == "active":
        return f"IsSoftDeleted is true for users to disable; map active with {ACTIVE_FROM_SOFT_DELETE}"
    return ""


def _expression_problems(m: AttributeMapping) -> list[str | MappingError]:
    try:
        node = parse(m.expression)
    except ExpressionSyntaxError as e:
        return [e.for_mapping(m.target)]
    problems: list[str | MappingError] = []
    unique = any(isinstance(n, Call) and n.name == "SelectUniqueValue" for n in walk(node))
    if unique and m.is_matching:
        problems.append("SelectUniqueValue cannot be used on a matching attribute (Entra's rule)")
    if unique and m.apply != "create":
        problems.append('SelectUniqueValue is for creation only: set "apply": "create"')
    return problems


def _matching_attribute_problems(m: AttributeMapping) -> list[str | MappingError]:
    problems: list[str | MappingError] = []
    if m.kind in ("constant", "none"):
        problems.append(f"a matching attribute needs a value per user; a {m.kind} mapping has none")
    if m.apply == "create":
        problems.append('a matching attribute is looked up in every cycle: it must "apply": "always"')
    return problems


def _matching_problems(config: MappingConfig) -> list[MappingError]:
    errors: list[MappingError] = []
    matching = config.matching()
    if not matching:
        errors.append(MappingError("(matching)", "at least one mapping needs a matchingPrecedence (1 = tried first)"))
        return errors
    by_precedence: dict[int, list[str]] = {}
    for m in matching:
        by_precedence.setdefault(m.matching_precedence, []).append(m.target)
    for precedence, targets in sorted(by_precedence.items()):
        if len(targets) > 1:
            for target in targets:
                errors.append(
                    MappingError(
                        target,
                        f"matchingPrecedence {precedence} is shared with {', '.join(t for t in targets if t != target)}"
                        " (combination matching is not supported; give each its own number)",
                    )
                )
    expected = list(range(1, len(by_precedence) + 1))
    if sorted(by_precedence) != expected:
        for m in matching:
            if m.matching_precedence > len(by_precedence):
                errors.append(
                    MappingError(
                        m.target,
                        f"matchingPrecedence {m.matching_precedence} leaves a gap: use 1 to {len(by_precedence)}",
                    )
                )
    return errors


# --- built-in configurations ---------------------------------------------------------------


def _direct(target: str, source: str, **kw: Any) -> AttributeMapping:
    return AttributeMapping(target=target, kind="direct", source=source, **kw)


def _active() -> AttributeMapping:
    return AttributeMapping(target="active", kind="expression", expression=ACTIVE_FROM_SOFT_DELETE)


# The GoTo gallery app's targets (docs/reference/entra-provisioning.md#goto-gallery-app) fed from
# the sources an Entra admin expects:
# the engine's default mapping (MAPPING_FILE empty).
_GOTO = MappingConfig(
    users=(
        _direct("userName", "userPrincipalName", matching_precedence=1),
        _active(),
        _direct("displayName", "displayName"),
        _direct("name.givenName", "givenName"),
        _direct("name.familyName", "surname"),
        _direct('emails[type eq "work"].value', "mail"),
        _direct("externalId", "objectId"),
        _direct(f"{ENTERPRISE_URN}:department", "department"),
        _direct(f"{ENTERPRISE_URN}:employeeNumber", "employeeId"),
    )
)

# Entra's defaults for a custom (non-gallery) SCIM app,
# docs/reference/entra-provisioning.md#custom-scim-app.
_SCIM = MappingConfig(
    users=(
        _direct("userName", "userPrincipalName", matching_precedence=1),
        _active(),
        _direct("displayName", "displayName"),
        _direct("title", "jobTitle"),
        _direct('emails[type eq "work"].value', "mail"),
        _direct("name.givenName", "givenName"),
        _direct("name.familyName", "surname"),
        _direct('phoneNumbers[type eq "work"].value', "telephoneNumber"),
        _direct('phoneNumbers[type eq "mobile"].value', "mobile"),
        _direct('phoneNumbers[type eq "fax"].value', "facsimileTelephoneNumber"),
        _direct('addresses[type eq "work"].streetAddress', "streetAddress"),
        _direct('addresses[type eq "work"].postalCode', "postalCode"),
        _direct('addresses[type eq "other"].formatted', "physicalDeliveryOfficeName"),
        _direct('emails[type eq "other"].value', "proxyAddresses"),
        _direct("externalId", "mailNickname"),
        _direct(f"{ENTERPRISE_URN}:department", "department"),
        _direct(f"{ENTERPRISE_URN}:employeeNumber", "employeeId"),
        _direct(f"{ENTERPRISE_URN}:manager", "manager"),
    )
)
BUILTINS = {"goto": _GOTO, "scim": _SCIM}


def builtin(name: str) -> MappingConfig:
    """A built-in configuration: "goto" (the default) or "scim" (Entra's custom SCIM app)."""
    try:
        return BUILTINS[name.strip().lower()]
    except (KeyError, AttributeError):
        raise MappingError("(builtin)", f"no built-in mapping {name!r}; use one of {', '.join(BUILTINS)}") from None
