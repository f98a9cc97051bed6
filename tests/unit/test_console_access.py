"""Who may use the console: the X-MS-CLIENT-PRINCIPAL header read as hostile input, the admin
role, the platform switch that makes the header trustworthy, and the same-origin rule for
requests that change something."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.ops.access import (
    ADMIN_ROLE,
    ConsoleClosed,
    CrossSiteRequest,
    Forbidden,
    Unauthenticated,
    authorize,
    check_same_origin,
    parse_client_principal,
)

ON = {"WEBSITE_AUTH_ENABLED": "True"}
ROLE_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
OID_URI = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def encode(doc: Any) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def easy_auth_principal(name: str = "maria@contoso.com", roles: tuple[str, ...] = (ADMIN_ROLE,)) -> dict[str, Any]:
    """The shape App Service Authentication injects for an Entra user (claims after its mapping)."""
    return {
        "auth_typ": "aad",
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "role_typ": ROLE_URI,
        "claims": [
            {"typ": "aud", "val": "00000000-1111-2222-3333-444444444444"},
            {"typ": OID_URI, "val": "6a1b8a3e-0000-4000-8000-000000000001"},
            {"typ": "preferred_username", "val": name},
            {"typ": "name", "val": "Maria Garcia"},
            *({"typ": "roles", "val": role} for role in roles),
        ],
    }


def test_an_entra_admin_is_recognised_with_name_object_id_and_role() -> None:
    principal = parse_client_principal(encode(easy_auth_principal()))
    assert principal.name == "maria@contoso.com"
    assert principal.object_id == "6a1b8a3e-0000-4000-8000-000000000001"
    assert principal.is_admin and principal.identity_provider == "aad"


def test_roles_under_the_role_type_the_principal_names_count_too() -> None:
    doc = easy_auth_principal(roles=())
    doc["claims"].append({"typ": ROLE_URI, "val": ADMIN_ROLE})
    assert parse_client_principal(encode(doc)).is_admin


def test_a_role_with_another_case_or_another_app_is_not_the_admin_role() -> None:
    for role in ("gotosync.admin", "Admin", "Gotosync.Admin ", "Gotosync.Reader"):
        assert not parse_client_principal(encode(easy_auth_principal(roles=(role,)))).is_admin, role


def test_unpadded_base64_is_accepted_as_the_platform_may_send_it() -> None:
    value = encode(easy_auth_principal()).rstrip("=")
    assert parse_client_principal(value).is_admin


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("", "empty"),
        ("!!!not base64!!!", "base64"),
        (base64.b64encode(b"\xff\xfe").decode(), "JSON"),
        (encode([1, 2]), "object"),
        (encode({"claims": "roles"}), "claims"),
        (encode({"claims": [{"typ": "roles", "val": 7}]}), "{typ, val}"),
        (encode({"claims": [{"typ": "roles", "val": ADMIN_ROLE}]}), "names nobody"),
        (base64.b64encode(b'{"claims":[' + b",".join([b'{"typ":"x","val":"y"}'] * 1001) + b"]}").decode(), "1000"),
        ("A" * 40_000, "longer"),
        (encode({"claims": [], "role_typ": 5}), "role_typ"),
    ],
)
def test_a_malformed_principal_is_refused_naming_what_is_wrong(value: str, names: str) -> None:
    with pytest.raises(Unauthenticated, match="X-MS-CLIENT-PRINCIPAL") as caught:
        parse_client_principal(value)
    assert names in str(caught.value)


def test_control_characters_never_reach_the_name_shown_and_logged() -> None:
    principal = parse_client_principal(encode(easy_auth_principal(name="eve\u202e\n@contoso.com\x00")))
    assert principal.name == "eve@contoso.com"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_header_text_is_a_principal_or_a_clear_refusal(value: str) -> None:
    refusal = ""
    try:
        parse_client_principal(value)
    except Unauthenticated as exc:
        refusal = str(exc)
    assert refusal == "" or "X-MS-CLIENT-PRINCIPAL" in refusal


claim_types = st.sampled_from(["roles", ROLE_URI, "groups", "name", "preferred_username", OID_URI, "scp", "custom"])
claim_values = st.sampled_from([ADMIN_ROLE, "Gotosync.Reader", "someone@contoso.com", "abc", "", "Admin"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(claim_types, claim_values), max_size=12), st.sampled_from(["", ROLE_URI, "groups"]))
def test_admin_exactly_when_a_role_claim_holds_the_admin_role(claims: list[tuple[str, str]], role_typ: str) -> None:
    doc = {"auth_typ": "aad", "role_typ": role_typ, "claims": [{"typ": t, "val": v} for t, v in claims]}
    # The oracle: a role claim is "roles", the documented role claim URI, or the type the principal names.
    role_types = {"roles", ROLE_URI} | ({role_typ} if role_typ else set())
    expected = any(t in role_types and v == ADMIN_ROLE for t, v in claims)
    named = any(t in ("name", "preferred_username", OID_URI) and v for t, v in claims)
    try:
        principal = parse_client_principal(encode(doc))
    except Unauthenticated:
        assert not named
        return
    assert principal.is_admin == expected


def test_without_app_service_authentication_the_console_is_closed_even_to_a_perfect_header() -> None:
    headers = {"x-ms-client-principal": encode(easy_auth_principal())}
    for env in ({}, {"WEBSITE_AUTH_ENABLED": "False"}, {"WEBSITE_AUTH_ENABLED": ""}):
        with pytest.raises(ConsoleClosed) as caught:
            authorize(headers, env)
        assert caught.value.http_status == 503 and "App Service Authentication" in caught.value.fix


def test_nobody_signed_in_is_401_and_a_user_without_the_role_is_403() -> None:
    with pytest.raises(Unauthenticated) as nobody:
        authorize({}, ON)
    assert nobody.value.http_status == 401
    with pytest.raises(Forbidden) as reader:
        authorize({"x-ms-client-principal": encode(easy_auth_principal(roles=("Gotosync.Reader",)))}, ON)
    assert reader.value.http_status == 403 and ADMIN_ROLE in str(reader.value) and ADMIN_ROLE in reader.value.fix


def test_an_admin_is_let_in() -> None:
    assert authorize({"x-ms-client-principal": encode(easy_auth_principal())}, ON).name == "maria@contoso.com"


PAGE = {
    "host": "func-gotosync.azurewebsites.net",
    "origin": "https://func-gotosync.azurewebsites.net",
    "x-gotosync-console": "1",
    "content-type": "application/json",
    "sec-fetch-site": "same-origin",
}


def test_the_console_page_may_change_things() -> None:
    check_same_origin("POST", PAGE)
    check_same_origin("POST", {k: v for k, v in PAGE.items() if k != "sec-fetch-site"})
    check_same_origin("POST", {**PAGE, "content-type": "application/json; charset=utf-8"})
    behind_a_gateway = {**PAGE, "host": "10.0.0.4:8080", "x-forwarded-host": "func-gotosync.azurewebsites.net"}
    check_same_origin("POST", behind_a_gateway)


@pytest.mark.parametrize(
    "change",
    [
        {"origin": "https://evil.example"},
        {"origin": "https://func-gotosync.azurewebsites.net.evil.example"},
        {"origin": "null"},
        {"x-gotosync-console": None},
        {"x-gotosync-console": "0"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "text/plain"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": None, "sec-fetch-site": None},
    ],
    ids=lambda change: ",".join(f"{k}={v}" for k, v in change.items()),
)
def test_a_state_changing_request_from_elsewhere_is_refused(change: dict[str, str | None]) -> None:
    headers = {k: v for k, v in {**PAGE, **change}.items() if v is not None}
    with pytest.raises(CrossSiteRequest):
        check_same_origin("POST", headers)


def test_reads_need_no_origin() -> None:
    check_same_origin("GET", {})
