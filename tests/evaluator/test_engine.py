"""The rules, through the engine, with a clock the test moves: no database, no NATS."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.evaluator.engine import Engine
from services.evaluator.facts import AccountFacts, JobFacts, Transition
from services.evaluator.policies import Override, PolicyBook
from shared.clock import FakeClock
from shared.events import Tenant
from tests.evaluator.support import T0, TENANT, heartbeat, run, schedule, usage

HOUR = timedelta(hours=1)


def kinds(transitions: list[Transition]) -> list[tuple[str, str]]:
    return [(t.action, t.kind) for t in transitions]


def engine(clock: FakeClock, *overrides: Override, versions: dict[str, str] | None = None,
           created: datetime | None = None) -> Engine:
    e = Engine(PolicyBook.build(overrides, versions), clock)
    e.load([], [AccountFacts(tenant=TENANT, created_at=created or clock.now())])
    return e


def test_failed_run_fires_and_resolves(clock: FakeClock) -> None:
    e = engine(clock)
    assert kinds(e.apply(run("failure", T0, message="disk full"))) == [("fire", "failed_run")]
    assert e.apply(run("failure", T0 + HOUR)) == []  # already firing
    assert kinds(e.apply(run("success", T0 + 2 * HOUR))) == [("resolve", "failed_run")]


def test_failed_run_tolerance_counts_failures_in_a_row(clock: FakeClock) -> None:
    e = engine(clock, Override("account", TENANT.account, "failures_tolerance", "3"))
    assert e.apply(run("failure", T0)) == []
    assert e.apply(run("failure", T0 + HOUR)) == []
    assert e.apply(run("success", T0 + 2 * HOUR)) == []  # streak broken
    for i in range(2):
        assert e.apply(run("failure", T0 + (3 + i) * HOUR)) == []
    fired = e.apply(run("failure", T0 + 5 * HOUR))
    assert kinds(fired) == [("fire", "failed_run")]
    assert fired[0].details["consecutive_failures"] == 3


def test_warning_with_errors_counts_as_failure_only_when_configured(clock: FakeClock) -> None:
    assert engine(clock).apply(run("warning", T0, error_count=2)) == []
    strict = engine(clock, Override("reseller", TENANT.reseller, "warning_with_errors_fails", "1"))
    assert strict.apply(run("warning", T0, error_count=0)) == []
    assert kinds(strict.apply(run("warning", T0, error_count=2))) == [("fire", "failed_run")]


def test_schedule_tolerance_from_client_beats_account_setting(clock: FakeClock) -> None:
    e = engine(clock, Override("account", TENANT.account, "failures_tolerance", "5"))
    e.apply(schedule(T0, interval_seconds=3600, failures_tolerance=2))
    assert e.apply(run("failure", T0)) == []
    assert kinds(e.apply(run("failure", T0 + HOUR))) == [("fire", "failed_run")]


def test_missed_run_fires_after_due_plus_grace_and_resolves_on_next_run(clock: FakeClock) -> None:
    e = engine(clock)
    e.apply(schedule(T0, interval_seconds=3600, grace_seconds=600))
    assert e.next_deadline() == T0 + HOUR + timedelta(minutes=10)
    clock.advance(HOUR + timedelta(minutes=9))
    assert e.due() == []
    clock.advance(timedelta(minutes=1))
    fired = e.due()
    assert kinds(fired) == [("fire", "missed_run")]
    assert fired[0].details["consecutive_misses"] == 1
    assert kinds(e.apply(run("started", clock.now()))) == [("resolve", "missed_run")]


def test_a_run_moves_the_deadline(clock: FakeClock) -> None:
    e = engine(clock)
    e.apply(schedule(T0, interval_seconds=3600, grace_seconds=600))
    clock.advance(50 * 60)
    e.apply(run("success", clock.now()))
    assert e.next_deadline() == clock.now() + HOUR + timedelta(minutes=10)
    clock.advance(HOUR)
    assert e.due() == []


def test_missed_tolerance_counts_each_occurrence_once(clock: FakeClock) -> None:
    e = engine(clock, Override("account", TENANT.account, "missed_runs_tolerance", "3"))
    e.apply(schedule(T0, interval_seconds=3600, grace_seconds=60))
    clock.advance(HOUR + timedelta(minutes=2))
    assert e.due() == []
    assert e.due() == []  # asking again does not count the same occurrence again
    clock.advance(HOUR)
    assert e.due() == []
    clock.advance(HOUR)
    fired = e.due()
    assert kinds(fired) == [("fire", "missed_run")]
    assert fired[0].details["consecutive_misses"] == 3


def test_catch_up_counts_every_occurrence_passed_while_down(clock: FakeClock) -> None:
    e = engine(clock, Override("account", TENANT.account, "missed_runs_tolerance", "5"))
    e.apply(schedule(T0, interval_seconds=3600, grace_seconds=60))
    clock.advance(6 * HOUR)  # down for six hours: six occurrences passed
    fired = e.due()
    assert kinds(fired) == [("fire", "missed_run")]
    assert fired[0].details["consecutive_misses"] == 5
    job = e.jobs[(TENANT.account, "nightly")]
    assert job.consecutive_misses == 5  # 1h..5h are past due+grace; 6h is not (grace)
    assert job.next_due_at == T0 + 6 * HOUR


def test_a_running_job_is_not_missed(clock: FakeClock) -> None:
    e = engine(clock)
    e.apply(schedule(T0, interval_seconds=3600, grace_seconds=60, max_runtime_seconds=86400))
    e.apply(run("started", T0 + timedelta(minutes=59)))
    clock.advance(3 * HOUR)
    assert e.due() == []


def test_run_too_long_fires_at_max_runtime_and_resolves_on_finish(clock: FakeClock) -> None:
    e = engine(clock)
    e.apply(schedule(T0, cron="0 2 * * *", timezone="UTC", max_runtime_seconds=1800))
    e.apply(run("started", T0, run_id="r1"))
    clock.advance(timedelta(minutes=29))
    assert e.due() == []
    clock.advance(timedelta(minutes=1))
    assert kinds(e.due()) == [("fire", "run_too_long")]
    done = e.apply(run("success", clock.now(), run_id="r1"))
    assert ("resolve", "run_too_long") in kinds(done)


def test_never_finished_uses_the_schedule_period(clock: FakeClock) -> None:
    e = engine(clock)
    e.apply(schedule(T0, interval_seconds=4 * 3600, grace_seconds=8 * 3600))
    e.apply(run("started", T0))
    clock.advance(4 * HOUR - timedelta(seconds=1))
    assert e.due() == []
    clock.advance(timedelta(seconds=1))
    assert kinds(e.due()) == [("fire", "run_too_long")]


def test_a_run_of_a_job_without_schedule_or_max_runtime_is_too_long_after_a_day(
        clock: FakeClock) -> None:
    """Nothing says how long such a run may take: a started run that never finishes must still
    page, after unscheduled_max_runtime_seconds (24 h by default)."""
    e = engine(clock)
    e.apply(run("started", T0))
    clock.advance(24 * HOUR - timedelta(seconds=1))
    assert e.due() == []
    clock.advance(timedelta(seconds=1))
    fired = e.due()
    assert kinds(fired) == [("fire", "run_too_long")]
    assert fired[0].details["max_runtime_seconds"] == 86400
    assert ("resolve", "run_too_long") in kinds(e.apply(run("success", clock.now())))


def test_the_default_for_jobs_without_schedule_is_a_threshold(clock: FakeClock) -> None:
    """Overridable like any threshold; 0 turns the alert off for such jobs; a job's own
    max_runtime_seconds and a schedule's period still come first."""
    e = engine(clock, Override("account", TENANT.account, "unscheduled_max_runtime_seconds",
                               "7200"),
               Override("job", f"{TENANT.account}/forever", "unscheduled_max_runtime_seconds",
                        "0"),
               Override("job", f"{TENANT.account}/short", "max_runtime_seconds", "600"))
    for job in ("nightly", "forever", "short"):
        e.apply(run("started", T0, job=job))
    e.apply(schedule(T0, job="hourly", interval_seconds=3600, grace_seconds=7200))
    e.apply(run("started", T0, job="hourly"))
    clock.advance(timedelta(minutes=10))
    assert [(t.job, t.kind) for t in e.due()] == [("short", "run_too_long")]
    clock.advance(HOUR - timedelta(minutes=10))
    assert [(t.job, t.kind) for t in e.due()] == [("hourly", "run_too_long")]
    clock.advance(HOUR)
    assert [(t.job, t.kind) for t in e.due()] == [("nightly", "run_too_long")]
    clock.advance(timedelta(days=30))
    assert e.due() == []  # "forever": switched off


def test_a_start_uploaded_after_its_completion_is_not_a_running_run(clock: FakeClock) -> None:
    """Clients that were offline upload in any order: a late start must not page as stuck."""
    e = engine(clock)
    e.apply(schedule(T0, cron="0 2 * * *", timezone="UTC", max_runtime_seconds=1800))
    e.apply(run("success", T0 + timedelta(minutes=10), run_id="r1"))
    e.apply(run("started", T0, run_id="r1"))
    clock.advance(3 * HOUR)
    assert "run_too_long" not in [kind for _, kind in kinds(e.due())]
    # A start after the last completion is a new run, watched as before.
    e.apply(run("started", clock.now(), run_id="r2"))
    clock.advance(timedelta(minutes=30))
    assert ("fire", "run_too_long") in kinds(e.due())


def test_quota_fires_at_threshold_and_resolves_below_hysteresis(clock: FakeClock) -> None:
    e = engine(clock)
    assert e.apply(usage(T0, 899)) == []
    assert kinds(e.apply(usage(T0, 900))) == [("fire", "quota")]
    assert e.apply(usage(T0, 880)) == []  # inside the hysteresis band: still firing
    assert kinds(e.apply(usage(T0, 849))) == [("resolve", "quota")]


def test_quota_threshold_most_specific_wins(clock: FakeClock) -> None:
    e = engine(clock,
               Override("reseller", TENANT.reseller, "quota_percent", "50"),
               Override("customer", TENANT.customer, "quota_percent", "70"),
               Override("account", TENANT.account, "quota_percent", "80"))
    assert e.apply(usage(T0, 790)) == []
    assert kinds(e.apply(usage(T0, 800))) == [("fire", "quota")]


def test_quota_uses_the_account_quota_when_the_report_has_none(clock: FakeClock) -> None:
    e = Engine(PolicyBook(), clock)
    e.load([], [AccountFacts(tenant=TENANT, created_at=T0, quota_bytes=100)])
    assert kinds(e.apply(usage(T0, 95, quota=None))) == [("fire", "quota")]


def test_outdated_client_compares_versions_not_strings(clock: FakeClock) -> None:
    e = engine(clock, versions={"restic": "0.9.6"})
    assert e.apply(heartbeat(T0, "0.10.0")) == []  # "0.10.0" < "0.9.6" as strings
    fired = e.apply(heartbeat(T0, "0.9.5"))
    assert kinds(fired) == [("fire", "outdated_client")]
    assert fired[0].key == "restic"
    assert kinds(e.apply(run("success", T0, client_name="restic", client_version="0.17.1"))) == [
        ("resolve", "outdated_client")]


def test_never_used_fires_after_n_days_and_resolves_on_first_run(clock: FakeClock) -> None:
    e = engine(clock, created=T0 - timedelta(days=6))
    assert e.due() == []
    clock.advance(timedelta(days=1))
    assert kinds(e.due()) == [("fire", "never_used")]
    assert kinds(e.apply(run("success", clock.now()))) == [("resolve", "never_used")]


def test_no_data_fires_after_n_days_of_zero_bytes(clock: FakeClock) -> None:
    e = engine(clock)
    e.apply(run("success", T0, bytes_transferred=100))
    for day in range(1, 4):
        e.apply(run("success", T0 + timedelta(days=day), bytes_transferred=0))
        assert e.due() == []
    clock.set(T0 + timedelta(days=4))
    assert kinds(e.due()) == [("fire", "no_data")]
    back = e.apply(run("success", clock.now(), bytes_transferred=5))
    assert kinds(back) == [("resolve", "no_data")]


def test_future_timestamps_are_bounded_by_the_clock(clock: FakeClock) -> None:
    e = engine(clock)
    e.apply(schedule(T0, interval_seconds=3600, grace_seconds=60))
    e.apply(run("success", T0 + timedelta(days=30)))
    assert e.next_deadline() is not None
    assert e.next_deadline() < T0 + 2 * HOUR  # type: ignore[operator]


def test_policies_change_moves_deadlines(clock: FakeClock) -> None:
    e = engine(clock)
    e.apply(schedule(T0, interval_seconds=3600))
    assert e.next_deadline() == T0 + 2 * HOUR
    e.set_policies(PolicyBook.build([Override("job", f"{TENANT.account}/nightly",
                                              "grace_seconds", "60")]))
    assert e.next_deadline() == T0 + HOUR + timedelta(seconds=60)


def test_replace_puts_stored_facts_in_place_of_one_accounts_and_leaves_the_rest(
    clock: FakeClock
) -> None:
    """After a failed transaction: the accounts it touched are read again, nobody else's."""
    other = Tenant(reseller="r1", customer="c1", account="a2")
    e = engine(clock)
    for tenant in (TENANT, other):
        e.apply(schedule(T0, tenant=tenant, interval_seconds=3600))
    kept = e.jobs[(other.account, "nightly")]
    stored = JobFacts(tenant=TENANT, name="db", job_id="j1")
    e.apply(run("failure", T0, tenant=TENANT))  # then the transaction fails
    e.replace({TENANT.account}, [stored], [AccountFacts(tenant=TENANT, created_at=T0)])
    assert e.jobs == {(TENANT.account, "db"): stored, (other.account, "nightly"): kept}
    assert e.deadlines.get(("j", TENANT.account, "nightly")) is None
    assert e.deadlines.get(("j", other.account, "nightly")) == T0 + 2 * HOUR
    assert e.accounts[TENANT.account].first_run_at is None
    jobs, accounts, _ = e.take_dirty()
    assert {j.tenant.account for j in jobs} == {other.account}
    assert TENANT.account not in {a.tenant.account for a in accounts}


def test_a_failed_run_alert_carries_the_message_and_the_logs_end(clock: FakeClock) -> None:
    log = "\n".join(f"line {i}" for i in range(100)) + "\r\n\x1b[31mERROR: repository locked\n"
    [fired] = engine(clock).apply(run("failure", T0, message="borg failed", log_excerpt=log))
    assert fired.details["message"] == "borg failed"
    tail = fired.details["log_tail"]
    assert tail.endswith("\ufffd[31mERROR: repository locked")  # ESC made harmless, CR gone
    assert "line 99" in tail and "line 70" not in tail and "cut by Backstop" in tail
    assert len(tail.split("\n")) <= 21 and len(tail.encode()) <= 2000
    [quiet] = engine(clock).apply(run("failure", T0))
    assert quiet.details["message"] is None and quiet.details["log_tail"] is None
