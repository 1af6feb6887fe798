"""The portal's scoped reads on both backends: the overview (states, counts, filters, order,
strips), a job's detail, its runs paged, usage; another tenant's ids give nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.evaluator.store import set_override
from services.notifier.tables import Silence
from services.portal.queries.jobs import job_detail
from services.portal.queries.overview import InvalidFilter, OverviewFilter, job_row, overview
from services.portal.queries.runs import InvalidCursor, run_of, runs_of_job
from services.portal.queries.usage import account_usage, customer_usage, monthly_usage
from shared.db import Database
from shared.scopes import Scope
from tests.portal.support import (
    T0,
    Tenants,
    alert,
    ingest,
    job_id,
    job_state,
    missed,
    run,
    seed_tenants,
    usage,
)
from tests.support import tenant_of

NOW = T0 + timedelta(hours=6)


@pytest.fixture
def tenants(db: Database) -> Tenants:
    t = seed_tenants(db)
    job_state(db, t.a1, "fails", last_status="failure", last_run_at=T0,
              consecutive_failures=2)
    job_state(db, t.a1, "fine", last_status="success", last_run_at=T0, last_success_at=T0,
              cron="0 2 * * *", timezone="UTC", next_due_at=T0 + timedelta(hours=14))
    job_state(db, t.a1, "busy", last_status="success", last_run_at=T0, running_run_id="r9",
              running_since=T0 + timedelta(hours=5))
    job_state(db, t.a1, "late", last_status="success", last_run_at=T0 - timedelta(days=2),
              consecutive_misses=1)
    job_id(db, t.a1, "never")  # reported no run: no job state yet
    job_state(db, t.b1, "other-customer", last_status="success", last_run_at=T0)
    job_state(db, t.z1, "other-reseller", last_status="failure", last_run_at=T0,
              consecutive_failures=1)
    return t


def r1(t: Tenants) -> Scope:
    return Scope.of_reseller(t.a1.reseller.id)


def c1(t: Tenants) -> Scope:
    return Scope.of_customer(t.a1.reseller.id, t.a1.customer.id)


def names(rows: list) -> list[str]:  # type: ignore[type-arg]
    return [row.job_name for row in rows]


def test_the_overview_sorts_worst_first_and_counts_per_state(
        db: Database, tenants: Tenants) -> None:
    with db.session() as s:
        seen = overview(s, r1(tenants), NOW)
    assert names(seen.rows) == ["fails", "late", "never", "busy", "fine", "other-customer"]
    assert [row.state for row in seen.rows] == [
        "failing", "late", "never run", "running", "ok", "ok"]
    assert seen.counts == {"failing": 1, "late": 1, "never run": 1, "running": 1, "paused": 0,
                           "ok": 2}
    assert seen.total == 6
    fine = seen.rows[4]
    assert (fine.customer_name, fine.account_name, fine.reseller_name) == ("C1", "a1", "R1")
    assert fine.next_due_at == T0 + timedelta(hours=14)


def test_every_scope_sees_its_own_jobs_only(db: Database, tenants: Tenants) -> None:
    with db.session() as s:
        everything = overview(s, Scope.everything(), NOW)
        customer = overview(s, c1(tenants), NOW)
        other = overview(s, Scope.of_reseller(tenants.z1.reseller.id), NOW)
    assert everything.total == 7
    assert names(customer.rows) == ["fails", "late", "never", "busy", "fine"]
    assert names(other.rows) == ["other-reseller"]


def test_filters_by_state_customer_and_text(db: Database, tenants: Tenants) -> None:
    with db.session() as s:
        failing = overview(s, r1(tenants), NOW, OverviewFilter(states=frozenset({"failing",
                                                                                 "running"})))
        customer = overview(s, r1(tenants), NOW, OverviewFilter(
            customer_id=tenants.b1.customer.id))
        text = overview(s, r1(tenants), NOW, OverviewFilter(text="FIN"))
        wildcard = overview(s, r1(tenants), NOW, OverviewFilter(text="%"))
        foreign = overview(s, c1(tenants), NOW, OverviewFilter(
            customer_id=tenants.b1.customer.id))
        paged = overview(s, r1(tenants), NOW, OverviewFilter(limit=2, offset=2))
    assert names(failing.rows) == ["fails", "busy"] and failing.total == 2
    assert failing.counts["ok"] == 2  # counts ignore the state filter
    assert names(customer.rows) == ["other-customer"]
    assert names(text.rows) == ["fine"]
    assert wildcard.rows == []  # '%' is a character, not a wildcard
    assert foreign.rows == [] and foreign.total == 0
    assert names(paged.rows) == ["never", "busy"] and paged.total == 6
    with pytest.raises(InvalidFilter):
        OverviewFilter(states=frozenset({"broken"}))


def test_a_silence_pauses_its_tenants_jobs(db: Database, tenants: Tenants) -> None:
    with db.session() as s:
        s.add(Silence(id="s1", reseller_id=tenants.b1.reseller.id,
                      customer_id=tenants.b1.customer.id, starts_at=T0,
                      ends_at=NOW + timedelta(hours=1)))
        s.add(Silence(id="s2", reseller_id=tenants.a1.reseller.id,
                      account_id=tenants.a1.account.id, starts_at=T0, ends_at=NOW))  # over
    with db.session() as s:
        seen = overview(s, r1(tenants), NOW)
    assert {row.job_name: row.state for row in seen.rows}["other-customer"] == "paused"
    assert seen.counts["paused"] == 1 and seen.counts["failing"] == 1


def test_the_strip_has_a_cell_for_each_of_30_days(db: Database, tenants: Tenants) -> None:
    tenant = tenant_of(tenants.a1)
    ingest(db, run(tenant, "success", NOW - timedelta(days=3), job="fine"),
           run(tenant, "failure", NOW - timedelta(days=1), job="fine"),
           run(tenant, "success", NOW - timedelta(days=1, hours=1), job="fine"),
           run(tenant, "success", NOW - timedelta(days=40), job="fine"))
    alert(db, missed(tenant, NOW - timedelta(days=2), job="fine"))
    with db.session() as s:
        row = job_row(s, r1(tenants), job_id(db, tenants.a1, "fine"), NOW)
    assert row is not None and len(row.days) == 30
    assert row.days[-1].day == NOW.date() and row.days[0].day == (NOW - timedelta(29)).date()
    assert [cell.outcome for cell in row.days[-4:]] == ["success", "missed", "failure", "none"]
    assert row.days[-2].successes == 1 and row.days[-2].failures == 1


def test_another_tenants_job_gives_nothing(db: Database, tenants: Tenants) -> None:
    theirs = job_id(db, tenants.z1, "other-reseller")
    ingest(db, run(tenant_of(tenants.z1), "failure", T0, job="other-reseller"))
    with db.session() as s:
        assert job_row(s, r1(tenants), theirs, NOW) is None
        assert job_detail(s, c1(tenants), theirs, NOW) is None
        assert runs_of_job(s, r1(tenants), theirs) is None
        visible = runs_of_job(s, Scope.everything(), theirs)
        assert visible is not None and len(visible.items) == 1
        assert run_of(s, r1(tenants), visible.items[0].run_id) is None
        assert run_of(s, Scope.everything(), visible.items[0].run_id) is not None
        assert job_detail(s, r1(tenants), "no-such-job", NOW) is None


def test_job_detail_says_what_is_in_force_and_where_from(
        db: Database, tenants: Tenants) -> None:
    fine = job_id(db, tenants.a1, "fine")
    with db.session() as s:
        set_override(s, "account", tenants.a1.account.id, "failures_tolerance", "3")
        set_override(s, "reseller", tenants.a1.reseller.id, "grace_seconds", "600")
    with db.session() as s:
        detail = job_detail(s, c1(tenants), fine, NOW)
    assert detail is not None
    in_force = {t.name: (t.value, t.source) for t in detail.thresholds}
    assert in_force["failures_tolerance"] == (3, "account")
    assert in_force["grace_seconds"] == (600, "reseller")
    assert in_force["missed_runs_tolerance"] == (1, "default")
    assert detail.grace_seconds == 600
    assert detail.schedule == "0 2 * * * (UTC)"
    assert detail.next_due == [T0 + timedelta(hours=14) + timedelta(days=d) for d in range(5)]
    assert detail.max_runtime == "the schedule's period"


def test_runs_page_newest_first_by_keyset_and_offset(db: Database, tenants: Tenants) -> None:
    tenant = tenant_of(tenants.a1)
    ingest(db, *[run(tenant, "success", T0 + timedelta(minutes=i), job="fine",
                     run_id=f"r{i}") for i in range(120)])
    fine = job_id(db, tenants.a1, "fine")
    seen: list[str | None] = []
    cursor = None
    with db.session() as s:
        while True:
            page = runs_of_job(s, c1(tenants), fine, limit=50, before=cursor)
            assert page is not None and page.total == 120
            seen += [r.client_run_id for r in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        by_offset = runs_of_job(s, c1(tenants), fine, limit=50, offset=100)
        with pytest.raises(InvalidCursor):
            runs_of_job(s, c1(tenants), fine, before="nonsense")
    assert seen == [f"r{i}" for i in range(119, -1, -1)]
    assert by_offset is not None
    assert [r.client_run_id for r in by_offset.items] == [f"r{i}" for i in range(19, -1, -1)]


def test_usage_over_time_and_by_month(db: Database, tenants: Tenants) -> None:
    a1, b1, z1 = (tenant_of(t) for t in (tenants.a1, tenants.b1, tenants.z1))
    ingest(db, usage(a1, T0, 100, 1000), usage(b1, T0, 50),
           usage(a1, T0 + timedelta(days=1), 300, 1000), usage(z1, T0, 7),
           usage(a1, T0 + timedelta(days=31), 200, 2000))
    since, until = T0.date() - timedelta(days=1), (T0 + timedelta(days=40)).date()
    with db.session() as s:
        points = account_usage(s, r1(tenants), since, until)
        customers = customer_usage(s, r1(tenants), since, until)
        months = monthly_usage(s, r1(tenants), since, until)
        mine = account_usage(s, c1(tenants), since, until, account_id=tenants.b1.account.id)
    assert [(p.account_name, p.bytes_used) for p in points] == [
        ("a1", 100), ("a1", 300), ("a1", 200), ("b1", 50)]
    assert [(c.customer_name, c.day, c.bytes_used) for c in customers] == [
        ("C1", T0.date(), 100), ("C1", (T0 + timedelta(days=1)).date(), 300),
        ("C1", (T0 + timedelta(days=31)).date(), 200), ("C2", T0.date(), 50)]
    assert [(m.month, m.account_name, m.peak_bytes, m.average_bytes, m.last_bytes,
             m.quota_bytes) for m in months] == [
        ("2026-03", "a1", 300, 200, 300, 1000), ("2026-03", "b1", 50, 50, 50, None),
        ("2026-04", "a1", 200, 200, 200, 2000)]
    assert mine == []
