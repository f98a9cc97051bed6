"""Entra's expression syntax: what parses, and where a parse error points."""

from __future__ import annotations

import re

import pytest

from shared.mapping import ExpressionSyntaxError, MappingError, parse
from shared.mapping.expressions import to_source
from shared.mapping.expressions.parser import MAX_DEPTH, Attribute, Call, Comparison, Empty, Literal
from tests.mapping.helpers import run


def test_strings_escape_quotes_and_backslashes_with_a_backslash() -> None:
    assert run(r'"Company name: \"Contoso\""') == 'Company name: "Contoso"'
    assert run(r'"C:\\temp"') == "C:\\temp"
    assert run(r'"\d+"') == "\\d+"  # any other backslash is kept, as regexes need


def test_empty_arguments_are_kept_in_place() -> None:
    node = parse('Switch([IsSoftDeleted], , "False", "True", "True", "False")')
    assert isinstance(node, Call)
    assert isinstance(node.args[1], Empty)
    assert node.args[0] == Attribute("IsSoftDeleted", 7)
    trailing = parse('Replace([mail], "@contoso.com", , ,"", ,)')
    assert isinstance(trailing, Call) and len(trailing.args) == 7
    assert [type(a).__name__ for a in trailing.args] == [
        "Attribute",
        "Literal",
        "Empty",
        "Empty",
        "Literal",
        "Empty",
        "Empty",
    ]


def test_numbers_booleans_and_vb_constants() -> None:
    assert parse("-10") == Literal(-10, 0, "-10")
    assert parse("&HF7") == Literal(247, 0, "&HF7")
    assert parse("True") == Literal(True, 0)
    assert run("IIF(False, 1, 2.5)") == 2.5


def test_white_space_and_new_lines_between_tokens() -> None:
    assert run('\n  Join( "-" ,\n\t"a" , "b" )  ') == "a-b"


def test_a_comparison_is_an_expression() -> None:
    node = parse('[country]="USA"')
    assert isinstance(node, Comparison) and node.op == "=" and node.pos == 9


def test_sub_properties_read_from_their_parent_object() -> None:
    assert run("[employeeOrgData.costCenter]", employeeOrgData={"costCenter": "CC-1", "division": "R&D"}) == "CC-1"
    assert run("[onPremisesExtensionAttributes.extensionAttribute3]", onPremisesExtensionAttributes={}) is None


def test_canonical_source_ignores_white_space_and_escapes() -> None:
    a = to_source(parse('Append( [mail] ,"@x.com")'))
    b = to_source(parse('Append([mail], "@x.com")'))
    assert a == b == 'Append([mail], "@x.com")'
    assert to_source(parse(to_source(parse(r'Replace([a], , "\\d\"", , "", , )')))) == to_source(
        parse(r'Replace([a], , "\\d\"", , "", , )')
    )


@pytest.mark.parametrize(
    ("expression", "position", "message"),
    [
        ("", 0, "empty"),
        ('Append([mail], "x"', 6, "missing )"),
        ('Append([mail] "x")', 14, "expected , or )"),
        ('Append([mail], "x))', 15, "unterminated string"),
        ('Append([mail, "x")', 7, "unterminated attribute reference"),
        ('Append([ma il], "x")', 8, "not an attribute name"),
        ('Append([mail] ; "x")', 14, "unexpected character ';'"),
        ('append([mail], "x")', 0, "case-sensitive: Append"),
        ('Apend([mail], "x")', 0, "did you mean Append"),
        ('Join(",", [a], Frob([b]))', 15, "unknown function 'Frob'"),
        ('Left("John Doe")', 0, "takes 2 argument(s), got 1"),
        ("Guid(1)", 0, "takes 0 argument(s)"),
        ('Switch([a], "d", "k")', 0, "at least 4"),
        ('Switch([a], "d", "k", "v", "k2")', 0, "even number"),
        ('Append(, "x")', 7, "argument 1 of Append cannot be empty"),
        ('Append([mail], "x") "y"', 20, "after the end"),
        ('Append([mail], "x"))', 19, "after the end"),
        ("mail", 0, "write attributes in brackets ([mail])"),
        ("true", 0, "case-sensitive: True"),
        ("Append", 0, "is a function"),
        ('IIF([a]="x" = "y", 1, 2)', 12, "only one comparison"),
        ("IIF([a]=, 1, 2)", 8, "unexpected ','"),
        ('DateAdd("days", 1, Now())', 8, "unknown interval 'days'"),
        ('Replace([a], , "(a+)+", , "", , )', 15, "nested quantifiers"),
        ('Replace([a], , "(", , "", , )', 15, "not a valid regular expression"),
        ('FormatDateTime([d], , "yyyy-MM-dd\'", "yyyy")', 22, "unterminated quoted text"),
        ('FormatDateTime([d], "Sometimes", "yyyy", "yyyy")', 20, "DateTimeStyles"),
        ('ToLower([a], "english!")', 13, "culture name"),
        ("Mid([a], 0, 1)", 9, "start starts at 1"),
        ("SingleAppRoleAssignment([roles])", 24, "[appRoleAssignments]"),
        ("RandomString(4, 2, 2, 2, 0)", 0, "more than the length"),
        ('Join("", SelectUniqueValue([a], [b]))', 9, "outermost"),
        ("12345678901234567890123", 0, "number longer"),
        ("#", 0, "unexpected character '#'"),
    ],
)
def test_parse_errors_point_at_the_problem(expression: str, position: int, message: str) -> None:
    with pytest.raises(ExpressionSyntaxError, match=re.escape(message)) as info:
        parse(expression)
    assert info.value.position == position
    assert isinstance(info.value, MappingError)


def test_a_parse_error_shows_a_caret_under_the_position() -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        parse('Join(",", [a], Frob([b]))')
    text = str(info.value)
    line, caret = text.splitlines()[-2:]
    assert caret.index("^") - 2 == 15
    assert line[caret.index("^")] == "F"
    assert "at position 15" in text


def test_expressions_longer_than_entras_limit_are_refused() -> None:
    long = "Join(" + ", ".join(['"x"'] * 2600) + ")"
    assert len(long) > 10_000
    with pytest.raises(ExpressionSyntaxError, match="Entra's limit is 10000") as info:
        parse(long)
    assert info.value.position == 10_000


def test_nesting_is_bounded() -> None:
    ok = "ToLower(" * MAX_DEPTH + '"a"' + ")" * MAX_DEPTH
    assert run(ok) == "a"
    too_deep = "ToLower(" * (MAX_DEPTH + 1) + '"a"' + ")" * (MAX_DEPTH + 1)
    with pytest.raises(ExpressionSyntaxError, match="nest deeper") as info:
        parse(too_deep)
    assert info.value.position == len("ToLower(") * MAX_DEPTH
