"""``backstop jobs list|show`` and ``backstop runs list``: the portal's queries on the command
line, for every tenant."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner, Result

from services.cli import app
from services.evaluator.store import set_override
from shared.db import Database
from shared.events import utcnow
from tests.portal.support import ingest, job_id, job_state, run, seed_tenants
from tests.support import tenant_of

runner = CliRunner()


def invoke(*args: str, code: int = 0) -> Result:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def jobs(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", db_url)
    t = seed_tenants(db)
    now = utcnow()
    ingest(db, *[run(tenant_of(t.a1), "success" if i % 2 else "failure",
                     now - timedelta(days=i), job="nightly", message=f"run {i}",
                     log_excerpt=f"log {i}") for i in range(3)])
    job_state(db, t.a1, "nightly", last_status="failure", last_run_at=now,
              consecutive_failures=1, cron="0 2 * * *", timezone="UTC",
              next_due_at=now + timedelta(hours=1))
    job_state(db, t.z1, "weekly", last_status="success", last_run_at=now)
    with db.session() as s:
        set_override(s, "customer", t.a1.customer.id, "failures_tolerance", "2")
    return {"nightly": job_id(db, t.a1, "nightly"), "weekly": job_id(db, t.z1, "weekly")}


def test_jobs_list_worst_first_with_the_last_30_days(jobs: dict[str, str]) -> None:
    rows = [line.split() for line in invoke("jobs", "list").stdout.splitlines()]
    assert rows[0][:5] == ["JOB_ID", "STATE", "CUSTOMER", "ACCOUNT", "JOB"]
    assert [(r[0], r[1]) for r in rows[1:]] == [(jobs["nightly"], "failing"),
                                               (jobs["weekly"], "ok")]
    assert rows[1][-1] == "." * 27 + "x+x"
    failing = json.loads(invoke("jobs", "list", "--state", "failing", "--json").stdout)
    assert failing["total"] == 1 and failing["items"][0]["job"] == "nightly"
    assert failing["items"][0]["days"][-1]["outcome"] == "failure"
    assert json.loads(invoke("jobs", "list", "--search", "WEEK", "--json").stdout)[
        "items"][0]["job_id"] == jobs["weekly"]
    assert "unknown state" in invoke("jobs", "list", "--state", "sad", code=2).stderr


def test_jobs_show_says_what_is_in_force(jobs: dict[str, str]) -> None:
    out = invoke("jobs", "show", jobs["nightly"]).stdout
    assert "schedule      0 2 * * * (UTC)" in out
    assert ["failures_tolerance", "2", "customer"] in [line.split() for line in out.splitlines()]
    detail = json.loads(invoke("jobs", "show", jobs["nightly"], "--json").stdout)
    assert detail["job"]["state"] == "failing" and len(detail["next_due"]) == 5
    assert invoke("jobs", "show", "nope", code=2).stderr == "error: no job 'nope'\n"


def test_runs_list_newest_first(jobs: dict[str, str]) -> None:
    rows = [line.split() for line in invoke("runs", "list", "--job", jobs["nightly"]
                                            ).stdout.splitlines()]
    assert [r[1] for r in rows[1:]] == ["failure", "success", "failure"]
    assert rows[1][-2:] == ["run", "0"]
    page = json.loads(invoke("runs", "list", "--job", jobs["nightly"], "--json", "--limit",
                             "1", "--offset", "1").stdout)
    assert page["total"] == 3 and page["items"][0]["log_excerpt"] == "log 1"
    assert invoke("runs", "list", "--job", "nope", code=2).stderr == "error: no job 'nope'\n"
