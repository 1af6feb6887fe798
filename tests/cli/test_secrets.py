"""``backstop secrets`` and sealed webhook secrets, through the real command line."""

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from typer.testing import CliRunner

from services.cli import app
from shared.db import Database
from shared.secretbox import SecretBox, SecretUnreadable, new_key

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", db_url)
    monkeypatch.setenv("BACKSTOP_DATA_DIR", str(tmp_path / "var"))
    invoke("accounts", "create", "--reseller", "MSP", "--customer", "Acme", "--name", "files")
    return db_url


def stored_secrets(url: str) -> dict[str, str]:
    db = Database(url)
    with db.engine.connect() as conn:
        rows: dict[str, str] = dict(
            conn.execute(text("SELECT id, secret FROM webhook_endpoints")).all())
    db.dispose()
    return rows


def test_secrets_are_sealed_and_rotation_moves_them_to_the_new_key(
    env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = new_key(), new_key()
    monkeypatch.setenv("BACKSTOP_SECRET_KEYS", old)
    signed = json.loads(invoke("webhooks", "add", "--reseller", "MSP", "--url",
                               "https://psa.example/hook", "--json"))
    paged = json.loads(invoke("webhooks", "add", "--reseller", "MSP", "--url",
                              "https://events.pagerduty.com/v2/enqueue", "--format", "pagerduty",
                              "--secret", "R0UTINGKEY0000000000000000000000", "--json"))
    clear = {signed["id"]: signed["secret"], paged["id"]: "R0UTINGKEY0000000000000000000000"}
    before = stored_secrets(env)
    for endpoint_id, secret in clear.items():
        assert before[endpoint_id].startswith("fernet:") and secret not in before[endpoint_id]

    monkeypatch.setenv("BACKSTOP_SECRET_KEYS", f"{new},{old}")
    assert invoke("secrets", "rotate").startswith("2 secrets sealed")
    after = stored_secrets(env)
    for endpoint_id, secret in clear.items():
        assert SecretBox([new]).open(after[endpoint_id]) == secret
        with pytest.raises(SecretUnreadable):
            SecretBox([old]).open(after[endpoint_id])


def test_a_shared_database_without_a_key_is_refused(env: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKSTOP_SECRET_KEYS", raising=False)
    result = runner.invoke(app, ["webhooks", "add", "--reseller", "MSP", "--url",
                                 "https://psa.example/hook"])
    assert result.exit_code == 2
    assert "BACKSTOP_SECRET_KEYS is not set" in result.output
    assert stored_secrets(env) == {}


def test_new_key_is_a_fernet_key() -> None:
    Fernet(invoke("secrets", "new-key").strip())
