"""Settings are validated at start-up by Settings.from_env(): a wrong value of any validated
setting fails with a message that names the setting (the app setting's own name)."""

from __future__ import annotations

import pytest

from shared.settings import CREDENTIAL_URLS, SCHEDULES, SETTINGS, Settings, SettingsError

# env name -> a wrong value. Every setting that Settings.from_env() validates today.
WRONG = {
    "GOTO_RATE_LIMIT": "fast",
    "GOTO_MAX_CONCURRENCY": "0",
    "GOTO_PATCH_STYLE": "json-patch",
    "GOTO_SEND_ACTIVE": "sometimes",
    "DELETION_THRESHOLD": "-1",
    "DEFAULT_ACCESS_ONLY": "always",
    "SKIP_OUT_OF_SCOPE_DELETIONS": "maybe",
    "HARD_DELETE_ACTION": "archive",
    "TRANSITIVE_MEMBERS": "2",
    "CYCLE_CONCURRENCY": "many",
    "SUBSCRIPTION_GROUP_LIMIT": "1.5",
    "LOG_RETENTION_DAYS": "0",
    "ROLE_LICENSES": '{"MeetingOrganizer": "G2M"}',
    "GRAPH_NOTIFICATION_URL": "http://gotosync.example.com/api/graph/notify",
    "GRAPH_BASE_URL": "http://graph.microsoft.com/v1.0",
    "GOTO_SCIM_URL": "ftp://api.getgo.com/identity/v1",
    "GOTO_ADMIN_URL": "api.getgo.com/admin/rest/v1",
    "GOTO_TOKEN_URL": "http://authentication.logmeininc.com/oauth/token",
    "GOTOSYNC_TABLE_PREFIX": "goto-sync",
    "SYNC_SCHEDULE": "0 */40 * * *",
    "ASSIGNMENT_WATCH_SCHEDULE": "0 */2 * * * Funday",
    "SUBSCRIPTION_KEEPER_SCHEDULE": "0 75 * * * *",
    "RETENTION_SCHEDULE": "00:00:00",
    "GRAPH_LIFECYCLE_URL": "http://gotosync.example.com/api/graph/lifecycle",
    "KEY_VAULT_URL": "http://kv-x.vault.azure.net/",
    "GOTOSYNC_TABLE_ENDPOINT": "http://account.table.core.windows.net/",
    "GOTO_ACCESS_TOKEN": "@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/t/)",
}


def test_the_defaults_are_valid():
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(("env", "value"), WRONG.items(), ids=WRONG.keys())
def test_a_wrong_value_names_the_setting(env, value):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({env: value})
    assert env in str(info.value)


# Values that are wrong for any kind of setting that is validated at all.
PROBES = ["not a number", "-7", "0", "1.5", "maybe", "ftp://x", "{not json", '{"a": 1}']


@pytest.mark.parametrize("env", sorted(s.env for s in SETTINGS.values()))
def test_every_failure_names_its_setting(env):
    """Also for validations added after this test was written: whatever fails, says which setting."""
    failures = []
    for probe in PROBES:
        try:
            Settings.from_env({env: probe})
        except SettingsError as exc:
            failures.append(str(exc))
    assert all(env in message for message in failures), failures


def test_a_bad_role_licenses_json_is_explained():
    with pytest.raises(SettingsError, match="ROLE_LICENSES: not valid JSON"):
        Settings.from_env({"ROLE_LICENSES": "{MeetingOrganizer: [G2M]}"})


CREDENTIAL_URL_ENVS = [SETTINGS[name].env for name in CREDENTIAL_URLS]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1@203.0.113.9/oauth/token",  # user "127.0.0.1" at a remote host
        "http://localhost.invalid/oauth/token",
        "http://localhost@evil.example/",
        "http://127.0.0.1.evil.example/",
        "http://[::ffff:203.0.113.9]/",
        "https://user:secret@api.getgo.com/identity/v1",
        "https://",
        "http://127.0.0.1:notaport/",
        "https://api.getgo.com/identity v1",
        "ftp://127.0.0.1/",
    ],
)
@pytest.mark.parametrize("env", CREDENTIAL_URL_ENVS)
def test_a_url_that_carries_credentials_must_be_https_or_this_machine(env, url):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({env: url})
    assert str(info.value).startswith(env + ":")


@pytest.mark.parametrize(
    "url",
    [
        "https://api.getgo.com/identity/v1",
        "http://127.0.0.1:8080/identity/v1",
        "http://127.1.2.3/x",
        "http://[::1]:9000/x",
        "http://localhost:7071/api/graph/notify",
    ],
)
@pytest.mark.parametrize("env", CREDENTIAL_URL_ENVS)
def test_https_and_loopback_http_are_accepted(env, url):
    settings = Settings.from_env({env: url + "/"})
    name = next(n for n in CREDENTIAL_URLS if SETTINGS[n].env == env)
    assert getattr(settings, name) == url  # the trailing slash goes


def test_the_table_prefix_follows_azure_table_names_with_room_for_the_longest_table():
    assert Settings.from_env({"GOTOSYNC_TABLE_PREFIX": "a" * 50}).table_prefix == "a" * 50  # + "subscriptions" = 63
    for bad in ("a" * 51, "1gotosync", "goto_sync", "", "gotosync!"):
        with pytest.raises(SettingsError, match=r"^GOTOSYNC_TABLE_PREFIX: "):
            Settings.from_env({"GOTOSYNC_TABLE_PREFIX": bad})


@pytest.mark.parametrize("value", ["0 */40 * * * *", "0 30 3 * * Mon-Fri", "0 0 9 1 Jan *", "01:00:00", "24:00:00",
                                   "1.02:00:00", "00:00:30"])  # fmt: skip
@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_the_functions_host_accepts(name, value):
    assert getattr(Settings.from_env({SETTINGS[name].env: value}), name) == value


@pytest.mark.parametrize("value", ["0 */40 * * *", "60 * * * * *", "* * * * * * *", "0 0 25 * * *", "25:61:00",
                                   "00:00:00", "every hour", "0 0 0 31 Feb Sunday"])  # fmt: skip
@pytest.mark.parametrize("name", SCHEDULES)
def test_a_schedule_the_host_would_refuse_fails_at_start_up_naming_the_setting(name, value):
    env = SETTINGS[name].env
    with pytest.raises(SettingsError) as info:
        Settings.from_env({env: value})
    assert str(info.value).startswith(env + ":")


@pytest.mark.parametrize("env", ["GOTO_ACCESS_TOKEN", "GRAPH_STATIC_TOKEN", "GOTOSYNC_STORAGE", "ROLE_LICENSES"])
def test_an_unresolved_key_vault_reference_is_named_as_such(env):
    with pytest.raises(SettingsError, match=f"^{env} is a Key Vault reference that App Service could not resolve"):
        Settings.from_env({env: "@Microsoft.KeyVault(VaultName=kv-x;SecretName=s)"})


REFUSED_WITH_SECRETS = [
    ("GRAPH_NOTIFICATION_URL", "http://x.example/api/graph/notify?code=Fk3yS3cr3tV4lue", "Fk3yS3cr3tV4lue"),
    ("GOTO_TOKEN_URL", "https://admin:Pa55w0rd-x@auth.example/oauth/token", "Pa55w0rd-x"),
]


@pytest.mark.parametrize(("env", "url", "secret"), REFUSED_WITH_SECRETS)
def test_a_refused_url_is_shown_without_its_key_or_password(env, url, secret):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({env: url})
    assert env in str(info.value) and secret not in str(info.value)
