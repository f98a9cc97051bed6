"""Settings are validated at start-up by Settings.from_env(): a wrong value of any validated
setting fails with a message that names the setting (the app setting's own name)."""

from __future__ import annotations

import pytest

from shared.settings import SETTINGS, Settings, SettingsError

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
