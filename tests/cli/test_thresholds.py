"""``backstop thresholds`` through the real command line, on both database backends."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.evaluator.store import load_policies
from shared.db import Database
from tests.conftest import make_account

runner = CliRunner()


@pytest.fixture
def env(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", db_url)
    return db


def invoke(*args: str) -> str:
    result = runner.invoke(app, ["thresholds", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_set_at_each_level_and_the_most_specific_wins(env: Database) -> None:
    issued = make_account(env, reseller="MSP", customer="Acme")
    account = issued.account
    invoke("set", "quota_percent", "70", "--reseller", "MSP")
    invoke("set", "quota_percent", "80", "--customer", account.customer_id)
    effective = json.loads(invoke("effective", "--account", account.id, "--json"))
    assert effective["quota_percent"] == 80.0
    invoke("set", "quota_percent", "95", "--account", account.id)
    invoke("set", "failures_tolerance", "3", "--account", account.id, "--job", "nightly")
    effective = json.loads(invoke("effective", "--account", account.id, "--job", "nightly",
                                  "--json"))
    assert effective["quota_percent"] == 95.0
    assert effective["failures_tolerance"] == 3
    assert effective["missed_runs_tolerance"] == 1  # the default
    with env.session() as session:
        book = load_policies(session)
    assert book.value("failures_tolerance", account.tenant(), "nightly") == 3
    assert book.value("failures_tolerance", account.tenant(), "other") == 1
    invoke("unset", "quota_percent", "--account", account.id)
    effective = json.loads(invoke("effective", "--account", account.id, "--json"))
    assert effective["quota_percent"] == 80.0
    listed = [json.loads(line) for line in invoke("list", "--json").splitlines()]
    assert {row["name"] for row in listed} == {"quota_percent", "failures_tolerance"}


def test_bad_names_values_and_targets_are_refused(env: Database) -> None:
    account = make_account(env).account
    for args in (["set", "nonsense", "1", "--account", account.id],
                 ["set", "failures_tolerance", "zero", "--account", account.id],
                 ["set", "failures_tolerance", "0", "--account", account.id],
                 ["set", "failures_tolerance", "2", "--account", "missing"],
                 ["set", "failures_tolerance", "2", "--job", "nightly"],
                 ["set", "failures_tolerance", "2"],
                 ["min-version", "restic", "not-a-version"]):
        result = runner.invoke(app, ["thresholds", *args])
        assert result.exit_code == 2, (args, result.output)


def test_minimum_client_versions(env: Database) -> None:
    invoke("min-version", "restic", "0.16.0")
    invoke("min-version", "restic", "0.17.0")
    with env.session() as session:
        assert str(load_policies(session).min_versions["restic"]) == "0.17.0"
    invoke("min-version", "restic", "--remove")
    with env.session() as session:
        assert load_policies(session).min_versions == {}
    assert "quota_percent" in invoke("defaults")
