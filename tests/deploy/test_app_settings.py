"""Every setting the code reads (shared.settings.SETTINGS) is an app setting in main.bicep and an
entry of local.settings.json.example, with the same default; nothing stale is set there; secrets
are Key Vault references; docs/configuration.md describes each one."""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.settings import SETTINGS, Settings, describe

from .bicep_check import check_file, object_entries

ROOT = Path(__file__).parents[2]
MAIN = ROOT / "infra" / "main.bicep"
FUNCTION_APP = ROOT / "infra" / "modules" / "function-app.bicep"
LOCAL = ROOT / "local.settings.json.example"

CODE_SETTINGS = {s.env for s in SETTINGS.values()}
# Settings the code does not read itself but the platform does, each with the reason it is set.
AZURE_PLATFORM = {
    "AzureWebJobsStorage__credential": "identity-based host storage",
    "AzureWebJobsStorage__clientId": "which user-assigned identity the host uses",
    "AzureWebJobsStorage__blobServiceUri": "host storage: blobs (timers, deployment)",
    "AzureWebJobsStorage__queueServiceUri": "host storage and the notification queue trigger",
    "AzureWebJobsStorage__tableServiceUri": "host storage: tables",
    "AZURE_CLIENT_ID": "DefaultAzureCredential picks the user-assigned identity",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Entra auth to Application Insights (local auth is off)",
    "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID": "the console's sign-in proves the app registration with the identity",
    "WEBSITE_AUTH_AAD_ALLOWED_TENANTS": "the console's sign-in takes this tenant's users only",
}
LOCAL_PLATFORM = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}
SECRETS = {"GOTO_CLIENT_SECRET", "GOTO_REFRESH_TOKEN", "GOTO_PAT", "GOTO_ACCESS_TOKEN"}
LOCAL_ONLY = {"GRAPH_STATIC_TOKEN", "GOTO_REFRESH_TOKEN_FILE", "GOTOSYNC_STORAGE"}


def main_settings() -> dict[str, str]:
    return object_entries(MAIN.read_text(), "gotosyncSettings")


def test_main_bicep_sets_every_setting_the_code_reads_and_nothing_else():
    names = set(main_settings())
    assert CODE_SETTINGS - names == set(), "settings the code reads but main.bicep does not set"
    assert names - CODE_SETTINGS == set(), "app settings in main.bicep that the code does not read"


def test_each_setting_is_a_parameter_with_the_code_default_or_derived():
    main = check_file(MAIN)
    text = MAIN.read_text()
    defaults = {
        m.group(1): m.group(2) for m in re.finditer(r"^param (\w+) string = '([^']*)'$", text, re.M)
    }  # fmt: skip
    by_env = {s.env: s for s in SETTINGS.values()}
    derived = {}
    for env, expr in main_settings().items():
        if re.fullmatch(r"[A-Za-z_]\w*", expr) and expr in main.params:
            assert main.params[expr], f"{env}: param {expr} has no default"
            assert defaults.get(expr) == by_env[env].default, f"{env}: param {expr} default differs from the code's"
        else:
            derived[env] = expr
    for env in LOCAL_ONLY:
        assert derived.get(env) == "''", f"{env} is for local runs only and must be empty in Azure"
    assert derived["KEY_VAULT_URL"] == "vault.outputs.uri"
    assert derived["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "monitoring.outputs.connectionString"
    assert derived["GOTOSYNC_TABLE_ENDPOINT"] == "storage.outputs.tableEndpoint"
    assert derived["ENTRA_TENANT_ID"] == "tenant().tenantId"


def test_secrets_are_key_vault_references_never_parameters():
    settings = main_settings()
    for env in SECRETS:
        assert "'@Microsoft.KeyVault(${secretRef}goto-" in settings[env], env
    text = MAIN.read_text()
    assert "var secretRef = 'VaultName=${names.keyVault};SecretName='" in text
    for name in check_file(MAIN).params:
        assert not re.search(r"secret|refresh|token$", name, re.I), f"param {name} looks like a secret"
    assert "@secure()" not in text


def test_the_settings_reach_the_function_app_next_to_the_platform_ones():
    text = MAIN.read_text()
    assert "appSettings: gotosyncSettings" in text
    module = FUNCTION_APP.read_text()
    assert "properties: union(platformSettings, appSettings, webhookSettings)" in module
    platform = set(object_entries(module, "platformSettings"))
    assert platform == set(AZURE_PLATFORM)
    assert not platform & CODE_SETTINGS
    # Flex Consumption takes the runtime from functionAppConfig; these settings are not allowed there.
    for name in ("FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"):
        for source in (module, text):
            assert not re.search(rf"^\s*{name}\s*:", source, re.M), name


def test_local_settings_example_has_every_setting_and_nothing_stale():
    doc = json.loads(LOCAL.read_text())
    values = doc["Values"]
    assert doc["IsEncrypted"] is False
    assert CODE_SETTINGS - set(values) == set(), "settings missing from local.settings.json.example"
    assert set(values) - CODE_SETTINGS - LOCAL_PLATFORM == set(), "stale names in local.settings.json.example"
    assert all(isinstance(v, str) for v in values.values())
    settings = Settings.from_env(values)  # the example itself is valid
    assert settings.storage_connection_string.startswith("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1")
    assert settings.graph_base_url.startswith("http://127.0.0.1:")
    assert settings.key_vault_url == ""


def test_local_defaults_equal_the_code_defaults_unless_pointing_at_the_emulators():
    values = json.loads(LOCAL.read_text())["Values"]
    local_overrides = {
        "GOTOSYNC_STORAGE", "GRAPH_BASE_URL", "GRAPH_STATIC_TOKEN", "GOTO_SCIM_URL", "GOTO_ADMIN_URL",
        "GOTO_TOKEN_URL", "GOTO_CLIENT_ID", "GOTO_CLIENT_SECRET", "GOTO_PAT", "GOTO_VERIFIED_DOMAINS",
        "GRAPH_NOTIFICATION_URL", "GRAPH_LIFECYCLE_URL",
    }  # fmt: skip
    for s in SETTINGS.values():
        if s.env not in local_overrides:
            assert values[s.env] == s.default, s.env


def test_every_setting_a_trigger_names_is_a_known_setting():
    used: set[str] = set()
    for path in [ROOT / "function_app.py", *ROOT.glob("*/functions.py"), *ROOT.glob("sync_timer/*.py")]:
        text = path.read_text()
        used |= set(re.findall(r'"%([A-Za-z_][A-Za-z0-9_]*)%"', text))
        for conn in re.findall(r'connection="([^"]+)"', text):
            assert conn in LOCAL_PLATFORM or any(k.startswith(conn + "__") for k in AZURE_PLATFORM), conn
    assert used, "no %SETTING% found in any trigger"
    assert used <= CODE_SETTINGS, f"triggers read settings not in SETTINGS: {sorted(used - CODE_SETTINGS)}"


def test_docs_describe_every_setting():
    docs = (ROOT / "docs" / "configuration.md").read_text()
    for env in CODE_SETTINGS | set(AZURE_PLATFORM):
        assert f"`{env}`" in docs, f"docs/configuration.md does not describe {env}"


def test_the_docs_table_shows_each_declared_default_and_what_is_checked():
    """The columns "default" and "checked at start-up" come from each setting's declaration
    (shared.settings.describe()); the docs may say more after what the parser accepts."""
    rows = {
        m.group(1): (m.group(2).strip(), m.group(3).strip())
        for m in re.finditer(
            r"^\| `([A-Z_]+)` \|([^|]*)\|[^|]*\|([^|]*)\|", (ROOT / "docs" / "configuration.md").read_text(), re.M
        )
    }
    for declared in json.loads(describe()):
        default, checked = rows[declared["variable"]]
        assert default == (f"`{declared['default']}`" if declared["default"] else "(empty)"), declared["variable"]
        if declared["accepts"] != "—":
            assert checked.startswith(declared["accepts"]), (declared["variable"], checked)


def test_the_app_reads_the_environment_only_through_the_settings_registry():
    """Otherwise a setting could be read that main.bicep and local.settings.json.example never set."""
    allowed = {ROOT / "shared" / "settings.py", ROOT / "shared" / "telemetry.py"}  # telemetry: via SETTINGS too
    # The console's trigger hands the platform's own variables (WEBSITE_AUTH_ENABLED: is App Service
    # Authentication on?) to shared/ops/access.py; no gotosync setting is read there.
    allowed.add(ROOT / "console" / "functions.py")
    sources = [ROOT / "function_app.py"]
    for folder in ("shared", "sync_timer", "graph_webhook", "admin_api", "console"):
        sources += [p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts]
    offenders = [
        str(p.relative_to(ROOT))
        for p in sources
        if p not in allowed and re.search(r"os\.environ|getenv\(", p.read_text())
    ]
    assert offenders == []


def test_the_fallback_pace_divides_gotos_limit_by_the_most_instances_the_app_scales_to():
    """An instance that cannot reach the shared GoTo budget paces at GOTO_RATE_LIMIT /
    GOTO_INSTANCES: that is safe only if GOTO_INSTANCES is the Function App's maximum instance
    count, whatever the deployer sets it to."""
    assert main_settings()["GOTO_INSTANCES"] == "string(maximumInstanceCount)"


def test_the_cycle_budget_leaves_an_invocation_time_to_hand_on_before_the_function_timeout():
    """A cycle stops starting work at CYCLE_TIME_BUDGET_SECONDS, then finishes what is in flight,
    commits and sends its continuation: the default budget must leave minutes of host.json's
    functionTimeout for that. A timeout above 10 minutes stops the host on the Consumption plan:
    the app is deployed on Flex Consumption (D81)."""
    hours, minutes, seconds = json.loads((ROOT / "host.json").read_text())["functionTimeout"].split(":")
    timeout = int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    budget = int(SETTINGS["cycle_time_budget_seconds"].default)
    assert timeout - budget >= 300
    assert budget >= timeout / 2  # most of each invocation works on the cycle
    assert "tier: 'FlexConsumption'" in FUNCTION_APP.read_text()
