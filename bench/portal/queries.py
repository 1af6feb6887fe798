"""``python -m bench.portal.queries``: the portal's read queries at the issue's size.

Seeds one reseller with 1,000 accounts (in 100 customers) and 5,000 jobs, each with a run a day
for 30 days (150,000 runs and their day cells) and the evaluator's job state, plus one job with
10,000 runs; then times, each in a session of its own as a page request would:

- the overview, first page (50 jobs with their 30-day strips and the counts per state), the
  same filtered to failing jobs, and a deep page (offset 4,950);
- the job page's reads: the job's detail (thresholds in force, schedule) and its runs, the
  first page, a page 5,000 runs deep by keyset (``before``) and by offset.

Prints p50/p95/max per query on SQLite and PostgreSQL, and the CPU time the process spent (on
SQLite the query's whole cost, whatever else the machine is doing). Targets from the issue:
the whole overview page p95 ≤ 150 ms and the job page p95 ≤ 100 ms end to end; the queries
aim at ≤ 50 ms to leave the rest to rendering.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from services.evaluator.tables import JobState
from services.portal.history.tables import HistoryDayCell, HistoryRun
from services.portal.queries.jobs import job_detail
from services.portal.queries.overview import OverviewFilter, overview
from services.portal.queries.runs import runs_of_job
from shared.db import Database, core_table
from shared.scopes import Scope
from shared.tenancy import Account, Customer, Job, Reseller

ACCOUNTS, CUSTOMERS, JOBS, DAYS, BIG_JOB_RUNS = 1000, 100, 5000, 30, 10_000
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TARGET_MS = 50.0
POSTGRES_URL = os.environ.get(
    "BACKSTOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _id() -> str:
    return uuid.uuid4().hex[:16]


def seed(db: Database, rng: random.Random) -> tuple[str, str]:
    """Returns the reseller's id and the id of the job with 10,000 runs."""
    reseller = _id()
    customers = [_id() for _ in range(CUSTOMERS)]
    accounts = [(_id(), customers[i % CUSTOMERS]) for i in range(ACCOUNTS)]
    jobs = [(_id(), accounts[i % ACCOUNTS]) for i in range(JOBS)]
    with db.session() as s:
        s.execute(insert(core_table(Reseller)), [{"id": reseller, "name": "Bench MSP",
                                                  "created_at": NOW}])
        s.execute(insert(core_table(Customer)), [
            {"id": c, "reseller_id": reseller, "name": f"customer-{n:03d}", "created_at": NOW}
            for n, c in enumerate(customers)])
        s.execute(insert(core_table(Account)), [
            {"id": a, "customer_id": c, "reseller_id": reseller, "name": f"account-{n:04d}",
             "contacts": [], "quota_bytes": None, "ping_key_hash": _id() * 4, "created_at": NOW}
            for n, (a, c) in enumerate(accounts)])
        s.execute(insert(core_table(Job)), [
            {"id": j, "account_id": a, "name": f"job-{n:04d}", "created_at": NOW}
            for n, (j, (a, _)) in enumerate(jobs)])
        s.execute(insert(core_table(JobState)), [_state(j, a, c, reseller, rng)
                                                  for j, (a, c) in jobs])
    for chunk in range(0, JOBS, 500):
        runs, cells = [], []
        for j, (a, c) in jobs[chunk:chunk + 500]:
            for day in range(DAYS):
                at = NOW - timedelta(days=day, hours=10)
                failed = rng.random() < 0.05
                runs.append(_run(j, a, c, reseller, at, failed, f"d{day}"))
                cells.append({"job_id": j, "day": at.date(), "reseller_id": reseller,
                              "customer_id": c, "account_id": a, "successes": int(not failed),
                              "failures": int(failed), "warnings": 0, "missed": 0,
                              "bytes_transferred": 10**9, "duration_seconds": 600.0})
        with db.session() as s:
            s.execute(insert(core_table(HistoryRun)), runs)
            s.execute(insert(core_table(HistoryDayCell)), cells)
    big, (account, customer) = jobs[0]
    with db.session() as s:
        s.execute(insert(core_table(HistoryRun)), [
            _run(big, account, customer, reseller, NOW - timedelta(days=31, minutes=5 * n),
                 rng.random() < 0.05, f"big{n}") for n in range(BIG_JOB_RUNS)])
    return reseller, big


def _state(job: str, account: str, customer: str, reseller: str,
           rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    return {
        "job_id": job, "account_id": account, "reseller_id": reseller, "customer_id": customer,
        "job_name": "", "partition": 0, "schedule_settings": {}, "cron": "0 2 * * *",
        "timezone": "UTC", "interval_seconds": None,
        "last_status": "failure" if roll < 0.05 else "success",
        "last_run_at": None if 0.05 <= roll < 0.06 else NOW - timedelta(hours=10),
        "last_success_at": NOW - timedelta(hours=34), "last_activity_at": NOW,
        "consecutive_failures": 1 if roll < 0.05 else 0,
        "consecutive_misses": 1 if 0.06 <= roll < 0.09 else 0,
        "next_due_at": NOW + timedelta(hours=14),
        "running_run_id": "r" if 0.09 <= roll < 0.11 else None,
        "running_since": NOW if 0.09 <= roll < 0.11 else None,
    }


def _run(job: str, account: str, customer: str, reseller: str, at: datetime, failed: bool,
         key: str) -> dict[str, Any]:
    return {
        "reseller_id": reseller, "customer_id": customer, "account_id": account, "job_id": job,
        "run_key": key, "run_id": key, "status": "failure" if failed else "success", "at": at,
        "started_at": at, "finished_at": at + timedelta(minutes=10), "duration_seconds": 600.0,
        "bytes_transferred": 10**9, "files_transferred": 1000, "error_count": 0,
        "exit_code": 2 if failed else 0, "message": "disk full" if failed else None,
        "log_excerpt": "borg create ...\n" * 20, "client_name": "borgmatic",
        "client_version": "1.9.0", "source": "api", "reported_at": at}


def timed(db: Database, work: Callable[[Any], object], rounds: int
          ) -> tuple[list[float], list[float]]:
    """Wall-clock and this thread's CPU milliseconds of each round. On a shared machine the
    wall clock includes waiting for a core; on SQLite (in this thread) the CPU time is the
    query's own cost, on PostgreSQL only the client's share."""
    with db.session() as s:
        work(s)  # warm the caches, as a running portal has them
    wall, cpu = [], []
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.thread_time()
        with db.session() as s:
            work(s)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
    return wall, cpu


def report(backend: str, name: str, times: tuple[list[float], list[float]]) -> None:
    wall, cpu = times
    p50 = statistics.median(wall)
    p95 = statistics.quantiles(wall, n=20)[18]
    mark = "✓" if p95 <= TARGET_MS else "✗"
    print(f"{backend:9} {name:44} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  "
          f"max {max(wall):7.1f} ms  cpu p50 {statistics.median(cpu):6.1f} ms  "
          f"{mark} (≤ {TARGET_MS:.0f} ms)")


def bench(db: Database, backend: str, rounds: int) -> None:
    started = time.perf_counter()
    reseller, big = seed(db, random.Random(14))
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    print(f"{backend:9} seeded {JOBS} jobs, {JOBS * DAYS + BIG_JOB_RUNS} runs in "
          f"{time.perf_counter() - started:.0f} s")
    scope = Scope.of_reseller(reseller)
    first = runs_of_job_page(db, scope, big)
    cases: list[tuple[str, Callable[[Any], object]]] = [
        ("overview, first page of 50 + counts", lambda s: overview(s, scope, NOW)),
        ("overview, failing only", lambda s: overview(
            s, scope, NOW, OverviewFilter(states=frozenset({"failing"})))),
        ("overview, text filter", lambda s: overview(
            s, scope, NOW, OverviewFilter(text="account-09"))),
        ("overview, page at offset 4,950", lambda s: overview(
            s, scope, NOW, OverviewFilter(offset=4950))),
        ("job detail (thresholds, schedule, strip)", lambda s: job_detail(s, scope, big, NOW)),
        ("job runs, first page of 50", lambda s: runs_of_job(s, scope, big)),
        ("job runs, 5,000 deep by keyset", lambda s: runs_of_job(s, scope, big, before=first)),
        ("job runs, 5,000 deep by offset", lambda s: runs_of_job(s, scope, big, offset=5000)),
    ]
    for name, work in cases:
        report(backend, name, timed(db, work, rounds))
    detail, runs = timed(db, cases[4][1], rounds), timed(db, cases[5][1], rounds)
    report(backend, "job page's queries together", (
        [a + b for a, b in zip(detail[0], runs[0], strict=True)],
        [a + b for a, b in zip(detail[1], runs[1], strict=True)]))


def runs_of_job_page(db: Database, scope: Scope, job: str) -> str:
    """The keyset cursor 5,000 runs into the job's history."""
    with db.session() as s:
        page = runs_of_job(s, scope, job, limit=500, offset=4500)
        assert page is not None and page.next_cursor is not None
        return page.next_cursor


@contextmanager
def sqlite() -> Iterator[Database]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()


@contextmanager
def postgres() -> Iterator[Database]:
    admin = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(
        hide_password=False)
    name = f"bench_portal_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = Database(make_url(POSTGRES_URL).set(database=name).render_as_string(
        hide_password=False))
    try:
        db.upgrade()
        yield db
    finally:
        db.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=40, help="Timed runs of each query.")
    args = parser.parse_args()
    backends = {"sqlite": sqlite, "postgres": postgres}
    for backend in (["sqlite", "postgres"] if args.backend == "both" else [args.backend]):
        with backends[backend]() as db:
            bench(db, backend, args.rounds)


if __name__ == "__main__":
    main()
