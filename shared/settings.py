"""One validated Settings object, read from app settings (environment variables).

Every setting is declared once, as a field of `Settings`: its type (the annotation), and with
`setting(...)` its environment variable, default (as the variable's text), meaning, and the
parser that turns that text into the type. The registry `SETTINGS`, `Settings.from_env`, the
docs listing (`describe()`) and the deployment tests all read those declarations. A field whose
parser does not produce its declared type (a bool read as text would make "false" true) fails
when this module is imported.

A wrong value raises SettingsError naming the setting and what is wrong with it.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Generic, TypeVar, get_type_hints
from urllib.parse import urlsplit

from shared import redaction
from shared.errors import ErrorPolicy, GotosyncError
from shared.model import DefaultAccessOnly, HardDeleteAction
from shared.schedule import check_schedule
from shared.scim.dialect import PatchStyle, ScimProfile

T = TypeVar("T")
E = TypeVar("E", bound=enum.StrEnum)


class SettingsError(GotosyncError, ValueError):
    """A setting is missing or has a wrong value; the message names the setting."""

    code = "Misconfigured"
    policy = ErrorPolicy.STOP
    exit_code = 2
    http_status = 500
    heading = "configuration error"


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


def _shown_url(url: str) -> str:
    """A refused URL as an error message may show it: no user:password, no key in its query."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return redaction.scrub(scheme + sep + rest)


# ---------------------------------------------------------------------------- parsers
# Each parser turns a variable's text into one type (`produces`), says what it accepts (docs),
# and writes a value back as text (`text`, for an environment that gives the same Settings).
# A wrong value is a ValueError saying what is wrong; the setting's name is put in front of it.


class Parser(Generic[T]):
    produces: ClassVar[Any]
    accepts: str = "—"

    def parse(self, raw: str) -> T:
        raise NotImplementedError

    def text(self, value: T) -> str:
        return str(value)


class Text(Parser[str]):
    """Free text, kept as given."""

    produces = str

    def parse(self, raw: str) -> str:
        return raw


class Flag(Parser[bool]):
    produces = bool
    accepts = "true/false"
    TRUE: ClassVar[frozenset[str]] = frozenset({"1", "true", "yes", "on"})
    FALSE: ClassVar[frozenset[str]] = frozenset({"0", "false", "no", "off", ""})

    def parse(self, raw: str) -> bool:
        value = raw.strip().lower()
        if value in self.TRUE:
            return True
        if value in self.FALSE:
            return False
        raise ValueError(f"expected true or false, got {raw!r}")

    def text(self, value: bool) -> str:
        return "true" if value else "false"


@dataclass(frozen=True)
class Whole(Parser[int]):
    minimum: int = 0
    produces = int

    @property
    def accepts(self) -> str:  # type: ignore[override]
        return f"whole number ≥ {self.minimum}"

    def parse(self, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
        if value < self.minimum:
            raise ValueError(f"must be at least {self.minimum}, got {value}")
        return value


class Positive(Parser[float]):
    produces = float
    accepts = "a number > 0"

    def parse(self, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"expected a number, got {raw!r}")
        if value <= 0:
            raise ValueError(f"must be greater than 0, got {raw!r}")
        return value

    def text(self, value: float) -> str:
        return repr(float(value))


class Percent(Parser[float]):
    produces = float
    accepts = "number 0–100"

    def parse(self, raw: str) -> float:
        problem = f"expected a percentage between 0 and 100, got {raw!r}"
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(problem) from None
        if not 0 <= value <= 100:
            raise ValueError(problem)
        return value

    def text(self, value: float) -> str:
        return repr(float(value))


@dataclass(frozen=True)
class Choice(Parser[E]):
    """One value of a StrEnum, the enum the code that uses the setting compares against."""

    choices: type[E]

    @property
    def produces(self) -> Any:  # type: ignore[override]
        return self.choices

    @property
    def accepts(self) -> str:  # type: ignore[override]
        return ", ".join(c.value for c in self.choices)

    def parse(self, raw: str) -> E:
        value = raw.strip().lower()
        try:
            return self.choices(value)
        except ValueError:
            raise ValueError(f"expected one of {self.accepts}, got {raw!r}") from None

    def text(self, value: E) -> str:
        return self.choices(value).value


@dataclass(frozen=True)
class Url(Parser[str]):
    """A URL that carries a credential (a bearer token, HTTP Basic, a function key): https, or
    plain http to this machine only (the emulators). Kept without its trailing slash."""

    required: bool = False
    produces = str
    accepts = "https:// (or local)"

    def parse(self, raw: str) -> str:
        value = raw.strip()
        if not value:
            if self.required:
                raise ValueError(f"must be an https:// URL, got {raw!r}")
            return value
        problem = url_problem(value)
        if problem:
            raise ValueError(f"{problem}, got {_shown_url(value)!r}")
        return value.rstrip("/")


class Schedule(Parser[str]):
    """A timer schedule as the Functions host reads it: NCRONTAB (six fields) or a TimeSpan."""

    produces = str
    accepts = "NCRONTAB or TimeSpan"

    def parse(self, raw: str) -> str:
        return check_schedule(raw.strip())


MAX_TABLE_NAME = 63
_TABLE_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]*")


class TablePrefix(Parser[str]):
    """Azure table names: letters and digits, starting with a letter, at most 63 characters; the
    prefix goes in front of every table name, so the longest must still fit."""

    produces = str

    @property
    def accepts(self) -> str:  # type: ignore[override]
        return f"letters and digits, starts with a letter, ≤ {self._room()[0]}"

    @staticmethod
    def _room() -> tuple[int, str]:
        from shared.store.tables import TABLES

        longest = max(TABLES, key=len)
        return MAX_TABLE_NAME - len(longest), longest

    def parse(self, raw: str) -> str:
        prefix = raw.strip()
        room, longest = self._room()
        if not _TABLE_PREFIX.fullmatch(prefix):
            raise ValueError(f"must be letters and digits starting with a letter (Azure table names), got {raw!r}")
        if len(prefix) > room:
            raise ValueError(
                f"at most {room} characters (the longest table name it starts, "
                f"{prefix}{longest}, must fit in {MAX_TABLE_NAME}), got {len(prefix)}"
            )
        return prefix


class DomainList(Parser[tuple[str, ...]]):
    """Comma-separated domains, lower-cased; empty items are dropped."""

    produces = tuple[str, ...]

    def parse(self, raw: str) -> tuple[str, ...]:
        return tuple(d.strip().lower() for d in raw.split(",") if d.strip())

    def text(self, value: tuple[str, ...]) -> str:
        return ",".join(value)


class RoleLicenses(Parser[dict[str, tuple[str, ...]]]):
    """App role value -> license keys or product codes, as a JSON object of string lists."""

    produces = dict[str, tuple[str, ...]]
    accepts = "JSON object of string lists"

    def parse(self, raw: str) -> dict[str, tuple[str, ...]]:
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in data.items()
        ):
            raise ValueError('expected {"<app role value>": ["<license key or product>", ...]}')
        return {k: tuple(v) for k, v in data.items()}

    def text(self, value: dict[str, tuple[str, ...]]) -> str:
        return json.dumps({k: list(v) for k, v in value.items()}) if value else ""


# The parser a setting gets from its type when its declaration names none.
_BY_TYPE: dict[Any, Callable[[], Parser[Any]]] = {str: Text, bool: Flag, int: Whole, float: Positive}


# ---------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Setting:
    """One setting: the field `name` of Settings, read from the variable `env`."""

    name: str
    env: str
    default: str  # the variable's text when it is not set
    help: str
    parser: Parser[Any]
    secret: bool = False  # the value is (or holds) a secret: registered with shared.redaction when read
    self_resolved: bool = False  # a Key Vault reference App Service could not resolve is handled by gotosync
    fallback_env: str = ""  # read when `env` is not set or empty

    def raw(self, source: Mapping[str, str]) -> str:
        value = source.get(self.env, self.default)
        if not value and self.fallback_env:
            value = source.get(self.fallback_env, "")
        return value

    def read(self, raw: str) -> Any:
        """The value, or SettingsError naming the variable."""
        try:
            return self.parser.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{self.env}: {exc}") from None

    def document(self) -> dict[str, Any]:
        return {
            "variable": self.env,
            "default": self.default,
            "meaning": self.help,
            "type": _type_name(self.parser.produces),
            "accepts": self.parser.accepts,
        }


@dataclass(frozen=True)
class _Declared:
    env: str
    default: str
    help: str
    parser: Parser[Any] | None
    secret: bool
    self_resolved: bool
    fallback_env: str


def setting(
    env: str,
    default: str,
    help: str,
    parser: Parser[Any] | None = None,
    *,
    secret: bool = False,
    self_resolved: bool = False,
    fallback_env: str = "",
) -> Any:
    """Declares the field it is assigned to (see `declared`). Without `parser`, the field's type
    chooses one: str -> Text, bool -> Flag, int -> Whole (≥ 0), float -> Positive, a StrEnum -> Choice."""
    return _Declared(env, default, help, parser, secret, self_resolved, fallback_env)


def declared(cls: type[T]) -> type[T]:
    """Turns each `name: type = setting(...)` of `cls` into a frozen dataclass field whose default
    is the declared text parsed, and whose metadata holds its `Setting`. Raises TypeError for a
    field that is not declared, or whose parser does not produce the field's type."""
    hints = get_type_hints(cls)
    for name in cls.__annotations__:
        spec = cls.__dict__.get(name)
        if not isinstance(spec, _Declared):
            raise TypeError(f"Settings.{name} is not declared with setting(...)")
        found = _setting(name, hints[name], spec)
        default = found.parser.parse(found.default)
        kind = {"default_factory": lambda d=default: dict(d)} if isinstance(default, dict) else {"default": default}
        field = dataclasses.field(**kind, repr=not found.secret, metadata={"setting": found})
        setattr(cls, name, field)
    return dataclass(frozen=True)(cls)


def _setting(name: str, declared_type: Any, spec: _Declared) -> Setting:
    parser = spec.parser if spec.parser is not None else _parser_for(name, declared_type)
    if parser.produces != declared_type:
        raise TypeError(
            f"Settings.{name} is declared {_type_name(declared_type)} but {type(parser).__name__} "
            f"reads {spec.env} as {_type_name(parser.produces)}"
        )
    return Setting(name, spec.env, spec.default, spec.help, parser, spec.secret, spec.self_resolved, spec.fallback_env)


def _parser_for(name: str, declared_type: Any) -> Parser[Any]:
    if isinstance(declared_type, type) and issubclass(declared_type, enum.StrEnum):
        return Choice(declared_type)
    if declared_type in _BY_TYPE:
        return _BY_TYPE[declared_type]()
    raise TypeError(f"Settings.{name}: no parser for {_type_name(declared_type)}; name one in setting(...)")


def _type_name(kind: Any) -> str:
    return kind.__name__ if isinstance(kind, type) and not getattr(kind, "__args__", None) else str(kind)


# ---------------------------------------------------------------------------- the settings


@declared
class Settings:
    storage_connection_string: str = setting(
        "GOTOSYNC_STORAGE",
        "",
        "Storage connection string (local: Azurite). Empty: AzureWebJobsStorage, then identity.",
        secret=True,
        fallback_env="AzureWebJobsStorage",
    )
    storage_table_endpoint: str = setting(
        "GOTOSYNC_TABLE_ENDPOINT",
        "",
        "Table endpoint used with managed identity when no connection string is set.",
        Url(),
    )
    table_prefix: str = setting(
        "GOTOSYNC_TABLE_PREFIX", "gotosync", "Prefix of every table gotosync creates.", TablePrefix()
    )
    tenant_id: str = setting("ENTRA_TENANT_ID", "", "Entra tenant id (a GUID).")
    service_principal_id: str = setting(
        "ENTRA_SERVICE_PRINCIPAL_ID", "", "Object id of the GoToMeeting enterprise app's service principal."
    )
    graph_base_url: str = setting(
        "GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0", "Microsoft Graph base URL.", Url(required=True)
    )
    graph_static_token: str = setting(
        "GRAPH_STATIC_TOKEN",
        "",
        "Local runs only: a fixed bearer token for the Graph emulator instead of identity.",
        secret=True,
    )
    goto_scim_url: str = setting(
        "GOTO_SCIM_URL", "https://api.getgo.com/identity/v1", "GoTo SCIM (Identity API) base.", Url(required=True)
    )
    goto_admin_url: str = setting(
        "GOTO_ADMIN_URL", "https://api.getgo.com/admin/rest/v1", "GoTo Admin API base.", Url(required=True)
    )
    goto_token_url: str = setting(
        "GOTO_TOKEN_URL",
        "https://authentication.logmeininc.com/oauth/token",
        "GoTo OAuth token endpoint.",
        Url(required=True),
    )
    goto_client_id: str = setting("GOTO_CLIENT_ID", "", "GoTo OAuth client id.")
    goto_client_secret: str = setting(
        "GOTO_CLIENT_SECRET", "", "GoTo OAuth client secret (Key Vault reference).", secret=True, self_resolved=True
    )
    goto_refresh_token: str = setting(
        "GOTO_REFRESH_TOKEN", "", "GoTo refresh token (Key Vault reference).", secret=True, self_resolved=True
    )
    goto_pat: str = setting(
        "GOTO_PAT",
        "",
        "A GoTo personal access token, used with the client id/secret instead of a refresh token.",
        secret=True,
        self_resolved=True,
    )
    goto_access_token: str = setting(
        "GOTO_ACCESS_TOKEN",
        "",
        "A fixed bearer token instead of the OAuth flow: a SCIM 2.0 app's secret token (Key Vault reference), "
        "or a local emulator run.",
        secret=True,
    )
    goto_rate_limit: float = setting(
        "GOTO_RATE_LIMIT", "10", "Requests per second to each GoTo API (GoTo's default: 10)."
    )
    goto_max_concurrency: int = setting("GOTO_MAX_CONCURRENCY", "4", "GoTo requests in flight at once.", Whole(1))
    goto_shared_budget: bool = setting(
        "GOTO_SHARED_BUDGET",
        "true",
        "Share each GoTo API's request budget (GOTO_RATE_LIMIT) with every instance of the app, through a schedule "
        "kept in Table Storage; false: each instance paces alone at GOTO_RATE_LIMIT / GOTO_INSTANCES.",
    )
    goto_budget_batch: int = setting(
        "GOTO_BUDGET_BATCH",
        "4",
        "Slots of the shared GoTo budget one storage round trip books at most (fewer when fewer requests wait).",
        Whole(1),
    )
    goto_instances: int = setting(
        "GOTO_INSTANCES",
        "1",
        "Most instances that call GoTo at once (the Function App's maximum instance count): an instance that cannot "
        "reach the shared budget, or has it off, paces alone at GOTO_RATE_LIMIT divided by this.",
        Whole(1),
    )
    goto_patch_style: PatchStyle = setting(
        "GOTO_PATCH_STYLE", "auto", "How updates are sent: auto, merge, patchop or put."
    )
    goto_send_active: bool = setting(
        "GOTO_SEND_ACTIVE", "true", "Send the SCIM `active` attribute (disable by active=false)."
    )
    sync_schedule: str = setting(
        "SYNC_SCHEDULE", "0 */40 * * * *", "Cron schedule (NCRONTAB) of the sync cycle timer.", Schedule()
    )
    drift_sweep_schedule: str = setting(
        "DRIFT_SWEEP_SCHEDULE",
        "0 0 2 * * *",
        "Cron schedule of the drift sweep: GoTo users edited by hand are put back as gotosync left them "
        "(docs/drift.md).",
        Schedule(),
    )
    deletion_threshold: int = setting(
        "DELETION_THRESHOLD", "500", "Disables + deletes one cycle may do; above it they are staged. 0 = no limit."
    )
    deletion_threshold_percent: float = setting(
        "DELETION_THRESHOLD_PERCENT",
        "10",
        "Disables + deletes one run may do, as a percentage of the users gotosync manages (counted only above 5); "
        "above it they are staged. 0 = off.",
        Percent(),
    )
    deletion_confirmation_seconds: int = setting(
        "DELETION_CONFIRMATION_SECONDS",
        "600",
        "A user absent from Graph and its recycle bin is deleted only when a second read at least this long after "
        "the first agrees (a delta @removed 'deleted' needs no second read).",
    )
    cycle_lease_seconds: int = setting(
        "CYCLE_LEASE_SECONDS",
        "60",
        "Time-to-live of the cycle lease, renewed every third of it; a lease whose holder is gone is taken over "
        "after this long.",
        Whole(6),
    )
    cycle_time_budget_seconds: int = setting(
        "CYCLE_TIME_BUDGET_SECONDS",
        "1500",
        "How long one invocation works on a cycle before it checkpoints and hands the cycle on (a continuation "
        "message); keep it well below host.json's functionTimeout (30 minutes).",
        Whole(1),
    )
    continuation_queue: str = setting(
        "CONTINUATION_QUEUE",
        "gotosync-continue",
        "Storage queue on which a cycle that ran out of its time budget hands itself on to the next invocation.",
    )
    default_access_only: DefaultAccessOnly = setting(
        "DEFAULT_ACCESS_ONLY", "skip", "Users whose only role is Default Access: skip or provision."
    )
    skip_out_of_scope_deletions: bool = setting(
        "SKIP_OUT_OF_SCOPE_DELETIONS", "false", "true: leave out-of-scope GoTo users alone instead of disabling them."
    )
    hard_delete_action: HardDeleteAction = setting(
        "HARD_DELETE_ACTION", "delete", "On hard delete in Entra: delete or disable."
    )
    transitive_members: bool = setting(
        "TRANSITIVE_MEMBERS", "false", "true: members of nested groups of an assigned group are in scope too."
    )
    provision_groups: bool = setting(
        "PROVISION_GROUPS",
        "false",
        "true: assigned Entra groups become GoTo groups with their provisioned members (docs/groups.md).",
    )
    verified_domains: tuple[str, ...] = setting(
        "GOTO_VERIFIED_DOMAINS",
        "",
        "Comma-separated verified GoTo domains; users outside them are skipped early.",
        DomainList(),
    )
    cycle_concurrency: int = setting(
        "CYCLE_CONCURRENCY",
        "8",
        "Objects processed at once within a cycle (twice that with ROLE_LICENSES: each object then waits on two GoTo "
        "APIs in turn, each paced by its own budget; 1 = one object at a time, in order).",
        Whole(1),
    )
    graph_notification_url: str = setting(
        "GRAPH_NOTIFICATION_URL", "", "Public https URL of the graph_webhook intake (with its function key).", Url()
    )
    graph_lifecycle_url: str = setting(
        "GRAPH_LIFECYCLE_URL", "", "URL for Graph lifecycle notifications (default: the notification URL).", Url()
    )
    notification_queue: str = setting(
        "NOTIFICATION_QUEUE", "gotosync-notifications", "Storage queue between the webhook intake and its worker."
    )
    assignment_watch_schedule: str = setting(
        "ASSIGNMENT_WATCH_SCHEDULE", "0 */2 * * * *", "Cron schedule of the app-role assignment watch.", Schedule()
    )
    subscription_keeper_schedule: str = setting(
        "SUBSCRIPTION_KEEPER_SCHEDULE", "0 15 * * * *", "Cron schedule of the Graph subscription keeper.", Schedule()
    )
    subscription_group_limit: int = setting(
        "SUBSCRIPTION_GROUP_LIMIT", "90", "Per-group member subscriptions before falling back to one on /groups."
    )
    log_retention_days: int = setting("LOG_RETENTION_DAYS", "30", "Days provisioning logs are kept.", Whole(1))
    retention_schedule: str = setting(
        "RETENTION_SCHEDULE", "0 30 3 * * *", "Cron schedule of the log retention purge.", Schedule()
    )
    mapping_file: str = setting(
        "MAPPING_FILE", "", "Path of the attribute-mapping file (empty: the built-in GoTo map)."
    )
    role_licenses: dict[str, tuple[str, ...]] = setting(
        "ROLE_LICENSES",
        "",
        'App role value -> GoTo license keys or product codes, as JSON: {"MeetingOrganizer": ["G2M"]}.',
        RoleLicenses(),
    )
    key_vault_url: str = setting(
        "KEY_VAULT_URL", "", "Key Vault holding the GoTo refresh token (deployed runs).", Url()
    )
    appinsights_connection_string: str = setting(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "",
        "Application Insights: telemetry is sent when this is set.",
        secret=True,
    )
    goto_refresh_token_file: str = setting(
        "GOTO_REFRESH_TOKEN_FILE",
        "",
        "Local runs without KEY_VAULT_URL: file (mode 0600) holding the GoTo refresh token; "
        "empty: ~/.gotosync/goto-refresh-token.",
    )
    scim_profile: ScimProfile = setting(
        "SCIM_PROFILE",
        "goto",
        "The SCIM target: goto (GoTo's API) or scim2 (any SCIM 2.0 app, sent strict RFC 7643/7644; "
        "docs/scim-targets.md).",
    )

    def __post_init__(self) -> None:
        # Settings(...) in code and tests may give a choice as its text: it becomes the enum.
        for f in fields(self):
            parser = f.metadata["setting"].parser
            value = getattr(self, f.name)
            if isinstance(parser, Choice) and not isinstance(value, parser.choices):
                object.__setattr__(self, f.name, SETTINGS[f.name].read(str(value)))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Reads and validates every setting; raises SettingsError naming the first bad one."""
        source = os.environ if env is None else env
        raw = {name: s.raw(source) for name, s in SETTINGS.items()}
        _check_references(raw)
        _register_secrets(raw)
        values = {name: s.read(raw[name]) for name, s in SETTINGS.items()}
        _check_scim_profile(values)
        return cls(**values)

    def require(self, *names: str) -> None:
        """Raises SettingsError for the first of these settings that is empty."""
        for name in names:
            if not getattr(self, name):
                raise SettingsError(f"{SETTINGS[name].env} is required: {SETTINGS[name].help}")

    def with_overrides(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def environment(self) -> dict[str, str]:
        """The variables (each setting's text) from which `from_env` reads these same settings."""
        return {s.env: s.parser.text(getattr(self, name)) for name, s in SETTINGS.items()}


# name -> its declaration, in declaration order. docs/configuration.md describes the same.
SETTINGS: dict[str, Setting] = {f.name: f.metadata["setting"] for f in fields(Settings)}  # type: ignore[arg-type]

# Settings whose value is (or holds) a secret: registered with shared.redaction when read, so that
# no echo of one survives in an error, a log or an admin's screen.
SECRET_SETTINGS = tuple(name for name, s in SETTINGS.items() if s.secret)
# Secret settings gotosync resolves itself when App Service could not (shared/goto/token_store.py
# reads Key Vault directly, or names the setting): every other unresolved reference is an error.
SELF_RESOLVED = tuple(name for name, s in SETTINGS.items() if s.self_resolved)
# URL settings that carry a credential (a bearer token, HTTP Basic, a function key): https only,
# plain http only to this machine (the emulators).
CREDENTIAL_URLS = tuple(name for name, s in SETTINGS.items() if isinstance(s.parser, Url))
SCHEDULES = tuple(name for name, s in SETTINGS.items() if isinstance(s.parser, Schedule))
_CONNECTION_SECRET = re.compile(r"(?i)(?:AccountKey|SharedAccessSignature)=([^;]+)")

# App Service leaves an app setting as this literal text when a Key Vault reference cannot be
# resolved (secret missing, identity without access). It must never be used as a value.
_KEY_VAULT_REFERENCE = "@microsoft.keyvault("


def unresolved_reference(value: str) -> bool:
    """True for an app-setting value that is a Key Vault reference App Service could not resolve."""
    return value.strip().lower().startswith(_KEY_VAULT_REFERENCE)


def _check_references(raw: dict[str, str]) -> None:
    for name, value in raw.items():
        if name not in SELF_RESOLVED and unresolved_reference(value):
            raise SettingsError(
                f"{SETTINGS[name].env} is a Key Vault reference that App Service could not resolve (the secret is "
                "missing, or the app's identity may not read it): create the secret, check the identity's role on "
                "the vault, and restart the app"
            )


def _register_secrets(raw: dict[str, str]) -> None:
    for name in SECRET_SETTINGS:
        value = raw[name]
        redaction.register(value)
        redaction.register(*_CONNECTION_SECRET.findall(value))


def _check_scim_profile(values: Mapping[str, Any]) -> None:
    """What a generic SCIM 2.0 target cannot have: GoTo's merge PATCH, and licenses (GoTo's Admin API)."""
    if values["scim_profile"] is not ScimProfile.SCIM2:
        return
    if values["goto_patch_style"] is PatchStyle.MERGE:
        raise SettingsError(
            "GOTO_PATCH_STYLE: merge is GoTo's dialect; with SCIM_PROFILE=scim2 use auto, patchop or put"
        )
    if values["role_licenses"]:
        raise SettingsError(
            "ROLE_LICENSES: licenses are assigned through GoTo's Admin API, which a SCIM_PROFILE=scim2 target "
            "does not have: leave ROLE_LICENSES empty"
        )


def describe() -> str:
    """The settings as JSON (variable, default, meaning, type, what is accepted), for docs and
    `gotosync settings`."""
    return json.dumps([s.document() for s in SETTINGS.values()], indent=2, ensure_ascii=False)
