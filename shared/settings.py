"""One validated Settings object, read from app settings (environment variables).

Every setting the code reads is declared here, with its default and meaning; a wrong value
raises SettingsError naming the setting and what is wrong with it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from shared import redaction
from shared.schedule import check_schedule


class SettingsError(ValueError):
    """A setting is missing or has a wrong value; the message names the setting."""


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    help: str


# name -> (environment variable, default, meaning). docs/configuration.md lists the same.
SETTINGS: dict[str, Setting] = {
    "storage_connection_string": Setting(
        "GOTOSYNC_STORAGE", "", "Storage connection string (local: Azurite). Empty: AzureWebJobsStorage, then identity."
    ),
    "storage_table_endpoint": Setting(
        "GOTOSYNC_TABLE_ENDPOINT", "", "Table endpoint used with managed identity when no connection string is set."
    ),
    "table_prefix": Setting("GOTOSYNC_TABLE_PREFIX", "gotosync", "Prefix of every table gotosync creates."),
    "tenant_id": Setting("ENTRA_TENANT_ID", "", "Entra tenant id (a GUID)."),
    "service_principal_id": Setting(
        "ENTRA_SERVICE_PRINCIPAL_ID", "", "Object id of the GoToMeeting enterprise app's service principal."
    ),
    "graph_base_url": Setting("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0", "Microsoft Graph base URL."),
    "graph_static_token": Setting(
        "GRAPH_STATIC_TOKEN", "", "Local runs only: a fixed bearer token for the Graph emulator instead of identity."
    ),
    "goto_scim_url": Setting("GOTO_SCIM_URL", "https://api.getgo.com/identity/v1", "GoTo SCIM (Identity API) base."),
    "goto_admin_url": Setting("GOTO_ADMIN_URL", "https://api.getgo.com/admin/rest/v1", "GoTo Admin API base."),
    "goto_token_url": Setting(
        "GOTO_TOKEN_URL", "https://authentication.logmeininc.com/oauth/token", "GoTo OAuth token endpoint."
    ),
    "goto_client_id": Setting("GOTO_CLIENT_ID", "", "GoTo OAuth client id."),
    "goto_client_secret": Setting("GOTO_CLIENT_SECRET", "", "GoTo OAuth client secret (Key Vault reference)."),
    "goto_refresh_token": Setting("GOTO_REFRESH_TOKEN", "", "GoTo refresh token (Key Vault reference)."),
    "goto_pat": Setting(
        "GOTO_PAT", "", "A GoTo personal access token, used with the client id/secret instead of a refresh token."
    ),
    "goto_access_token": Setting(
        "GOTO_ACCESS_TOKEN",
        "",
        "A fixed bearer token instead of the OAuth flow: a SCIM 2.0 app's secret token (Key Vault reference), "
        "or a local emulator run.",
    ),
    "goto_rate_limit": Setting("GOTO_RATE_LIMIT", "10", "Requests per second to each GoTo API (GoTo's default: 10)."),
    "goto_max_concurrency": Setting("GOTO_MAX_CONCURRENCY", "4", "GoTo requests in flight at once."),
    "goto_patch_style": Setting("GOTO_PATCH_STYLE", "auto", "How updates are sent: auto, merge, patchop or put."),
    "goto_send_active": Setting(
        "GOTO_SEND_ACTIVE", "true", "Send the SCIM `active` attribute (disable by active=false)."
    ),
    "sync_schedule": Setting("SYNC_SCHEDULE", "0 */40 * * * *", "Cron schedule (NCRONTAB) of the sync cycle timer."),
    "deletion_threshold": Setting(
        "DELETION_THRESHOLD", "500", "Disables + deletes one cycle may do; above it they are staged. 0 = no limit."
    ),
    "deletion_threshold_percent": Setting(
        "DELETION_THRESHOLD_PERCENT",
        "10",
        "Disables + deletes one run may do, as a percentage of the users gotosync manages (counted only above 5); "
        "above it they are staged. 0 = off.",
    ),
    "deletion_confirmation_seconds": Setting(
        "DELETION_CONFIRMATION_SECONDS",
        "600",
        "A user absent from Graph and its recycle bin is deleted only when a second read at least this long after "
        "the first agrees (a delta @removed 'deleted' needs no second read).",
    ),
    "cycle_lease_seconds": Setting(
        "CYCLE_LEASE_SECONDS",
        "60",
        "Time-to-live of the cycle lease, renewed every third of it; a lease whose holder is gone is taken over "
        "after this long.",
    ),
    "default_access_only": Setting(
        "DEFAULT_ACCESS_ONLY", "skip", "Users whose only role is Default Access: skip or provision."
    ),
    "skip_out_of_scope_deletions": Setting(
        "SKIP_OUT_OF_SCOPE_DELETIONS", "false", "true: leave out-of-scope GoTo users alone instead of disabling them."
    ),
    "hard_delete_action": Setting("HARD_DELETE_ACTION", "delete", "On hard delete in Entra: delete or disable."),
    "transitive_members": Setting(
        "TRANSITIVE_MEMBERS", "false", "true: members of nested groups of an assigned group are in scope too."
    ),
    "provision_groups": Setting(
        "PROVISION_GROUPS",
        "false",
        "true: assigned Entra groups become GoTo groups with their provisioned members (docs/groups.md).",
    ),
    "verified_domains": Setting(
        "GOTO_VERIFIED_DOMAINS", "", "Comma-separated verified GoTo domains; users outside them are skipped early."
    ),
    "cycle_concurrency": Setting("CYCLE_CONCURRENCY", "8", "Objects processed at once within a cycle."),
    "graph_notification_url": Setting(
        "GRAPH_NOTIFICATION_URL", "", "Public https URL of the graph_webhook intake (with its function key)."
    ),
    "graph_lifecycle_url": Setting(
        "GRAPH_LIFECYCLE_URL", "", "URL for Graph lifecycle notifications (default: the notification URL)."
    ),
    "notification_queue": Setting(
        "NOTIFICATION_QUEUE", "gotosync-notifications", "Storage queue between the webhook intake and its worker."
    ),
    "assignment_watch_schedule": Setting(
        "ASSIGNMENT_WATCH_SCHEDULE", "0 */2 * * * *", "Cron schedule of the app-role assignment watch."
    ),
    "subscription_keeper_schedule": Setting(
        "SUBSCRIPTION_KEEPER_SCHEDULE", "0 15 * * * *", "Cron schedule of the Graph subscription keeper."
    ),
    "subscription_group_limit": Setting(
        "SUBSCRIPTION_GROUP_LIMIT", "90", "Per-group member subscriptions before falling back to one on /groups."
    ),
    "log_retention_days": Setting("LOG_RETENTION_DAYS", "30", "Days provisioning logs are kept."),
    "retention_schedule": Setting("RETENTION_SCHEDULE", "0 30 3 * * *", "Cron schedule of the log retention purge."),
    "mapping_file": Setting("MAPPING_FILE", "", "Path of the attribute-mapping file (empty: the built-in GoTo map)."),
    "role_licenses": Setting(
        "ROLE_LICENSES",
        "",
        'App role value -> GoTo license keys or product codes, as JSON: {"MeetingOrganizer": ["G2M"]}.',
    ),
    "key_vault_url": Setting("KEY_VAULT_URL", "", "Key Vault holding the GoTo refresh token (deployed runs)."),
    "appinsights_connection_string": Setting(
        "APPLICATIONINSIGHTS_CONNECTION_STRING", "", "Application Insights: telemetry is sent when this is set."
    ),
    "goto_refresh_token_file": Setting(
        "GOTO_REFRESH_TOKEN_FILE",
        "",
        "Local runs without KEY_VAULT_URL: file (mode 0600) holding the GoTo refresh token; "
        "empty: ~/.gotosync/goto-refresh-token.",
    ),
    "scim_profile": Setting(
        "SCIM_PROFILE",
        "goto",
        "The SCIM target: goto (GoTo's API) or scim2 (any SCIM 2.0 app, sent strict RFC 7643/7644; "
        "docs/scim-targets.md).",
    ),
}


# Settings whose value is (or holds) a secret: registered with shared.redaction when read, so that
# no echo of one survives in an error, a log or an admin's screen.
SECRET_SETTINGS = (
    "goto_client_secret",
    "goto_refresh_token",
    "goto_pat",
    "goto_access_token",
    "graph_static_token",
    "storage_connection_string",
    "appinsights_connection_string",
)
# Secret settings gotosync resolves itself when App Service could not (shared/goto/token_store.py
# reads Key Vault directly, or names the setting): every other unresolved reference is an error.
SELF_RESOLVED = ("goto_client_secret", "goto_refresh_token", "goto_pat")
# URL settings that carry a credential (a bearer token, HTTP Basic, a function key): https only,
# plain http only to this machine (the emulators).
CREDENTIAL_URLS = (
    "graph_base_url",
    "goto_scim_url",
    "goto_admin_url",
    "goto_token_url",
    "graph_notification_url",
    "graph_lifecycle_url",
    "key_vault_url",
    "storage_table_endpoint",
)
SCHEDULES = ("sync_schedule", "assignment_watch_schedule", "subscription_keeper_schedule", "retention_schedule")
MAX_TABLE_NAME = 63
_TABLE_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_CONNECTION_SECRET = re.compile(r"(?i)(?:AccountKey|SharedAccessSignature)=([^;]+)")

# App Service leaves an app setting as this literal text when a Key Vault reference cannot be
# resolved (secret missing, identity without access). It must never be used as a value.
_KEY_VAULT_REFERENCE = "@microsoft.keyvault("


def unresolved_reference(value: str) -> bool:
    """True for an app-setting value that is a Key Vault reference App Service could not resolve."""
    return value.strip().lower().startswith(_KEY_VAULT_REFERENCE)


def url_problem(url: str) -> str:
    """Why ``url`` may not carry credentials ("" when it may): it must be https, or plain http to
    a loopback address (127.0.0.0/8, ::1) or the host ``localhost`` exactly; never with
    user:password@ (which makes ``http://127.0.0.1@203.0.113.9/`` a remote host)."""
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("https", "http") or not host:
        return "must be an https:// URL"
    if "@" in parts.netloc:
        return "must not carry user:password@ before the host"
    if parts.scheme == "http" and not _loopback(host):
        return "must be an https:// URL (plain http only to 127.0.0.1, ::1 or localhost, for the emulators)"
    return ""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_urls(values: dict[str, Any]) -> None:
    for name in CREDENTIAL_URLS:
        value = values[name].strip()
        if not value:
            continue
        problem = url_problem(value)
        if problem:
            raise SettingsError(f"{SETTINGS[name].env}: {problem}, got {_shown_url(value)!r}")
        values[name] = value.rstrip("/")


def _shown_url(url: str) -> str:
    """A refused URL as an error message may show it: no user:password, no key in its query."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return redaction.scrub(scheme + sep + rest)


def _table_prefix(raw: str) -> str:
    """Azure table names: letters and digits, starting with a letter, at most 63 characters; the
    prefix goes in front of every table name, so the longest must still fit."""
    from shared.store.tables import TABLES

    prefix = raw.strip()
    room = MAX_TABLE_NAME - max(len(t) for t in TABLES)
    if not _TABLE_PREFIX.fullmatch(prefix):
        raise SettingsError(
            f"GOTOSYNC_TABLE_PREFIX: must be letters and digits starting with a letter (Azure table names), got {raw!r}"
        )
    if len(prefix) > room:
        raise SettingsError(
            f"GOTOSYNC_TABLE_PREFIX: at most {room} characters (the longest table name it starts, "
            f"{prefix}{max(TABLES, key=len)}, must fit in {MAX_TABLE_NAME}), got {len(prefix)}"
        )
    return prefix


def _check_schedules(values: dict[str, Any]) -> None:
    for name in SCHEDULES:
        try:
            values[name] = check_schedule(values[name].strip())
        except ValueError as exc:
            raise SettingsError(f"{SETTINGS[name].env}: {exc}") from None


def _check_references(raw: dict[str, str]) -> None:
    for name, value in raw.items():
        if name not in SELF_RESOLVED and unresolved_reference(value):
            raise SettingsError(
                f"{SETTINGS[name].env} is a Key Vault reference that App Service could not resolve (the secret is "
                "missing, or the app's identity may not read it): create the secret, check the identity's role on "
                "the vault, and restart the app"
            )


def _register_secrets(values: dict[str, Any]) -> None:
    for name in SECRET_SETTINGS:
        value = values[name]
        redaction.register(value)
        redaction.register(*_CONNECTION_SECRET.findall(value))


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{SETTINGS[name].env}: expected true or false, got {raw!r}")


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{SETTINGS[name].env}: expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{SETTINGS[name].env}: must be at least {minimum}, got {value}")
    return value


def _float(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{SETTINGS[name].env}: expected a number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{SETTINGS[name].env}: must be greater than 0, got {raw!r}")
    return value


def _percent(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{SETTINGS[name].env}: expected a percentage between 0 and 100, got {raw!r}") from None
    if not 0 <= value <= 100:
        raise SettingsError(f"{SETTINGS[name].env}: expected a percentage between 0 and 100, got {raw!r}")
    return value


def _role_licenses(raw: str) -> dict[str, tuple[str, ...]]:
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"ROLE_LICENSES: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in data.items()
    ):
        raise SettingsError('ROLE_LICENSES: expected {"<app role value>": ["<license key or product>", ...]}')
    return {k: tuple(v) for k, v in data.items()}


def _choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise SettingsError(f"{SETTINGS[name].env}: expected one of {', '.join(choices)}, got {raw!r}")
    return value


def _scim_profile(raw: str, values: Mapping[str, Any]) -> str:
    """SCIM_PROFILE, and what a generic SCIM 2.0 target cannot have: GoTo's merge PATCH, and
    licenses (GoTo's Admin API)."""
    profile = _choice("scim_profile", raw, ("goto", "scim2"))
    if profile == "scim2" and values["goto_patch_style"] == "merge":
        raise SettingsError(
            "GOTO_PATCH_STYLE: merge is GoTo's dialect; with SCIM_PROFILE=scim2 use auto, patchop or put"
        )
    if profile == "scim2" and values["role_licenses"]:
        raise SettingsError(
            "ROLE_LICENSES: licenses are assigned through GoTo's Admin API, which a SCIM_PROFILE=scim2 target "
            "does not have: leave ROLE_LICENSES empty"
        )
    return profile


@dataclass(frozen=True)
class Settings:
    storage_connection_string: str = ""
    storage_table_endpoint: str = ""
    table_prefix: str = "gotosync"
    tenant_id: str = ""
    service_principal_id: str = ""
    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    graph_static_token: str = field(default="", repr=False)
    goto_scim_url: str = "https://api.getgo.com/identity/v1"
    goto_admin_url: str = "https://api.getgo.com/admin/rest/v1"
    goto_token_url: str = "https://authentication.logmeininc.com/oauth/token"
    goto_client_id: str = ""
    goto_client_secret: str = field(default="", repr=False)
    goto_refresh_token: str = field(default="", repr=False)
    goto_pat: str = field(default="", repr=False)
    goto_access_token: str = field(default="", repr=False)
    goto_rate_limit: float = 10.0
    goto_max_concurrency: int = 4
    goto_patch_style: str = "auto"
    goto_send_active: bool = True
    sync_schedule: str = "0 */40 * * * *"
    deletion_threshold: int = 500
    deletion_threshold_percent: float = 10.0
    deletion_confirmation_seconds: int = 600
    cycle_lease_seconds: int = 60
    default_access_only: str = "skip"
    skip_out_of_scope_deletions: bool = False
    hard_delete_action: str = "delete"
    transitive_members: bool = False
    provision_groups: bool = False
    verified_domains: tuple[str, ...] = ()
    cycle_concurrency: int = 8
    graph_notification_url: str = ""
    graph_lifecycle_url: str = ""
    notification_queue: str = "gotosync-notifications"
    assignment_watch_schedule: str = "0 */2 * * * *"
    subscription_keeper_schedule: str = "0 15 * * * *"
    subscription_group_limit: int = 90
    log_retention_days: int = 30
    retention_schedule: str = "0 30 3 * * *"
    mapping_file: str = ""
    role_licenses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    key_vault_url: str = ""
    appinsights_connection_string: str = field(default="", repr=False)
    goto_refresh_token_file: str = ""
    scim_profile: str = "goto"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Reads and validates every setting; raises SettingsError naming the first bad one."""
        source = os.environ if env is None else env
        raw = {name: source.get(s.env, s.default) for name, s in SETTINGS.items()}
        if not raw["storage_connection_string"]:
            raw["storage_connection_string"] = source.get("AzureWebJobsStorage", "")
        _check_references(raw)
        values: dict[str, Any] = dict(raw)
        _register_secrets(values)
        values["table_prefix"] = _table_prefix(raw["table_prefix"])
        values["goto_rate_limit"] = _float("goto_rate_limit", raw["goto_rate_limit"])
        values["goto_max_concurrency"] = _int("goto_max_concurrency", raw["goto_max_concurrency"], 1)
        values["goto_patch_style"] = _choice(
            "goto_patch_style", raw["goto_patch_style"], ("auto", "merge", "patchop", "put")
        )
        values["goto_send_active"] = _bool("goto_send_active", raw["goto_send_active"])
        values["deletion_threshold"] = _int("deletion_threshold", raw["deletion_threshold"])
        values["deletion_threshold_percent"] = _percent("deletion_threshold_percent", raw["deletion_threshold_percent"])
        values["deletion_confirmation_seconds"] = _int(
            "deletion_confirmation_seconds", raw["deletion_confirmation_seconds"]
        )
        values["cycle_lease_seconds"] = _int("cycle_lease_seconds", raw["cycle_lease_seconds"], 6)
        values["default_access_only"] = _choice(
            "default_access_only", raw["default_access_only"], ("skip", "provision")
        )
        values["skip_out_of_scope_deletions"] = _bool("skip_out_of_scope_deletions", raw["skip_out_of_scope_deletions"])
        values["hard_delete_action"] = _choice("hard_delete_action", raw["hard_delete_action"], ("delete", "disable"))
        values["transitive_members"] = _bool("transitive_members", raw["transitive_members"])
        values["provision_groups"] = _bool("provision_groups", raw["provision_groups"])
        values["cycle_concurrency"] = _int("cycle_concurrency", raw["cycle_concurrency"], 1)
        values["subscription_group_limit"] = _int("subscription_group_limit", raw["subscription_group_limit"])
        values["log_retention_days"] = _int("log_retention_days", raw["log_retention_days"], 1)
        values["role_licenses"] = _role_licenses(raw["role_licenses"])
        values["scim_profile"] = _scim_profile(raw["scim_profile"], values)
        values["verified_domains"] = tuple(d.strip().lower() for d in raw["verified_domains"].split(",") if d.strip())
        for name in ("graph_base_url", "goto_scim_url", "goto_admin_url", "goto_token_url"):
            if not values[name].strip():
                raise SettingsError(f"{SETTINGS[name].env}: must be an https:// URL, got {values[name]!r}")
        _check_urls(values)
        _check_schedules(values)
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    def require(self, *names: str) -> None:
        """Raises SettingsError for the first of these settings that is empty."""
        for name in names:
            if not getattr(self, name):
                raise SettingsError(f"{SETTINGS[name].env} is required: {SETTINGS[name].help}")

    def with_overrides(self, **changes: Any) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


def describe() -> str:
    """The settings as JSON (name, variable, default, meaning), for docs and `gotosync`."""
    return json.dumps(
        [{"variable": s.env, "default": s.default, "meaning": s.help} for s in SETTINGS.values()], indent=2
    )
