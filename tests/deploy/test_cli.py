"""`gotosync authorize` and `gotosync grant-permissions` as an admin runs them."""

from __future__ import annotations

import argparse
import io
import json

import httpx
import pytest
from rich.console import Console

from cli import deploy as commands
from emulators.goto import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from shared.deploy.permissions import PermissionGrantError
from shared.goto.token_store import KeyVaultRefreshTokenStore
from shared.ops import InvalidInput
from shared.settings import Settings

from .test_permissions import MSI, FakeGraph
from .test_token_store import FakeSecretClient


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gotosync")
    commands.add_deploy_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.fixture
def browser(monkeypatch):
    """webbrowser.open -> a real HTTP client that follows GoTo's redirect to the loopback server."""
    opened: list[str] = []

    def open_url(url: str) -> bool:
        opened.append(url)
        httpx.get(url, follow_redirects=True, timeout=10).raise_for_status()
        return True

    monkeypatch.setattr(commands.webbrowser, "open", open_url)
    return opened


def output() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200), buffer


async def test_authorize_to_the_local_file(make_goto_emulator, tmp_path, browser, capsys):
    goto = make_goto_emulator(rate_limit=0)
    token_file = tmp_path / "t"
    settings = Settings(
        goto_client_id=DEFAULT_CLIENT_ID,
        goto_client_secret=DEFAULT_CLIENT_SECRET,
        goto_token_url=goto.token_url,
        goto_refresh_token_file=str(token_file),
    )
    console, _ = output()
    assert await commands.cmd_authorize(settings, parse("authorize", "--json"), console) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["principal"] == "admin@contoso.com"
    assert doc["storedIn"] == f"the file {token_file}"
    assert doc["missingScopes"] == []
    assert token_file.read_text().strip() in goto.refresh_tokens()
    assert token_file.read_text().strip() not in json.dumps(doc)
    assert browser[0].startswith(goto.authorize_url + "?")


async def test_authorize_to_key_vault_with_the_client_secret(make_goto_emulator, browser, monkeypatch):
    goto = make_goto_emulator(rate_limit=0)
    vault = FakeSecretClient()
    monkeypatch.setattr(KeyVaultRefreshTokenStore, "_secrets", lambda self: vault)
    settings = Settings(
        goto_client_id=DEFAULT_CLIENT_ID,
        goto_client_secret=DEFAULT_CLIENT_SECRET,
        goto_token_url=goto.token_url,
        key_vault_url="https://kv-x.vault.azure.net/",
    )
    console, text = output()
    assert await commands.cmd_authorize(settings, parse("authorize", "--store-client-secret"), console) == 0
    assert vault.versions["goto-client-secret"] == [DEFAULT_CLIENT_SECRET]
    assert vault.versions["goto-refresh-token"][-1] in goto.refresh_tokens()
    shown = text.getvalue()
    assert "Key Vault secret 'goto-refresh-token' in https://kv-x.vault.azure.net" in shown
    assert vault.versions["goto-refresh-token"][-1] not in shown
    assert DEFAULT_CLIENT_SECRET not in shown


async def test_authorize_refuses_what_it_cannot_do(tmp_path):
    console, _ = output()
    with pytest.raises(InvalidInput, match="GOTO_CLIENT_ID") as info:
        await commands.cmd_authorize(Settings(), parse("authorize"), console)
    assert info.value.exit_code == 2
    local = Settings(goto_client_id="c", goto_client_secret="s", goto_refresh_token_file=str(tmp_path / "t"))
    with pytest.raises(InvalidInput, match="KEY_VAULT_URL") as info:
        await commands.cmd_authorize(local, parse("authorize", "--store-client-secret"), console)
    assert info.value.exit_code == 2


async def test_grant_permissions_command(monkeypatch, capsys):
    graph = FakeGraph(existing=("User.Read.All",))

    class Credential:
        closed = False

        async def close(self) -> None:
            Credential.closed = True

    import shared.entra.graph as graph_module

    monkeypatch.setattr(graph_module, "make_graph_client", lambda base, token="": (graph.client(), Credential()))
    console, _ = output()
    args = parse("grant-permissions", "--principal-id", MSI, "--json")
    assert await commands.cmd_grant_permissions(Settings(), args, console) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(g["permission"], g["status"]) for g in doc] == [
        ("Application.Read.All", "granted"),
        ("User.Read.All", "already granted"),
        ("GroupMember.Read.All", "granted"),
        ("Group.Read.All", "granted"),
    ]
    assert Credential.closed
    args = parse("grant-permissions", "--principal-id", "not-a-guid")
    with pytest.raises(PermissionGrantError, match="a GUID") as info:
        await commands.cmd_grant_permissions(Settings(), args, console)
    assert info.value.exit_code == 2


async def test_authorizing_again_takes_the_client_secret_from_the_vault(make_goto_emulator, browser, monkeypatch):
    goto = make_goto_emulator(rate_limit=0)
    vault = FakeSecretClient()
    vault.versions["goto-client-secret"] = [DEFAULT_CLIENT_SECRET]
    monkeypatch.setattr(KeyVaultRefreshTokenStore, "_secrets", lambda self: vault)
    monkeypatch.setattr(commands.sys.stdin, "isatty", lambda: False)
    settings = Settings(
        goto_client_id=DEFAULT_CLIENT_ID, goto_token_url=goto.token_url, key_vault_url="https://kv-x.vault.azure.net/"
    )
    console, _ = output()
    assert await commands.cmd_authorize(settings, parse("authorize"), console) == 0
    assert vault.versions["goto-refresh-token"][-1] in goto.refresh_tokens()


def test_gotosync_authorize_through_the_command_line(make_goto_emulator, tmp_path, browser, monkeypatch, capsys):
    from cli.main import main

    goto = make_goto_emulator(rate_limit=0)
    for name, value in {
        "GOTO_CLIENT_ID": DEFAULT_CLIENT_ID,
        "GOTO_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "GOTO_TOKEN_URL": goto.token_url,
        "GOTO_REFRESH_TOKEN_FILE": str(tmp_path / "t"),
        "KEY_VAULT_URL": "",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["authorize", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["principal"] == "admin@contoso.com"
    assert (tmp_path / "t").read_text().strip() in goto.refresh_tokens()
    assert main(["grant-permissions", "--principal-id", "nope"]) == 2
