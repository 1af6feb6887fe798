"""``backstop webhooks`` and ``backstop branding`` through the real command line."""

import json

import pytest
from standardwebhooks import Webhook
from typer.testing import CliRunner

from services.cli import app
from services.notifier.channels.signing import new_secret, signed_headers
from services.notifier.tables import WebhookEndpoint
from shared.db import Database
from shared.events import utcnow
from shared.secretbox import new_key

KEY = new_key()

runner = CliRunner()


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", db_url)
    monkeypatch.setenv("BACKSTOP_SECRET_KEYS", KEY)
    result = runner.invoke(app, ["accounts", "create", "--reseller", "MSP", "--customer", "Acme",
                                 "--name", "files", "--json"])
    assert result.exit_code == 0, result.output
    return db_url


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_add_backstop_prints_a_working_secret(env: str) -> None:
    out = json.loads(invoke("webhooks", "add", "--reseller", "MSP", "--customer", "Acme",
                            "--url", "https://psa.example/hook", "--format", "backstop",
                            "--json"))
    assert out["secret"].startswith("whsec_") and out["customer_id"]
    headers = signed_headers(out["secret"], "msg_1", "{}", utcnow())
    assert Webhook(out["secret"]).verify("{}", headers) == {}
    text = invoke("webhooks", "add", "--reseller", "MSP", "--url", "https://x.example/h")
    assert text.startswith("id ") and "secret  whsec_" in text


def test_given_secret_is_not_echoed_and_list_remove(env: str) -> None:
    out = json.loads(invoke("webhooks", "add", "--reseller", "MSP", "--url", "https://a.example",
                            "--format", "backstop", "--secret", new_secret(), "--json"))
    assert out["secret"] is None
    pd = json.loads(invoke("webhooks", "add", "--reseller", "MSP", "--url",
                           "https://events.pagerduty.com/v2/enqueue", "--format", "pagerduty",
                           "--secret", "R0UTING", "--json"))
    listed = json.loads(invoke("webhooks", "list", "--json"))["items"]
    assert {e["id"] for e in listed} == {out["id"], pd["id"]}
    assert all("secret" not in e for e in listed)
    invoke("webhooks", "remove", out["id"])
    listed = json.loads(invoke("webhooks", "list", "--json"))["items"]
    assert [e["id"] for e in listed] == [pd["id"]]
    db = Database(env)
    with db.session() as s:
        row = s.get(WebhookEndpoint, out["id"])
        assert row is not None and not row.enabled
    db.dispose()


@pytest.mark.parametrize("args", [
    ["--reseller", "Nope", "--url", "https://a.example"],
    ["--reseller", "MSP", "--url", "ftp://a.example"],
    ["--reseller", "MSP", "--url", "https://a.example", "--format", "slack"],
    ["--reseller", "MSP", "--url", "https://a.example", "--format", "pagerduty"],
])
def test_add_refuses_bad_input(env: str, args: list[str]) -> None:
    result = runner.invoke(app, ["webhooks", "add", *args])
    assert result.exit_code == 2


def test_branding_set_and_show(env: str) -> None:
    invoke("branding", "set", "--reseller", "MSP", "--name", "Acme IT", "--sender",
           "alerts@acme-it.example", "--logo-url", "https://acme-it.example/l.png")
    invoke("branding", "set", "--reseller", "MSP", "--footer", "Your Acme IT team")
    shown = json.loads(invoke("branding", "show", "--reseller", "MSP", "--json"))
    assert shown["name"] == "Acme IT" and shown["footer"] == "Your Acme IT team"
    assert shown["sender"] == "alerts@acme-it.example"
