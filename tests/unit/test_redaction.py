"""The one scrubber for upstream text: known secrets in every encoding an echo might use, and
credential-shaped values whatever their value; ordinary error text left readable."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import redaction
from shared.goto.errors import AuthError, GoToError
from shared.redaction import MASK, register, scrub, summary

SECRET = "cs-7Hq!x/9+Zk=pQ"
REFRESH = "rt-Qm3v_8uXn0-ZpL4sYd"


@pytest.fixture(autouse=True)
def _clean_registry():
    redaction.forget_all()
    yield
    redaction.forget_all()


def encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        base64.b64encode(raw).decode(),
    ]


def echo_page(client_id: str, secret: str, refresh: str) -> list[str]:
    """What echoing token endpoints send back, in several styles."""
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    form = urlencode({"grant_type": "refresh_token", "refresh_token": refresh})
    return [
        json.dumps({"headers": {"Authorization": f"Basic {basic}"}, "body": form}),
        f"POST /oauth/token HTTP/1.1\r\nAuthorization: Basic {basic}\r\nContent-Type: x\r\n\r\n{form}",
        "<html><pre>" + quote(f"Authorization=Basic {basic}&{form}", safe="") + "</pre></html>",
        json.dumps({"form": {"refresh_token": refresh, "client_secret": secret}, "args": {}}),
        repr({"refresh_token": refresh, "client_secret": secret}),
    ]


@pytest.mark.parametrize("style", range(5))
def test_an_echoed_token_request_keeps_no_credential_even_unregistered(style):
    page = echo_page("client-1", SECRET, REFRESH)[style]
    out = scrub(page)
    for secret in (SECRET, REFRESH):
        for spelled in encodings(secret):
            assert spelled not in out
    assert base64.b64encode(f"client-1:{SECRET}".encode()).decode() not in out


def test_registered_secrets_are_removed_in_every_encoding_anywhere():
    register(SECRET, REFRESH)
    for spelled in encodings(SECRET) + encodings(REFRESH):
        assert scrub(f"upstream said: {spelled} (sic)") == f"upstream said: {MASK} (sic)"


def test_credential_shapes_are_masked_and_plain_words_kept():
    text = (
        'WWW-Authenticate: Bearer error="invalid_token"; HTTP Basic client authentication is required; '
        "Bearer eyJhbGciOi.eyJzdWIiOiIx.sig-nature; code=abc123&state=xyz; int_err_code=E42; "
        'access_token=tok%2Fen; password=hunter22 {"code": "NOT_FOUND"}'
    )
    out = scrub(text)
    assert 'Bearer error="invalid_token"' in out
    assert "HTTP Basic client authentication is required" in out
    assert "eyJ" not in out and "abc123" not in out and "tok%2Fen" not in out and "hunter22" not in out
    assert "state=xyz" in out and "int_err_code=E42" in out
    assert '{"code": "NOT_FOUND"}' in out  # GoTo's own error code is not an authorization code


def test_summary_is_one_scrubbed_line_of_bounded_length():
    text = "line one\n\n  refresh_token=" + REFRESH + "\n" + "x" * 1000
    out = summary(text, limit=120)
    assert "\n" not in out and REFRESH not in out and len(out) <= 120 and out.endswith("…")


def test_every_goto_error_is_scrubbed_where_it_is_made():
    register(SECRET)
    err = GoToError(f"failed: {SECRET}", detail=f"refresh_token={REFRESH}", body=quote(SECRET, safe=""), goto_code="x")
    assert SECRET not in str(err) and REFRESH not in err.detail and quote(SECRET, safe="") not in err.body
    assert SECRET not in repr(err)
    auth = AuthError("x", goto_code="Bearer " + "Z" * 500)
    assert len(auth.goto_code) <= 100 and "ZZZZ" not in auth.goto_code


_SECRET_CHARS = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/=!*'()%&?#@:"),
    min_size=8,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(secret=_SECRET_CHARS, refresh=_SECRET_CHARS, style=st.integers(0, 4), noise=st.text(max_size=40))
def test_no_registered_secret_survives_an_echo_in_any_style(secret, refresh, style, noise):
    register(secret, refresh, f"client-1:{secret}")
    page = noise + echo_page("client-1", secret, refresh)[style] + noise
    out = scrub(page)
    # The oracle: none of the spellings, computed here with the standard library alone.
    for value in (secret, refresh):
        for spelled in encodings(value):
            if len(spelled) >= redaction.MIN_SECRET_LENGTH:
                assert spelled not in out
