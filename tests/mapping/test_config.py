"""The mapping file: loading, every validation rule (each error names its mapping), the
built-ins, graph_select, and the digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.mapping import (
    AttributeMapping,
    ExpressionSyntaxError,
    MappingConfig,
    MappingConfigError,
    builtin,
    load_mapping,
    mapping_from_dict,
    mapping_from_json,
)

USER_NAME = {"target": "userName", "type": "direct", "source": "userPrincipalName", "matchingPrecedence": 1}


def users(*mappings: dict[str, Any], filters: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"mappings": list(mappings)}
    if filters is not None:
        body["scopingFilters"] = filters
    return {"users": body}


def problems(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(MappingConfigError) as info:
        mapping_from_dict(data)
    return [(e.mapping, e.problem) for e in info.value.errors]


def only_problem(data: Any) -> tuple[str, str]:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


FULL = {
    "$schema": "./mapping.schema.json",
    "users": {
        "mappings": [
            {"target": "userName", "type": "direct", "source": "userPrincipalName", "matchingPrecedence": 1},
            {"target": "externalId", "type": "direct", "source": "objectId", "matchingPrecedence": 2},
            {
                "target": "active",
                "type": "expression",
                "expression": 'Switch([IsSoftDeleted], , "False", "True", "True", "False")',
            },
            {
                "target": "displayName",
                "type": "expression",
                "expression": 'Join(" ", [givenName], [surname])',
                "default": "Unnamed",
                "clearOnNull": True,
            },
            {"target": "title", "type": "constant", "value": "Staff", "apply": "create"},
            {"target": "nickName", "type": "none", "default": "n/a"},
            {
                "target": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
                "type": "direct",
                "source": "employeeOrgData.costCenter",
            },
        ],
        "scopingFilters": [
            {
                "name": "GoTo users",
                "clauses": [
                    {"attribute": "extensionAttribute1", "operator": "EQUALS", "value": "GoTo"},
                    {"attribute": "accountEnabled", "operator": "IS TRUE"},
                ],
            },
            {"clauses": [{"attribute": "department", "operator": "REGEX MATCH", "value": "^(Sales|Support)$"}]},
        ],
    },
}


def test_no_file_means_the_built_in_goto_mapping() -> None:
    assert load_mapping(None) == builtin("goto")
    assert load_mapping("") == builtin("goto")
    assert load_mapping("builtin:scim") == builtin("scim")


def test_a_full_file_loads_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(FULL), encoding="utf-8")
    cfg = load_mapping(path)
    assert [m.target for m in cfg.matching()] == ["userName", "externalId"]
    display = cfg.by_target("displayName")
    assert display == AttributeMapping(
        target="displayName",
        kind="expression",
        expression='Join(" ", [givenName], [surname])',
        default="Unnamed",
        clear_on_null=True,
    )
    assert cfg.scoping[0].name == "GoTo users" and cfg.scoping[0].clauses[1].operator == "IS TRUE"
    assert mapping_from_dict(cfg.to_dict()) == cfg
    assert mapping_from_dict(builtin("scim").to_dict()) == builtin("scim")


def test_load_errors_name_the_file_problem(tmp_path: Path) -> None:
    with pytest.raises(MappingConfigError, match="cannot read"):
        load_mapping(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"users": {"mappings": [}}', encoding="utf-8")
    with pytest.raises(MappingConfigError, match=r"not valid JSON.*line 1"):
        load_mapping(bad)
    with pytest.raises(MappingConfigError, match="no built-in mapping 'okta'"):
        load_mapping("builtin:okta")


@pytest.mark.parametrize(
    ("data", "mapping", "problem"),
    [
        ({"users": {"mappings": [USER_NAME]}, "groups": {}}, "(file)", "unknown key 'groups'"),
        ({"users": {"mappings": [USER_NAME], "filters": []}}, "users", "unknown key 'filters'"),
        (
            users(USER_NAME, {"target": "title", "type": "direct", "source": "jobTitle", "sorce": "x"}),
            "title",
            "unknown key 'sorce'",
        ),
        (users(USER_NAME, {"type": "direct", "source": "jobTitle"}), "mappings[1]", "missing 'target'"),
        (
            users(
                USER_NAME,
                {"target": "title", "type": "direct", "source": "jobTitle"},
                {"target": "Title", "type": "direct", "source": "department"},
            ),
            "Title",
            "mapped twice",
        ),
        (users(USER_NAME, {"target": "id", "type": "direct", "source": "objectId"}), "id", "cannot be mapped"),
        (
            users(USER_NAME, {"target": "title", "type": "expression", "expression": "Left([jobTitle] 3)"}),
            "title",
            "expected , or )",
        ),
        (users(USER_NAME, {"target": "title", "type": "magic", "source": "x"}), "title", "'type' must be one of"),
        (
            users(USER_NAME, {"target": "title", "type": "direct", "source": "x", "apply": "sometimes"}),
            "title",
            "'apply' must be",
        ),
        (
            users(USER_NAME, {"target": "title", "type": "constant", "value": "x", "source": "jobTitle"}),
            "title",
            "a constant mapping takes no 'source'",
        ),
        (users(USER_NAME, {"target": "title", "type": "constant"}), "title", "needs 'value'"),
        (users(USER_NAME, {"target": "title", "type": "direct"}), "title", "needs 'source'"),
        (users(USER_NAME, {"target": "title", "type": "expression", "expression": ""}), "title", "needs 'expression'"),
        (
            users(USER_NAME, {"target": "title", "type": "direct", "source": "x", "clearOnNull": "yes"}),
            "title",
            "'clearOnNull' must be true or false",
        ),
        (
            users(USER_NAME, {"target": "title", "type": "direct", "source": "x", "default": ["a"]}),
            "title",
            "'default' must be text",
        ),
        (
            users(USER_NAME, {"target": "title", "type": "direct", "source": "x", "matchingPrecedence": True}),
            "title",
            "'matchingPrecedence' must be a whole number",
        ),
        (
            users(USER_NAME, {"target": "roles", "type": "direct", "source": "appRoleAssignments"}),
            "roles",
            "cannot be mapped directly",
        ),
        (
            users(USER_NAME, {"target": "active", "type": "direct", "source": "IsSoftDeleted"}),
            "active",
            "IsSoftDeleted is true for users to disable",
        ),
        (
            users(USER_NAME, {"target": "title", "type": "direct", "source": "job title"}),
            "title",
            "not a source attribute name",
        ),
        (
            users(
                USER_NAME,
                {
                    "target": 'roles[primary eq "True"].value',
                    "type": "expression",
                    "expression": "SingleAppRoleAssignment([appRoleAssignments])",
                },
            ),
            'roles[primary eq "True"].value',
            'only [type eq "..."] filters',
        ),
        (
            users(USER_NAME, {"target": "name..givenName", "type": "direct", "source": "givenName"}),
            "name..givenName",
            "is not a target path",
        ),
        (
            users(USER_NAME, {"target": "urn:bad urn:department", "type": "direct", "source": "department"}),
            "urn:bad urn:department",
            "not a schema URN",
        ),
        (
            users(
                USER_NAME,
                {"target": "upn", "type": "expression", "expression": "SelectUniqueValue([mail], [mailNickname])"},
            ),
            "upn",
            '"apply": "create"',
        ),
        (
            users(USER_NAME, {"target": "externalId", "type": "constant", "value": "x", "matchingPrecedence": 2}),
            "externalId",
            "needs a value per user",
        ),
        (
            users(
                USER_NAME,
                {
                    "target": "externalId",
                    "type": "direct",
                    "source": "objectId",
                    "apply": "create",
                    "matchingPrecedence": 2,
                },
            ),
            "externalId",
            'must "apply": "always"',
        ),
        (
            users({**USER_NAME, "matchingPrecedence": 0}),
            "(matching)",
            "at least one mapping needs a matchingPrecedence",
        ),
        (users({**USER_NAME, "matchingPrecedence": 2}), "userName", "leaves a gap: use 1 to 1"),
        (
            users({"target": "externalId", "type": "direct", "source": "objectId", "matchingPrecedence": 1}),
            "userName",
            "userName must be mapped",
        ),
        (
            users(
                {"target": "userName", "type": "constant", "value": "all@contoso.com"},
                {"target": "externalId", "type": "direct", "source": "objectId", "matchingPrecedence": 1},
            ),
            "userName",
            "every user the same userName",
        ),
        (users(USER_NAME, filters=[{"clauses": []}]), "scoping filter 1", "at least one clause"),
        (
            users(
                USER_NAME, filters=[{"name": "x", "clauses": [{"attribute": "city", "operator": "EQUALS", "val": 1}]}]
            ),
            "scoping filter 1 ('x'), clause 1",
            "unknown key 'val'",
        ),
        (
            users(USER_NAME, filters=[{"clauses": [{"attribute": "manager", "operator": "IS NOT NULL"}]}]),
            "scoping filter 1, clause 1 (manager IS NOT NULL)",
            "cannot filter on manager",
        ),
    ],
)
def test_each_rule_names_the_mapping_and_the_problem(data: Any, mapping: str, problem: str) -> None:
    name, text = only_problem(data)
    assert name == mapping
    assert problem in text


def test_select_unique_value_on_a_matching_attribute_breaks_two_rules() -> None:
    found = problems(
        users(
            USER_NAME,
            {
                "target": "upn",
                "type": "expression",
                "apply": "create",
                "matchingPrecedence": 2,
                "expression": "SelectUniqueValue([mail], [mailNickname])",
            },
        )
    )
    assert [m for m, _ in found] == ["upn", "upn"]
    assert "SelectUniqueValue cannot be used on a matching attribute" in found[0][1]
    assert 'must "apply": "always"' in found[1][1]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("jobtitle", "names are case-sensitive: jobTitle"),
        ("PreferredFirstName", "unknown source attribute 'PreferredFirstName'"),
        ("manager.displayName", "'manager' has no sub-properties"),
    ],
)
def test_sources_must_be_readable_from_entra(source: str, problem: str) -> None:
    for mapping in (
        {"target": "title", "type": "direct", "source": source},
        {"target": "title", "type": "expression", "expression": f"ToLower([{source}])"},
    ):
        name, text = only_problem(users(USER_NAME, mapping))
        assert name == "title" and problem in text


def test_graph_names_entra_names_computed_sources_and_directory_extensions_are_readable() -> None:
    for source in (
        "companyName",
        "telephoneNumber",
        "extensionAttribute15",
        "employeeOrgData.division",
        "originalUserPrincipalName",
        "extension_0123456789abcdef0123456789abcdef_costCenter",
    ):
        mapping_from_dict(users(USER_NAME, {"target": "title", "type": "direct", "source": source}))


def test_shared_matching_precedence_is_reported_for_each_mapping() -> None:
    found = problems(
        users(USER_NAME, {"target": "externalId", "type": "direct", "source": "objectId", "matchingPrecedence": 1})
    )
    assert [m for m, _ in found] == ["userName", "externalId"]
    assert all("combination matching is not supported" in p for _, p in found)


def test_an_expression_error_keeps_its_position() -> None:
    with pytest.raises(MappingConfigError) as info:
        mapping_from_dict(users(USER_NAME, {"target": "title", "type": "expression", "expression": "Left([a], 1, 2)"}))
    error = info.value.errors[0]
    assert isinstance(error, ExpressionSyntaxError) and error.position == 0 and error.mapping == "title"
    assert str(error).startswith("title: Left takes 2 argument(s), got 3 at position 0")


def test_every_problem_is_reported_together() -> None:
    data = users(
        {"target": "userName", "type": "expression", "expression": "Append([a]", "matchingPrecedence": 1},
        {"target": "id", "type": "direct", "source": "objectId"},
        {"target": "title", "type": "constant"},
        filters=[{"clauses": [{"attribute": "userType", "operator": "EQUALS", "value": "Member"}]}],
    )
    with pytest.raises(MappingConfigError) as info:
        mapping_from_dict(data)
    assert [e.mapping for e in info.value.errors] == [
        "title",
        "userName",
        "id",
        "scoping filter 1, clause 1 (userType EQUALS 'Member')",
    ]
    assert "4 problem(s)" in str(info.value)


def test_a_key_given_twice_in_one_object_is_reported() -> None:
    text = '{"users": {"mappings": [{"target": "userName", "type": "direct", "source": "mail", "source": "upn"}]}}'
    with pytest.raises(MappingConfigError, match="appears twice"):
        mapping_from_json(text)


def test_the_goto_default_is_todays_default_mapping() -> None:
    cfg = builtin("goto")
    rows = [(m.target, m.kind, m.source or m.expression, m.matching_precedence) for m in cfg.users]
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert rows == [
        ("userName", "direct", "userPrincipalName", 1),
        ("active", "expression", 'Switch([IsSoftDeleted], , "False", "True", "True", "False")', 0),
        ("displayName", "direct", "displayName", 0),
        ("name.givenName", "direct", "givenName", 0),
        ("name.familyName", "direct", "surname", 0),
        ('emails[type eq "work"].value', "direct", "mail", 0),
        ("externalId", "direct", "objectId", 0),
        (f"{enterprise}:department", "direct", "department", 0),
        (f"{enterprise}:employeeNumber", "direct", "employeeId", 0),
    ]
    assert mapping_from_dict(cfg.to_dict()) == cfg  # the built-ins pass their own validation


def test_graph_select_holds_what_the_mappings_and_filters_read() -> None:
    assert builtin("goto").graph_select() == sorted(
        [
            "accountEnabled",
            "department",
            "displayName",
            "employeeId",
            "givenName",
            "id",
            "mail",
            "surname",
            "userPrincipalName",
        ]
    )
    cfg = mapping_from_dict(
        users(
            USER_NAME,
            {"target": "externalId", "type": "direct", "source": "objectId"},
            {
                "target": "title",
                "type": "expression",
                "expression": "Coalesce([extensionAttribute3], [employeeOrgData.costCenter], [mobile], "
                "[IsSoftDeleted])",
            },
            {"target": "roles", "type": "expression", "expression": "AppRoleAssignmentsComplex([appRoleAssignments])"},
            {"target": "nickName", "type": "direct", "source": "originalUserPrincipalName"},
            {
                "target": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                "type": "direct",
                "source": "manager",
            },
            filters=[{"clauses": [{"attribute": "companyName", "operator": "EQUALS", "value": "Contoso"}]}],
        )
    )
    assert cfg.graph_select() == sorted(
        [
            "accountEnabled",
            "companyName",
            "displayName",
            "employeeOrgData",
            "id",
            "mobilePhone",
            "onPremisesExtensionAttributes",
            "userPrincipalName",
        ]
    )
    assert cfg.graph_expand() == ["manager"]


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


def test_the_digest_is_stable_under_reordering_and_white_space() -> None:
    base = mapping_from_dict(FULL).digest()
    assert mapping_from_json(json.dumps(_reordered(FULL), indent=4)).digest() == base
    shuffled = json.loads(json.dumps(FULL))
    shuffled["users"]["mappings"].reverse()
    shuffled["users"]["scopingFilters"].reverse()
    shuffled["users"]["scopingFilters"][1]["clauses"].reverse()
    shuffled["users"]["scopingFilters"][1]["name"] = "renamed"
    shuffled["users"]["mappings"][3]["expression"] = 'Join(" ",[givenName],[surname])'  # the displayName one
    assert mapping_from_dict(shuffled).digest() == base
    assert len(base) == 64 and base == mapping_from_dict(FULL).digest()


def _changed(path: list[Any], value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(FULL))
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


M = ["users", "mappings"]
F = ["users", "scopingFilters"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ([*M, 2, "expression"], 'Switch([IsSoftDeleted], , "False", "true", "True", "False")'),
        ([*M, 3, "expression"], 'Join("  ", [givenName], [surname])'),
        ([*M, 3, "default"], "Nameless"),
        ([*M, 3, "clearOnNull"], False),
        ([*M, 4, "apply"], "always"),
        ([*M, 4, "value"], "Staff "),
        ([*M, 1, "matchingPrecedence"], KeyError),
        ([*M, 1, "source"], "mailNickname"),
        ([*M, 5, "target"], "nickname"),
        ([*M, 5, "default"], KeyError),
        ([*F, 0, "clauses", 0, "value"], "Goto"),
        ([*F, 0, "clauses", 0, "operator"], "NOT EQUALS"),
        ([*F, 1], KeyError),
    ],
)
def test_any_semantic_change_changes_the_digest(path: list[Any], value: Any) -> None:
    assert mapping_from_dict(_changed(path, value)).digest() != mapping_from_dict(FULL).digest()


def test_constant_types_are_part_of_the_digest() -> None:
    text = MappingConfig(users=(AttributeMapping("userName", "constant", constant="1"),)).digest()
    number = MappingConfig(users=(AttributeMapping("userName", "constant", constant=1),)).digest()
    assert text != number


def test_the_example_file_in_the_docs_loads() -> None:
    text = (Path(__file__).parents[2] / "docs" / "mappings.md").read_text(encoding="utf-8")
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    cfg = mapping_from_json(example, origin="docs/mappings.md")
    assert [m.target for m in cfg.matching()] == ["userName", "externalId"]
    assert cfg.scoping[0].name == "GoTo users"
