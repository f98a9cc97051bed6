"""Every .bicep file parses (pycep-parser's Bicep grammar) and passes the structural checks of
tests/deploy/bicep_check.py; broken snippets are rejected, current syntax is accepted."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from .bicep_check import BicepError, check_file, check_text

ROOT = Path(__file__).parents[2]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))


def test_there_is_a_main_template_and_small_modules():
    names = {p.relative_to(INFRA).as_posix() for p in BICEP_FILES}
    assert "main.bicep" in names
    assert {n for n in names if n.startswith("modules/")} >= {
        "modules/function-app.bicep",
        "modules/storage.bicep",
        "modules/identity.bicep",
        "modules/keyvault.bicep",
        "modules/monitoring.bicep",
        "modules/rbac.bicep",
        "modules/graph-permissions.bicep",
        "modules/console-auth.bicep",
    }


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses_and_is_consistent(path):
    check_file(path)


def test_bicepconfig_and_parameters_are_valid_json():
    config = json.loads((INFRA / "bicepconfig.json").read_text())
    graph = config["extensions"]["microsoftGraphV1"]
    assert graph.startswith("br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:")
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    main = check_file(INFRA / "main.bicep")
    assert set(parameters) <= set(main.params), "main.parameters.json names a param main.bicep does not declare"
    required = {p for p, has_default in main.params.items() if not has_default}
    assert required <= set(parameters), "a required param of main.bicep is not filled in by azd"


def test_the_graph_extension_is_declared_where_graph_resources_are():
    for path in BICEP_FILES:
        text = path.read_text()
        if "'Microsoft.Graph/" in text:
            assert "extension microsoftGraphV1" in text, path


def test_storage_allows_no_shared_keys_and_the_vault_uses_rbac():
    storage = (INFRA / "modules/storage.bicep").read_text()
    assert "allowSharedKeyAccess: false" in storage
    vault = (INFRA / "modules/keyvault.bicep").read_text()
    assert "enableRbacAuthorization: true" in vault
    app = (INFRA / "modules/function-app.bicep").read_text()
    assert "tier: 'FlexConsumption'" in app
    assert "name: 'python'" in app and "version: '3.11'" in app
    assert "keyVaultReferenceIdentity: identityId" in app


def _resources(path: Path, type_name: str) -> list[dict[str, Any]]:
    parsed = check_file(path).parsed
    return [r["config"] for r in parsed["resources"].values() if r["type"] == type_name]


def test_the_console_is_behind_app_service_authentication_with_entra_id():
    auth_file = INFRA / "modules/console-auth.bicep"
    [auth] = _resources(auth_file, "Microsoft.Web/sites/config")
    assert auth["name"] == "authsettingsV2" and auth["parent"] == "site"
    props = auth["properties"]
    assert props["platform"]["enabled"] is True
    # Unauthenticated requests reach the app: the webhook and the function-key endpoints must keep
    # working; the console's own code refuses every request without the admin role.
    assert props["globalValidation"] == {
        "requireAuthentication": False,
        "unauthenticatedClientAction": "AllowAnonymous",
    }
    assert props["httpSettings"]["requireHttps"] is True
    entra = props["identityProviders"]["azureActiveDirectory"]
    assert entra["enabled"] is True
    # No client secret: the managed identity, through a federated credential.
    assert entra["registration"]["clientSecretSettingName"] == "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID"
    assert entra["registration"]["openIdIssuer"] == "issuer"
    # No token reaches the page (/.auth/me would hand tokens out): the token store is off.
    assert props["login"]["tokenStore"] == {"enabled": False}
    assert props["login"]["allowedExternalRedirectUrls"] == [] and props["login"]["nonce"]["validateNonce"] is True


def test_the_console_has_its_own_app_registration_with_the_admin_role_and_assignment_required():
    from shared.ops.access import ADMIN_ROLE

    path = INFRA / "modules/console-auth.bicep"
    [app] = _resources(path, "Microsoft.Graph/applications")
    assert app["signInAudience"] == "AzureADMyOrg"
    assert [r["value"] for r in app["appRoles"]] == ["adminRoleValue"]
    assert check_file(path).parsed["variables"]["adminRoleValue"]["value"] == ADMIN_ROLE  # the role the code checks
    assert app["appRoles"][0]["allowedMemberTypes"] == ["User"] and app["appRoles"][0]["isEnabled"] is True
    assert app["web"]["redirectUris"] == ["https://${appHostName}/.auth/login/aad/callback"]
    [principal] = _resources(path, "Microsoft.Graph/servicePrincipals")
    assert principal["appRoleAssignmentRequired"] is True
    [credential] = _resources(path, "Microsoft.Graph/applications/federatedIdentityCredentials")
    assert credential["audiences"] == ["api://AzureADTokenExchange"] and credential["subject"] == "identityPrincipalId"
    assert (
        "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: identityClientId" in (INFRA / "modules/function-app.bicep").read_text()
    )
    main = (INFRA / "main.bicep").read_text()
    assert "identityPrincipalId: identity.outputs.principalId" in main
    assert "module consoleAuth 'modules/console-auth.bicep' = if (consoleSignIn)" in main


GOOD = """
targetScope = 'resourceGroup'
metadata info = 'current syntax'
extension microsoftGraphV1
import { shared } from 'shared.bicep'

@export()
type settingPair = {
  name: string
  value: string?
}

func double(x int) int => x * 2

@description('an object with a nullable property')
param options object = {}
param count int = 2
#disable-next-line prefer-interpolation
var doubled = double(count)
var fallback = options.?name ?? 'default'
var multi = '''
a ${not interpolated} b
'''
var names = map(range(0, doubled), i => 'x${i}-${fallback}${multi}')

resource sp 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000003-0000-0000-c000-000000000000'
}

resource kv 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: names[0]
  resource secret 'secrets' existing = {
    name: 'x'
  }
}

resource grants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [for p in ['User.Read.All']: {
  appRoleId: filter(sp.appRoles, r => r.value == p)[0].id
  principalId: kv.id
  resourceId: sp.id
}]

output s settingPair = { name: shared, value: kv::secret.name }
"""


def test_current_syntax_is_accepted(tmp_path):
    # pycep-parser 0.7.1 gaps found on the way: a filtered loop `[for x in xs: if (c) {...}]` is not
    # parsed, and an unterminated `${` inside a string is accepted (our lexer catches that one).
    check_text(GOOD, tmp_path / "good.bicep")


BROKEN = {
    "unclosed brace": "param a string = 'x'\nresource r 'Microsoft.Web/sites@2024-04-01' = {\n  name: a\n",
    "unterminated string": "param a string = 'x\n",
    "unknown keyword": "parm a string = 'x'\n",
    "unterminated interpolation": "param a string = 'x'\nvar b = '${a'\noutput o string = b\n",
    "mismatched brackets": "var a = [\n  1\n}\noutput o array = a\n",
    "type without version": "resource r 'Microsoft.Web/sites' = {\n  name: 'x'\n}\n",
    "bad api version": "resource r 'Microsoft.Web/sites@latest' = {\n  name: 'x'\n}\n",
    "unused param": "param a string = 'x'\nparam b string = 'y'\noutput o string = a\n",
    "unused var": "var a = 1\noutput o int = 2\n",
    "bad escape": "var a = 'x\\qy'\noutput o string = a\n",
    "unterminated comment": "/* never closed\nparam a string\n",
}


@pytest.mark.parametrize("snippet", BROKEN.values(), ids=BROKEN.keys())
def test_broken_snippets_are_rejected(snippet, tmp_path):
    with pytest.raises(BicepError):
        check_text(snippet, tmp_path / "broken.bicep")


def write_module(tmp_path: Path) -> None:
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "m.bicep").write_text(
        "param required string\nparam optional string = 'x'\noutput value string = '${required}${optional}'\n"
    )


MODULE_MISTAKES = {
    "missing module file": ("modules/nope.bicep", "required: 'a'", "m.outputs.value", "does not exist"),
    "unknown output": ("modules/m.bicep", "required: 'a'", "m.outputs.other", "no such output"),
    "unknown module param": ("modules/m.bicep", "required: 'a'\n    typo: 'b'", "m.outputs.value", "does not declare"),
    "required param not passed": ("modules/m.bicep", "optional: 'a'", "m.outputs.value", "required params"),
}


@pytest.mark.parametrize(("target", "params", "use", "message"), MODULE_MISTAKES.values(), ids=MODULE_MISTAKES.keys())
def test_module_mistakes_are_rejected(tmp_path, target, params, use, message):
    write_module(tmp_path)
    text = f"module m '{target}' = {{\n  name: 'm'\n  params: {{\n    {params}\n  }}\n}}\noutput o string = {use}\n"
    with pytest.raises(BicepError, match=message):
        check_text(text, tmp_path / "main.bicep")


def test_a_correct_module_use_passes(tmp_path):
    write_module(tmp_path)
    text = (
        "module m 'modules/m.bicep' = {\n  name: 'm'\n  params: {\n    required: 'a'\n  }\n}\n"
        "output o string = m.outputs.value\n"
    )
    check_text(text, tmp_path / "main.bicep")


LEXER_CATCHES = ["unclosed brace", "unterminated string", "unknown keyword", "unterminated interpolation",
                 "mismatched brackets", "unterminated comment", "bad escape", "bad api version"]  # fmt: skip


@pytest.mark.parametrize("name", LEXER_CATCHES)
def test_our_own_checks_reject_these_even_without_the_grammar(name, tmp_path):
    with pytest.raises(BicepError):
        check_text(BROKEN[name], tmp_path / "broken.bicep", parsed={})


def test_the_notification_url_carries_a_key_scoped_to_the_intake_function():
    """Graph stores the notification URL (key included) in every subscription: the key must open
    the intake function only, never a host key that opens /api/ops too."""
    app = (INFRA / "modules/function-app.bicep").read_text()
    assert "resource webhookKey 'Microsoft.Web/sites/functions/keys@" in app
    assert re.search(r"resource notifyFunction 'Microsoft\.Web/sites/functions@[^']+' existing", app)
    assert "name: 'graph_notifications'" in app
    assert "/api/graph/notify?code=${listKeys(notifyFunction.id, " in app
    for source in (app, (INFRA / "main.bicep").read_text()):
        assert "host/default" not in source and "functionKeys" not in source and "masterKey" not in source
    main = check_file(INFRA / "main.bicep")
    assert "graphWebhook" in main.params
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["graphWebhook"]["value"] == "${GRAPH_WEBHOOK=false}"
