"""Status -> typed error, and every error-body style GoTo has been seen to use
(docs/reference/goto-api.md#error-bodies, docs/reference/goto-api.md#u7)."""

from __future__ import annotations

import json

import pytest

from shared.goto.errors import (
    SERVICE_INCOMPATIBLE,
    AuthError,
    BadRequest,
    Conflict,
    GoToError,
    LicenseLimitExceeded,
    NotFound,
    Op,
    RateLimited,
    TransientError,
    error_from_status,
    parse_error_body,
    parse_retry_after,
    redact,
)

CREATE = Op("create user", "alice@contoso.com")
READ = Op("read user", "1234567890123456789", anchored=True)


def err(status: int, body: object = b"", op: Op = CREATE, method: str = "POST", headers=None) -> GoToError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return error_from_status(status, parse_error_body(raw, headers or {}), op, method=method)


@pytest.mark.parametrize(
    ("status", "cls", "code", "retryable"),
    [
        (400, BadRequest, "UnprocessableEntity", False),
        (401, AuthError, "Unauthorized", False),
        (403, AuthError, "Unauthorized", False),
        (404, NotFound, "NotFound", False),
        (405, BadRequest, SERVICE_INCOMPATIBLE, False),
        (408, TransientError, "Timeout", True),
        (409, Conflict, "EntryConflict", False),
        (415, BadRequest, SERVICE_INCOMPATIBLE, False),
        (422, BadRequest, "UnprocessableEntity", False),
        (429, RateLimited, "TooManyRequests", True),
        (500, TransientError, "InternalServerError", True),
        (501, BadRequest, SERVICE_INCOMPATIBLE, False),
        (502, TransientError, "InternalServerError", True),
        (503, TransientError, "InternalServerError", True),
        (504, TransientError, "Timeout", True),
        (507, GoToError, "InternalServerError", False),
    ],
)
def test_status_maps_to_typed_error_with_entra_code(status, cls, code, retryable):
    e = err(status)
    assert type(e) is cls
    assert (e.status, e.code, e.retryable) == (status, code, retryable)
    assert "create user 'alice@contoso.com' failed" in str(e)
    assert f"HTTP {status}" in str(e)


def test_404_on_a_linked_object_is_invalid_anchor():
    assert err(404, op=READ, method="GET").code == "InvalidAnchor"


def test_409_on_update_is_conflict_not_entry_conflict():
    e = err(409, {"code": "email.conflict", "uri": "/v1/Users/1"}, method="PUT")
    assert isinstance(e, Conflict)
    assert e.code == "Conflict"


def test_empty_body_keeps_the_status_reason():
    e = err(503, b"")
    assert e.detail == ""
    assert e.body == ""
    assert "service unavailable" in str(e)


def test_gotocode_body_code_and_uri():
    e = err(401, {"code": "not.authorized", "uri": "/v1/Users"}, method="GET")
    assert isinstance(e, AuthError)
    assert e.code == "InsufficientRights"
    assert e.goto_code == "not.authorized"
    assert "not.authorized (/v1/Users)" in str(e)


def test_int_err_code_msg_body():
    e = err(403, {"int_err_code": "InvalidToken", "msg": "Invalid token passed"}, method="GET")
    assert (e.code, e.goto_code, e.detail) == ("Unauthorized", "InvalidToken", "Invalid token passed")


def test_empty_401_reads_www_authenticate():
    headers = {"www-authenticate": 'Bearer realm="x", error="invalid_token"'}
    e = err(401, b"", method="GET", headers=headers)
    assert e.goto_code == "invalid_token"
    assert e.code == "Unauthorized"


def test_scim2_error_body():
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "Username is already in use.",
    }
    e = err(409, body)
    assert (e.goto_code, e.detail) == ("uniqueness", "Username is already in use.")
    assert str(e).endswith("Username is already in use.")


def test_plain_text_body_is_the_detail():
    e = err(502, b"<html>Bad Gateway</html>", method="GET")
    assert e.detail == "<html>Bad Gateway</html>"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"code": "invalid.domain", "message": "The domain of userName 'a@x.org' is not a verified domain"},
            "InvalidDomain",
        ),
        (
            {"detail": "userName's domain is not verified for this organization", "scimType": "invalidValue"},
            "InvalidDomain",
        ),
        (
            {"code": "invalid.userName", "message": "userName is required and must not be empty"},
            "MandatoryFieldsMissing",
        ),
        (
            {"code": "invalid.name", "message": "name.givenName must be a string of at most 60 characters"},
            "SchemaPropertyCanOnlyAcceptValue",
        ),
        ({"detail": "Request body must be a PatchOp", "scimType": "invalidSyntax"}, SERVICE_INCOMPATIBLE),
        ({"code": "invalid.filter", "message": "Bad filter"}, "UnprocessableEntity"),
    ],
)
def test_goto_400_messages_refine_the_code(body, code):
    e = err(400, body)
    assert isinstance(e, BadRequest)
    assert e.code == code


@pytest.mark.parametrize("status", [400, 403, 409, 422])
def test_a_body_naming_seats_is_license_limit_exceeded(status):
    body = {"code": "license.seats.exceeded", "message": "License 1 has no free seat: 5 of 5 seats assigned"}
    e = err(status, body, op=Op("set licenses", "u1"), method="PUT")
    assert isinstance(e, LicenseLimitExceeded)
    assert e.code == "LicenseLimitExceeded"
    assert not e.retryable


def test_raw_body_is_bounded_to_2kb():
    e = err(400, {"message": "x" * 10_000})
    assert len(e.body) <= 2048
    assert len(e.detail) <= 2048


def test_redact_removes_the_token_from_an_echoing_body():
    assert redact('{"msg":"bad token at-SECRET123"}', ["at-SECRET123"]) == '{"msg":"bad token ***"}'


def test_retry_after_seconds_date_and_garbage():
    now = 1_700_000_000.0
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after("0.25", now) == 0.25
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now) == pytest.approx(10.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_429_carries_retry_after():
    e = error_from_status(429, parse_error_body(b""), CREATE, retry_after=7.0)
    assert isinstance(e, RateLimited)
    assert e.retry_after == 7.0
