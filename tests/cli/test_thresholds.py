"""``backstop thresholds`` through the real command line, on both database backends."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.evaluator.store import load_policies
from services.evaluator.tables import JobState
from shared.db import Database
from shared.tenancy import Account, get_or_create_job
from tests.support import make_account

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
    listed = json.loads(invoke("list", "--json"))["items"]
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


def _job_state(db: Database, account: Account, job: str, **schedule: Any) -> None:
    """What the evaluator stores for a job it has seen (with the schedule it knows)."""
    with db.session() as session:
        row = get_or_create_job(session, account.id, job)
        session.add(JobState(job_id=row.id, account_id=account.id, job_name=job, **schedule))


def test_effective_says_where_each_value_comes_from_and_when_a_stuck_run_pages(
        env: Database) -> None:
    account = make_account(env).account
    out = invoke("effective", "--account", account.id)
    assert re.search(r"^unscheduled_max_runtime_seconds +86400 +default$", out, re.M)
    assert ("run_too_long, jobs without a schedule: fires when a started run has not finished "
            "after 86400 s (1 day, 0:00:00; unscheduled_max_runtime_seconds, from default)") in out
    assert ("run_too_long, jobs with a schedule: fires when a started run has not finished "
            "within the schedule's period") in out

    invoke("set", "max_runtime_seconds", "3600", "--account", account.id, "--job", "db")
    out = invoke("effective", "--account", account.id, "--job", "db")
    assert re.search(r"^max_runtime_seconds +3600 +job$", out, re.M)
    assert "after 3600 s (1:00:00; max_runtime_seconds, from job)" in out


def test_effective_says_plainly_when_no_too_long_alert_is_armed(env: Database) -> None:
    account = make_account(env).account
    _job_state(env, account, "nightly", cron="0 3 * * *", timezone="Europe/Berlin",
               schedule_settings={"failures_tolerance": 2})
    _job_state(env, account, "adhoc")
    invoke("set", "unscheduled_max_runtime_seconds", "0", "--account", account.id)
    adhoc = invoke("effective", "--account", account.id, "--job", "adhoc")
    assert re.search(r"^unscheduled_max_runtime_seconds +0 +account$", adhoc, re.M)
    assert "schedule: none known to the evaluator" in adhoc
    assert ("run_too_long: NOT ARMED: max_runtime_seconds and unscheduled_max_runtime_seconds "
            "are 0 and there is no schedule, so a run that never finishes raises no alert"
            ) in adhoc
    nightly = invoke("effective", "--account", account.id, "--job", "nightly")
    assert "schedule: cron 0 3 * * * (Europe/Berlin)" in nightly
    assert "run_too_long: fires when a started run has not finished within the schedule's" in (
        nightly)
    # The client's own schedule settings count, as they do for the evaluator.
    assert re.search(r"^failures_tolerance +2 +schedule$", nightly, re.M)
    assert json.loads(invoke("effective", "--account", account.id, "--job", "nightly", "--json")
                      )["failures_tolerance"] == 2
