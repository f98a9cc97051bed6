"""GoTo emulator: OAuth 2.0 endpoints (docs/reference/goto-api.md#oauth)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from emulators.goto import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PAT, GoToEmulator

Factory = Callable[..., GoToEmulator]
REDIRECT = "http://127.0.0.1:7071/api/goto/callback"
BASIC = httpx.BasicAuth(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)


@pytest.fixture
def goto(make_goto_emulator: Factory) -> GoToEmulator:
    return make_goto_emulator(rate_limit=0)


def authorize(goto: GoToEmulator, **params: str) -> dict[str, str]:
    query = {"client_id": DEFAULT_CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT, **params}
    r = httpx.get(goto.authorize_url, params=query, follow_redirects=False)
    assert r.status_code == 302, r.text
    location = r.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token(goto: GoToEmulator, auth: Any = BASIC, **form: str) -> httpx.Response:
    return httpx.post(goto.token_url, data=form, auth=auth)


def code_grant(goto: GoToEmulator) -> dict[str, Any]:
    code = authorize(goto)["code"]
    r = token(goto, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert r.status_code == 200, r.text
    return r.json()


def scim_status(goto: GoToEmulator, access_token: str) -> int:
    return httpx.get(goto.scim_url + "/Users", headers={"Authorization": f"Bearer {access_token}"}).status_code


def test_authorization_code_flow_with_single_use_code(goto: GoToEmulator) -> None:
    params = authorize(goto, state="xyz")
    assert params["state"] == "xyz"
    form = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT}
    r = token(goto, **form)
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["principal"] == "admin@contoso.com"
    assert "identity:scim.org" in body["scope"].split()
    assert body["refresh_token"]
    assert "account_key" not in body  # no longer returned (docs/reference/goto-api.md#oauth)
    assert scim_status(goto, body["access_token"]) == 200
    again = token(goto, **form)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_redirect_uri_must_match(goto: GoToEmulator) -> None:
    code = authorize(goto)["code"]
    r = token(goto, grant_type="authorization_code", code=code, redirect_uri="http://127.0.0.1/other")
    assert r.json()["error"] == "invalid_grant"


def test_authorize_unknown_client_is_400(goto: GoToEmulator) -> None:
    r = httpx.get(goto.authorize_url, params={"client_id": "nope", "response_type": "code", "redirect_uri": REDIRECT})
    assert r.status_code == 400


def test_registered_redirect_uris_are_enforced(goto: GoToEmulator) -> None:
    goto.register_client("strict", "s3cret", ["https://app.example/cb"])
    ok = httpx.get(goto.authorize_url, params={"client_id": "strict", "response_type": "code"})
    assert ok.status_code == 302
    assert ok.headers["Location"].startswith("https://app.example/cb?code=")
    bad = {"client_id": "strict", "response_type": "code", "redirect_uri": REDIRECT}
    assert httpx.get(goto.authorize_url, params=bad).status_code == 400


def test_basic_client_authentication_is_required(goto: GoToEmulator) -> None:
    code = authorize(goto)["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    missing = token(goto, auth=None, **form, client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET)
    assert missing.status_code == 401
    assert missing.json()["error"] == "invalid_client"
    wrong = token(goto, auth=httpx.BasicAuth(DEFAULT_CLIENT_ID, "wrong"), **form)
    assert wrong.status_code == 401
    assert token(goto, **form).status_code == 200  # the code was not burnt by the failed attempts


def test_token_body_must_be_form_encoded(goto: GoToEmulator) -> None:
    r = httpx.post(goto.token_url, json={"grant_type": "personal_access_token", "pat": DEFAULT_PAT}, auth=BASIC)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


def test_refresh_without_rotation_keeps_old_token(goto: GoToEmulator) -> None:
    refresh = code_grant(goto)["refresh_token"]
    for _ in range(2):
        r = token(goto, grant_type="refresh_token", refresh_token=refresh)
        assert r.status_code == 200
        assert "refresh_token" not in r.json()  # absent -> keep the old one (docs/reference/goto-api.md#token-rotation)
        assert scim_status(goto, r.json()["access_token"]) == 200


def test_refresh_with_rotation_revokes_old_token(goto: GoToEmulator) -> None:
    goto.set_switch("refresh_rotation", "always")
    old = code_grant(goto)["refresh_token"]
    r = token(goto, grant_type="refresh_token", refresh_token=old)
    new = r.json()["refresh_token"]
    assert new != old
    assert token(goto, grant_type="refresh_token", refresh_token=old).json()["error"] == "invalid_grant"
    assert token(goto, grant_type="refresh_token", refresh_token=new).status_code == 200


def test_refresh_rotation_sometimes_is_every_other_refresh(goto: GoToEmulator) -> None:
    goto.set_switch("refresh_rotation", "sometimes")
    refresh = code_grant(goto)["refresh_token"]
    seen = []
    for _ in range(4):
        body = token(goto, grant_type="refresh_token", refresh_token=refresh).json()
        seen.append("refresh_token" in body)
        refresh = body.get("refresh_token", refresh)
    assert seen == [False, True, False, True]


def test_personal_access_token_grant(goto: GoToEmulator) -> None:
    r = token(goto, grant_type="personal_access_token", pat=DEFAULT_PAT)
    assert r.status_code == 200
    body = r.json()
    assert body["principal"] == "admin@contoso.com"
    assert "refresh_token" not in body
    assert scim_status(goto, body["access_token"]) == 200
    assert token(goto, grant_type="personal_access_token", pat="nope").json()["error"] == "invalid_grant"
    pat = goto.create_pat()
    assert token(goto, grant_type="personal_access_token", pat=pat).status_code == 200


def test_client_credentials_refused_unless_switched_on(goto: GoToEmulator) -> None:
    r = token(goto, grant_type="client_credentials")
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"
    goto.set_switch("client_credentials", True)
    r = token(goto, grant_type="client_credentials")
    assert r.status_code == 200
    assert scim_status(goto, r.json()["access_token"]) == 200


def test_password_grant_is_not_offered(goto: GoToEmulator) -> None:
    r = token(goto, grant_type="password", username="admin@contoso.com", password="x")
    assert r.json()["error"] == "unsupported_grant_type"


def test_access_token_expires_after_3600_seconds(goto: GoToEmulator) -> None:
    access = code_grant(goto)["access_token"]
    goto.advance_clock(3599)
    assert scim_status(goto, access) == 200
    goto.advance_clock(2)
    assert scim_status(goto, access) == 403


def test_revoked_refresh_token_is_invalid_grant(goto: GoToEmulator) -> None:
    first = code_grant(goto)["refresh_token"]
    second = code_grant(goto)["refresh_token"]
    assert goto.revoke_refresh_token(first)
    assert token(goto, grant_type="refresh_token", refresh_token=first).json()["error"] == "invalid_grant"
    r = httpx.post(goto.url + "/_emulator/refresh-tokens/revoke", json={})
    assert r.json() == {"revoked": 1}
    assert token(goto, grant_type="refresh_token", refresh_token=second).json()["error"] == "invalid_grant"


def test_refresh_token_expires_after_30_idle_days(goto: GoToEmulator) -> None:
    refresh = code_grant(goto)["refresh_token"]
    goto.advance_clock(29 * 86400)
    assert token(goto, grant_type="refresh_token", refresh_token=refresh).status_code == 200  # use resets idle
    goto.advance_clock(31 * 86400)
    assert token(goto, grant_type="refresh_token", refresh_token=refresh).json()["error"] == "invalid_grant"


def test_login_hint_picks_a_non_admin_principal(goto: GoToEmulator) -> None:
    goto.add_user(userName="joe@contoso.com")
    code = authorize(goto, login_hint="joe@contoso.com")["code"]
    body = token(goto, grant_type="authorization_code", code=code, redirect_uri=REDIRECT).json()
    assert body["principal"] == "joe@contoso.com"
    assert scim_status(goto, body["access_token"]) == 401  # no org role
