"""GoTo emulator: SCIM users as documented in docs/reference/goto-api.md#scim-endpoints (default switches)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from emulators.goto import GoToEmulator
from tests.fixtures.goto import goto_client

U = "/identity/v1/Users"


@pytest.fixture
def goto(make_goto_emulator: Callable[..., GoToEmulator]) -> GoToEmulator:
    # Default switches, with the rate limit lifted so that a test may make many calls.
    return make_goto_emulator(rate_limit=0)


@pytest.fixture
def http(goto: GoToEmulator) -> Iterator[httpx.Client]:
    with goto_client(goto) as client:
        yield client


def new_user(http: httpx.Client, user_name: str = "jane@contoso.com", **extra: object) -> dict:
    body = {"userName": user_name, "name": {"givenName": "Jane", "familyName": "Doe"}, **extra}
    r = http.post(U, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_list_uses_lower_case_resources_envelope(http: httpx.Client) -> None:
    r = http.get(U)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"resources", "totalResults"}  # docs/reference/goto-api.md#filters-and-paging
    assert body["totalResults"] == 1  # the seeded admin
    assert body["resources"][0]["userName"] == "admin@contoso.com"


def test_create_returns_201_with_documented_attributes_and_string_ids(http: httpx.Client) -> None:
    user = new_user(http, locale="fr_FR", timezone="Europe/Paris", displayName="Jane D.")
    assert isinstance(user["id"], str)
    assert len(user["id"]) == 19
    assert user["id"].isdigit()
    for attr in ("id", "userName", "displayName", "name", "locale", "timezone", "meta"):
        assert attr in user
    assert user["meta"]["location"].endswith(f"{U}/{user['id']}")
    assert "created" in user["meta"]
    assert user["locale"] == "fr_FR"
    assert user["timezone"] == "Europe/Paris"
    # Not in the documented model and dropped/ignored by default (docs/reference/goto-api.md#u3,
    # docs/reference/goto-api.md#u4).
    assert "active" not in user
    assert "externalId" not in user


def test_get_unknown_user_is_404(http: httpx.Client) -> None:
    r = http.get(f"{U}/1234567890123456789")
    assert r.status_code == 404
    assert r.json()["code"] == "user.not.found"


def test_delete_is_200_and_user_stays_in_account(http: httpx.Client, goto: GoToEmulator) -> None:
    user = new_user(http)
    r = http.delete(f"{U}/{user['id']}")
    assert r.status_code == 200  # 200, not 204 (docs/reference/goto-api.md#scim-endpoints)
    assert http.get(f"{U}/{user['id']}").status_code == 404
    record = goto.user(user["id"])
    assert record is not None
    assert record["inAccount"]
    assert not record["inOrg"]


def test_duplicate_username_is_409_case_insensitive(http: httpx.Client) -> None:
    new_user(http, "jane@contoso.com")
    r = http.post(U, json={"userName": "JANE@Contoso.com"})
    assert r.status_code == 409
    assert r.json()["message"] == "Username is already in use."


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ({}, "userName missing"),
        ({"userName": ""}, "userName empty"),
        ({"userName": "a" * 117 + "@contoso.com"}, "userName > 128"),
        ({"userName": "x@contoso.com", "name": {"givenName": "g" * 61}}, "givenName > 60"),
        ({"userName": "x@contoso.com", "name": {"familyName": "f" * 61}}, "familyName > 60"),
        ({"userName": "x@contoso.com", "locale": "xx_US"}, "locale language not ISO-639"),
        ({"userName": "x@contoso.com", "locale": "en_XX"}, "locale country not ISO-3166"),
        ({"userName": "x@contoso.com", "locale": "en_US_POSIX"}, "locale with three parts"),
        ({"userName": "x@contoso.com", "timezone": "Mars/Olympus_Mons"}, "timezone invalid"),
        ({"userName": "x@fabrikam.com"}, "domain not verified"),
        ({"userName": "no-at-sign"}, "no domain at all"),
    ],
)
def test_validation_rules_give_400(http: httpx.Client, body: dict, rule: str) -> None:
    r = http.post(U, json=body)
    assert r.status_code == 400, rule


def test_validation_boundaries_are_accepted(http: httpx.Client) -> None:
    name = "a" * 116 + "@contoso.com"
    assert len(name) == 128
    user = new_user(http, name, name={"givenName": "g" * 60, "familyName": "f" * 60}, locale="de", timezone="UTC")
    assert user["userName"] == name
    assert user["locale"] == "de"


def test_unverified_domain_becomes_verified_via_control(http: httpx.Client, goto: GoToEmulator) -> None:
    assert http.post(U, json={"userName": "a@fabrikam.com"}).status_code == 400
    goto.add_verified_domain("fabrikam.com")
    assert http.post(U, json={"userName": "a@fabrikam.com"}).status_code == 201


def test_filters_eq_and_sw(http: httpx.Client) -> None:
    new_user(http, "jane@contoso.com", name={"givenName": "Jane", "familyName": "Smith"})
    new_user(http, "john@contoso.com", name={"givenName": "John", "familyName": "Smithers"})

    def names(flt: str) -> list[str]:
        r = http.get(U, params={"filter": flt})
        assert r.status_code == 200, r.text
        return sorted(u["userName"] for u in r.json()["resources"])

    assert names('userName eq "JANE@contoso.com"') == ["jane@contoso.com"]  # case-insensitive value
    assert names('USERNAME eq "jane@contoso.com"') == ["jane@contoso.com"]  # case-insensitive attribute
    assert names('userName sw "j"') == ["jane@contoso.com", "john@contoso.com"]
    assert names('name.familyName eq "Smith"') == ["jane@contoso.com"]
    assert names('name.givenName sw "Jo"') == ["john@contoso.com"]
    assert names('displayName eq "John Smithers"') == ["john@contoso.com"]
    assert names('userName eq "nobody@contoso.com"') == []


@pytest.mark.parametrize(
    "flt",
    [
        'userName co "jane"',
        'userName ne "jane@contoso.com"',
        "userName pr",
        'externalId eq "x"',
        'emails eq "jane@contoso.com"',
        'userName eq "a@contoso.com" or userName eq "b@contoso.com"',
        "userName eq jane@contoso.com",
        "",
    ],
)
def test_unsupported_filters_give_400(http: httpx.Client, flt: str) -> None:
    r = http.get(U, params={"filter": flt})
    assert r.status_code == 400


def test_put_replaces_full_definition(http: httpx.Client) -> None:
    user = new_user(http, locale="fr_FR", displayName="Jane D.")
    r = http.put(f"{U}/{user['id']}", json={"userName": "jane@contoso.com", "name": {"givenName": "Janet"}})
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == {"givenName": "Janet"}  # familyName cleared: the full definition is required
    assert body["locale"] == "en_US"  # back to the default
    assert body["displayName"] == "Janet"


def test_put_rename_to_taken_username_is_409(http: httpx.Client) -> None:
    user = new_user(http, "jane@contoso.com")
    r = http.put(f"{U}/{user['id']}", json={"userName": "admin@contoso.com"})
    assert r.status_code == 409
    assert r.json()["message"] == "Email address conflict"


def test_merge_patch_changes_only_given_attributes(http: httpx.Client) -> None:
    user = new_user(http)
    r = http.patch(f"{U}/{user['id']}", json={"name": {"familyName": "Byron"}})
    assert r.status_code == 200
    assert r.json()["name"] == {"givenName": "Jane", "familyName": "Byron"}
    assert http.patch(f"{U}/{user['id']}", json={"timezone": "Nowhere/City"}).status_code == 400
    assert http.patch("/identity/v1/Users/1234567890123456789", json={"displayName": "x"}).status_code == 404


def test_users_me_carries_getgo_extension(http: httpx.Client, goto: GoToEmulator) -> None:
    me = http.get(f"{U}/me").json()
    ext = me["urn:scim:schemas:extension:getgo:1.0"]
    assert ext["accounts"][0]["value"] == goto.account_key
    assert ext["accounts"][0]["display"] == "Contoso Ltd"
    assert "acctadmin" in ext["accounts"][0]["entitlements"]
    # Only on /Users/me by default (docs/reference/goto-api.md#u15).
    other = http.get(f"{U}/{me['id']}").json()
    assert "urn:scim:schemas:extension:getgo:1.0" not in other


def test_getgo_extension_everywhere_when_switched(http: httpx.Client, goto: GoToEmulator) -> None:
    goto.set_switch("getgo_extension", "all")
    me = http.get(f"{U}/me").json()
    assert "urn:scim:schemas:extension:getgo:1.0" in http.get(f"{U}/{me['id']}").json()


def test_service_provider_configs_is_plural(http: httpx.Client) -> None:
    r = http.get("/identity/v1/ServiceProviderConfigs")
    assert r.status_code == 200
    body = r.json()
    assert body["schemas"] == ["urn:scim:schemas:core:1.0"]
    for flag in ("patch", "bulk", "filter", "changePassword", "sort", "etag", "xmlDataFormat"):
        assert "supported" in body[flag]
    assert http.get("/identity/v1/ServiceProviderConfig").status_code == 404  # not in the spec


def test_schemas_users_is_scim1_resource_schema(http: httpx.Client) -> None:
    body = http.get("/identity/v1/Schemas/Users").json()
    assert body["id"] == "urn:scim:schemas:core:1.0:User"
    assert body["schema"] == "urn:scim:schemas:core:1.0"
    assert {"userName", "name", "locale", "timezone"} <= {a["name"] for a in body["attributes"]}


def test_malformed_json_is_400(http: httpx.Client) -> None:
    r = http.post(U, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid.json"
    assert http.post(U, json=["a list"]).status_code == 400


def test_non_numeric_key_is_404_or_502_by_switch(http: httpx.Client, goto: GoToEmulator) -> None:
    assert http.get(f"{U}/not-a-number").status_code == 404
    goto.set_switch("non_numeric_id_502", True)
    assert http.get(f"{U}/not-a-number").status_code == 502


def test_unexpected_errors_are_500_without_stack_trace(
    http: httpx.Client, goto: GoToEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(goto, "find_users", boom)
    r = http.get(U)
    assert r.status_code == 500
    assert "Traceback" not in r.text
    assert "secret internals" not in r.text
    assert r.json()["code"] == "internal.error"


def test_recreating_a_deleted_user_rejoins_with_same_key(http: httpx.Client) -> None:
    user = new_user(http)
    http.delete(f"{U}/{user['id']}")
    again = new_user(http)
    assert again["id"] == user["id"]


def test_userName_eq_lookup_uses_index(goto: GoToEmulator) -> None:
    # Control-plane sanity: the index is kept in sync across renames.
    key = goto.add_user(userName="old@contoso.com")
    with goto_client(goto) as http:
        assert http.patch(f"{U}/{key}", json={"userName": "new@contoso.com"}).status_code == 200
        assert http.get(U, params={"filter": 'userName eq "old@contoso.com"'}).json()["totalResults"] == 0
        found = http.get(U, params={"filter": 'userName eq "new@contoso.com"'}).json()["resources"]
    assert [u["id"] for u in found] == [key]
    assert goto.user_by_username("NEW@contoso.com")["key"] == key  # type: ignore[index]
