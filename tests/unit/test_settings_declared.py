"""Each setting is declared once (shared/settings.py) and read by a parser of its declared type:
a boolean's "false" is False, a choice is the enum the code compares against, and the text a
Settings object writes back (`environment()`) reads back as the same Settings."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from typing import Any, get_type_hints

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import redaction
from shared.goto.scim import GoToScimClient
from shared.model import DefaultAccessOnly, HardDeleteAction
from shared.scim.dialect import PatchStyle, ScimProfile
from shared.settings import (
    SETTINGS,
    Choice,
    DomainList,
    Flag,
    Percent,
    Positive,
    RoleLicenses,
    Schedule,
    Settings,
    SettingsError,
    TablePrefix,
    Text,
    Url,
    Whole,
    declared,
    describe,
    setting,
)

HINTS = get_type_hints(Settings)


@pytest.fixture(autouse=True)
def no_secrets_left_behind() -> Iterator[None]:
    """Settings.from_env registers the secret settings' values with the scrubber: the random ones
    drawn here must not scrub the text of later tests."""
    yield
    redaction.forget_all()


FLAGS = sorted(name for name, hint in HINTS.items() if hint is bool)

# The spellings of a boolean app setting, written out here rather than taken from the parser.
TRUE_WORDS = ["1", "true", "yes", "on"]
FALSE_WORDS = ["0", "false", "no", "off", ""]


def spelled(words: list[str]) -> st.SearchStrategy[str]:
    """A word in any mix of upper and lower case, with blanks around it."""
    blank = st.text(alphabet=" \t", max_size=2)

    def mixed(word: str) -> st.SearchStrategy[str]:
        return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
            lambda ups: "".join(c.upper() if up else c for c, up in zip(word, ups, strict=True))
        )

    return st.tuples(blank, st.sampled_from(words).flatmap(mixed), blank).map("".join)


def test_every_setting_is_read_by_a_parser_of_its_declared_type() -> None:
    assert set(SETTINGS) == set(HINTS), "a field of Settings is not in the registry"
    for name, declared_setting in SETTINGS.items():
        assert declared_setting.parser.produces == HINTS[name], name
        assert declared_setting.parser.parse(declared_setting.default) == getattr(Settings(), name), name


def test_a_boolean_setting_is_never_read_as_text() -> None:
    assert FLAGS, "no boolean setting"
    for name in FLAGS:
        assert isinstance(SETTINGS[name].parser, Flag), name
        assert Settings.from_env({SETTINGS[name].env: "false"}).__getattribute__(name) is False


@given(name=st.sampled_from(FLAGS), word=spelled(FALSE_WORDS))
def test_any_spelling_of_false_is_false(name: str, word: str) -> None:
    assert getattr(Settings.from_env({SETTINGS[name].env: word}), name) is False


@given(name=st.sampled_from(FLAGS), word=spelled(TRUE_WORDS))
def test_any_spelling_of_true_is_true(name: str, word: str) -> None:
    assert getattr(Settings.from_env({SETTINGS[name].env: word}), name) is True


@given(name=st.sampled_from(FLAGS), word=st.text(string.ascii_letters + string.digits + " ", max_size=8))
def test_a_boolean_that_is_neither_fails_naming_the_setting(name: str, word: str) -> None:
    if word.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return
    with pytest.raises(SettingsError, match=f"^{SETTINGS[name].env}: expected true or false"):
        Settings.from_env({SETTINGS[name].env: word})


def test_a_field_whose_parser_reads_another_type_is_refused_when_declared() -> None:
    with pytest.raises(TypeError, match=r"declared bool but Text reads X_FLAG as str"):

        @declared
        class _TextFlag:
            flag: bool = setting("X_FLAG", "false", "a flag read as text", Text())


def test_a_field_without_a_declaration_or_a_parser_is_refused() -> None:
    with pytest.raises(TypeError, match=r"not declared with setting"):

        @declared
        class _Bare:
            count: int = 3

    with pytest.raises(TypeError, match=r"no parser for list\[int\]"):

        @declared
        class _Unknown:
            ports: list[int] = setting("X_PORTS", "", "ports")


# Choices: the enums the code that uses each setting compares against.
CHOICES = {
    "goto_patch_style": PatchStyle,
    "scim_profile": ScimProfile,
    "default_access_only": DefaultAccessOnly,
    "hard_delete_action": HardDeleteAction,
}


def test_every_choice_is_an_enum_shared_with_its_code() -> None:
    choices = {name: s.parser.choices for name, s in SETTINGS.items() if isinstance(s.parser, Choice)}
    assert choices == CHOICES


@given(data=st.data())
def test_a_choice_in_any_case_reads_as_its_enum_member(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(CHOICES)))
    member = data.draw(st.sampled_from(list(CHOICES[name])))
    word = data.draw(spelled([member.value]))
    value = getattr(Settings.from_env({SETTINGS[name].env: word}), name)
    assert value is member


def test_a_choice_given_as_text_in_code_becomes_its_enum() -> None:
    settings = Settings(goto_patch_style="put", hard_delete_action="disable")  # type: ignore[arg-type]
    assert settings.goto_patch_style is PatchStyle.PUT and settings.hard_delete_action is HardDeleteAction.DISABLE
    assert settings.with_overrides(scim_profile="scim2").scim_profile is ScimProfile.SCIM2
    with pytest.raises(SettingsError, match=r"^HARD_DELETE_ACTION: expected one of delete, disable"):
        Settings(hard_delete_action="archive")  # type: ignore[arg-type]


def test_the_scim_client_takes_the_settings_enums() -> None:
    client = GoToScimClient("http://127.0.0.1:1/identity/v1", None, patch_style=PatchStyle.PUT)  # type: ignore[arg-type]
    assert client.patch_style_in_use is PatchStyle.PUT and client.profile is ScimProfile.GOTO


# Values of each parser's type, for the round trip below. A parser without a strategy here fails
# the test, so a new kind of setting gets one.
NAMES = st.text(string.ascii_letters + string.digits + "-_.:/ @=;", max_size=30)
STRATEGIES: dict[type, Any] = {
    Text: lambda p: NAMES,
    Flag: lambda p: st.booleans(),
    Whole: lambda p: st.integers(min_value=p.minimum, max_value=10**9),
    Positive: lambda p: st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False),
    Percent: lambda p: st.floats(min_value=0, max_value=100),
    Choice: lambda p: st.sampled_from(list(p.choices)),
    Url: lambda p: (
        st.sampled_from(["https://example.com/x", "http://127.0.0.1:8080/api", "https://a.example"])
        | (st.just("") if not p.required else st.nothing())
    ),
    Schedule: lambda p: st.sampled_from(["0 */5 * * * *", "0 0 9 * * Mon-Fri", "01:00:00"]),
    TablePrefix: lambda p: st.from_regex(r"[a-z][a-z0-9]{0,20}", fullmatch=True),
    DomainList: lambda p: st.lists(st.from_regex(r"[a-z0-9]{1,10}\.(com|org)", fullmatch=True), max_size=3).map(tuple),
    RoleLicenses: lambda p: st.dictionaries(NAMES, st.lists(NAMES, max_size=3).map(tuple), max_size=3),
}


def test_every_kind_of_parser_has_a_strategy_here() -> None:
    assert {type(s.parser) for s in SETTINGS.values()} <= set(STRATEGIES)


@st.composite
def any_settings(draw: st.DrawFn) -> Settings:
    values = {name: draw(STRATEGIES[type(s.parser)](s.parser)) for name, s in SETTINGS.items()}
    if values["scim_profile"] is ScimProfile.SCIM2:
        values["goto_patch_style"] = PatchStyle.PUT
        values["role_licenses"] = {}
    return Settings(**values)


@given(settings=any_settings())
def test_the_environment_a_settings_writes_reads_back_as_the_same_settings(settings: Settings) -> None:
    env = settings.environment()
    assert set(env) == {s.env for s in SETTINGS.values()}
    assert Settings.from_env(env) == settings


def test_describe_lists_every_setting_with_its_type_and_what_it_accepts() -> None:
    listed = {d["variable"]: d for d in json.loads(describe())}
    assert list(listed) == [s.env for s in SETTINGS.values()]
    assert listed["GOTO_SEND_ACTIVE"] == {
        "variable": "GOTO_SEND_ACTIVE",
        "default": "true",
        "meaning": SETTINGS["goto_send_active"].help,
        "type": "bool",
        "accepts": "true/false",
    }
    assert listed["HARD_DELETE_ACTION"]["accepts"] == "delete, disable"
    assert listed["CYCLE_LEASE_SECONDS"]["accepts"] == "whole number ≥ 6"


def test_secrets_are_left_out_of_the_repr() -> None:
    shown = repr(Settings(goto_pat="pat-value-1", storage_connection_string="AccountKey=key-value-2"))
    assert "pat-value-1" not in shown and "key-value-2" not in shown
