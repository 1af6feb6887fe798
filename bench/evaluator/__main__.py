"""``python -m bench.evaluator``: the evaluator over 100,000 jobs in 1,000 accounts.

Seeds the database (accounts, jobs with mixed cron and interval schedules, their state as the
evaluator leaves it), stores a backlog of ingest events in a real nats-server, then starts one
evaluator replica and reports:

1. events/s applied end to end: from JetStream through the rules to committed state;
2. start-up rebuild: from start until every partition has loaded and indexed its deadlines;
3. missed-run detection lag past due + grace, p50/p99, for jobs whose deadlines pass while the
   backlog is being worked off and afterwards;
4. resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select
from sqlmodel import col

from services.evaluator.service import Evaluator, partition_spec
from services.evaluator.tables import AccountState, Alert, EvaluatorMember, JobState
from shared.bus import Bus
from shared.config import EvaluatorSettings
from shared.db import Database, core_table
from shared.events import Event, HeartbeatReported, RunReported, Tenant, UsageReported
from shared.natsd import EmbeddedNats
from shared.schedules import Schedule
from shared.streams import EVALUATOR_PARTITIONS, partition_of
from shared.tenancy import Account, Customer, Job, Reseller

CRONS = [("0 2 * * *", "Europe/Zurich"), ("0 2 * * 1-5", "Europe/Zurich"),
         ("30 23 * * *", "America/New_York"), ("15 */4 * * *", "UTC"),
         ("0 3 * * 0", "Asia/Tokyo"), ("45 1 * * *", "Australia/Sydney"),
         ("*/30 * * * *", "UTC"), ("0 12 * * 1-5", "Europe/London")]
INTERVALS = [900, 3600, 4 * 3600, 6 * 3600, 24 * 3600]
TARGETS = {"events_per_second": 3000, "rebuild_seconds": 10, "lag_p99_seconds": 1.0}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed(db: Database, accounts: int, jobs: int, lag_jobs: int, lag_window: tuple[float, float],
         now: datetime) -> tuple[list[tuple[Tenant, str]], dict[str, datetime]]:
    """Bulk-insert the world. Returns every (tenant, job) and the lag jobs' due + grace."""
    rng = random.Random(7)
    tenants = []
    with db.session() as session:
        session.execute(insert(Reseller), [{"id": "bench-r", "name": "bench", "created_at": now}])
        session.execute(insert(Customer), [
            {"id": f"bench-c{i}", "reseller_id": "bench-r", "name": f"c{i}", "created_at": now}
            for i in range(10)])
        rows = []
        for i in range(accounts):
            account_id = f"{rng.getrandbits(64):016x}"
            customer = f"bench-c{i % 10}"
            rows.append({"id": account_id, "customer_id": customer, "reseller_id": "bench-r",
                         "name": f"a{i}", "contacts": [], "quota_bytes": 10**12,
                         "ping_key_hash": f"{i:064x}", "created_at": now - timedelta(days=30)})
            tenants.append(Tenant(reseller="bench-r", customer=customer, account=account_id))
        session.execute(insert(Account), rows)
        # Accounts in use for a while: no never-used alerts at start-up.
        session.execute(insert(AccountState), [
            {"account_id": t.account, "partition": partition_of(t.account),
             "first_run_at": now - timedelta(days=20), "zero_bytes_since": None,
             "quota_bytes": None} for t in tenants])
    per_account = jobs // accounts
    everything: list[tuple[Tenant, str]] = []
    lag_due: dict[str, datetime] = {}
    lag_every = max(1, jobs // lag_jobs) if lag_jobs else jobs + 1
    job_rows, state_rows = [], []
    n = 0
    for tenant in tenants:
        for j in range(per_account):
            name = f"job{j:03d}"
            job_id = f"{n:016x}"
            everything.append((tenant, name))
            if n % 2:
                cron, tz = CRONS[n % len(CRONS)]
                schedule = Schedule(cron=cron, timezone=tz)
            else:
                schedule = Schedule(interval_seconds=INTERVALS[n % len(INTERVALS)])
            settings: dict[str, int] = {}
            last = now - timedelta(minutes=rng.randint(1, 10))
            next_due = schedule.next_after(last)
            if n % lag_every == 0 and len(lag_due) < lag_jobs:
                # Due + grace falls inside the measuring window.
                schedule = Schedule(interval_seconds=3600)
                settings = {"grace_seconds": 5}
                deadline = now + timedelta(seconds=rng.uniform(*lag_window))
                next_due = deadline - timedelta(seconds=5)
                last = next_due - timedelta(hours=1)
                lag_due[f"{tenant.account}/{name}"] = deadline
            elif next_due < now + timedelta(hours=2):
                settings = {"grace_seconds": 4 * 3600}  # keep the rest quiet during the run
            job_rows.append({"id": job_id, "account_id": tenant.account, "name": name,
                             "created_at": now})
            state_rows.append({
                "job_id": job_id, "account_id": tenant.account,
                "partition": partition_of(tenant.account), "reseller_id": tenant.reseller,
                "customer_id": tenant.customer, "job_name": name, "cron": schedule.cron,
                "timezone": schedule.timezone if schedule.cron else None,
                "interval_seconds": schedule.interval_seconds, "schedule_settings": settings,
                "last_status": "success", "last_run_at": last, "last_success_at": last,
                "last_activity_at": last, "consecutive_failures": 0, "consecutive_misses": 0,
                "next_due_at": next_due, "running_run_id": None, "running_since": None,
            })
            n += 1
    with db.session() as session:
        for start in range(0, len(job_rows), 10_000):
            session.execute(insert(Job), job_rows[start:start + 10_000])
            session.execute(insert(JobState), state_rows[start:start + 10_000])
    return everything, lag_due


def shift_lag_jobs(db: Database, lag_due: dict[str, datetime], start: float, spread: float
                   ) -> dict[str, datetime]:
    rng = random.Random(5)
    now = datetime.now(UTC)
    moved = {key: now + timedelta(seconds=rng.uniform(start, start + spread)) for key in lag_due}
    table = core_table(JobState)
    with db.session() as session:
        for key, deadline in moved.items():
            account_id, job = key.split("/", 1)
            session.execute(table.update().where(
                table.c.account_id == account_id, table.c.job_name == job,
            ).values(next_due_at=deadline - timedelta(seconds=5),
                     last_activity_at=deadline - timedelta(seconds=5 + 3600)))
    return moved


def backlog(jobs: list[tuple[Tenant, str]], count: int, now: datetime) -> list[Event]:
    rng = random.Random(11)
    out: list[Event] = []
    for i in range(count):
        tenant, name = jobs[rng.randrange(len(jobs))]
        roll = rng.random()
        at = now - timedelta(seconds=rng.uniform(0, 60))
        if roll < 0.05:
            out.append(UsageReported(tenant=tenant, occurred_at=at,
                                     bytes_used=rng.randint(0, 95 * 10**10), quota_bytes=10**12))
        elif roll < 0.10:
            out.append(HeartbeatReported(tenant=tenant, occurred_at=at, client_name="restic",
                                         client_version=rng.choice(["0.16.4", "0.17.1"])))
        elif roll < 0.30:
            out.append(RunReported(tenant=tenant, job=name, status="started", run_id=f"r{i}",
                                   started_at=at, occurred_at=at))
        else:
            status = rng.choices(["success", "failure", "warning"], [90, 4, 6])[0]
            out.append(RunReported(tenant=tenant, job=name, status=status, run_id=f"r{i}",  # type: ignore[arg-type]
                                   finished_at=at, occurred_at=at, error_count=0,
                                   bytes_transferred=rng.choice([0, 10**6]),
                                   client_name="restic", client_version="0.17.1"))
    return out


async def publish(bus: Bus, events: list[Event]) -> float:
    started = time.perf_counter()
    for start in range(0, len(events), 1000):
        await asyncio.gather(*(bus.publish(e, timeout=30) for e in events[start:start + 1000]))
    return time.perf_counter() - started


def start_replicas(db: Database, args: argparse.Namespace, nats_url: str
                   ) -> list[subprocess.Popen[bytes]]:
    """Further replicas as processes of their own (needs PostgreSQL: SQLite is one file)."""
    if args.replicas <= 1:
        return []
    ids = ["bench"] + [f"bench-{i}" for i in range(2, args.replicas + 1)]
    with db.session() as session:  # members up front: every replica takes its share at once
        session.execute(insert(EvaluatorMember), [
            {"replica_id": rid, "expires_at": datetime.now(UTC) + timedelta(seconds=30)}
            for rid in ids])
    # The URL carries the server's password: in the environment, not on the command line.
    env = {**os.environ, "BACKSTOP_NATS_URL": nats_url}
    return [subprocess.Popen([sys.executable, "-m", "bench.evaluator.replica",
                              "--database-url", args.database_url,
                              "--replica-id", rid, "--batch", str(args.batch)], env=env)
            for rid in ids[1:]]


async def until(check: Callable[[], object], interval: float) -> None:
    while True:
        done = check()
        if asyncio.iscoroutine(done):
            done = await done
        if done:
            return
        await asyncio.sleep(interval)


async def drained(bus: Bus) -> bool:
    return await pending(bus) == 0


async def pending(bus: Bus) -> int:
    total = 0
    for p in range(EVALUATOR_PARTITIONS):
        spec = partition_spec(p)
        try:
            info = await bus.js.consumer_info(spec.stream, spec.durable)
        except Exception:
            return -1  # not created yet
        total += info.num_pending + info.num_ack_pending
    return total


def lags(db: Database, lag_due: dict[str, datetime]) -> list[float]:
    with db.session() as session:
        rows = session.execute(select(col(Alert.account_id), col(Alert.job), col(Alert.first_seen))
                               .where(col(Alert.kind) == "missed_run")).all()
    out = []
    for account_id, job, first_seen in rows:
        due = lag_due.get(f"{account_id}/{job}")
        if due is not None:
            first = first_seen if first_seen.tzinfo else first_seen.replace(tzinfo=UTC)
            out.append((first - due).total_seconds())
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-evaluator-"))
    nats = EmbeddedNats(workdir / "nats")
    nats.start()
    url = args.database_url or f"sqlite:///{workdir / 'backstop.db'}"
    db = Database(url)
    db.upgrade()
    bus = Bus(nats.url, name="bench")
    await bus.connect()
    try:
        now = datetime.now(UTC)
        t = time.perf_counter()
        # The lag jobs' deadlines pass while the backlog is worked off and after it.
        window = (args.lag_from, args.lag_from + args.lag_spread)
        jobs, lag_due = seed(db, args.accounts, args.jobs, args.lag_jobs, window, now)
        print(f"seeded {len(jobs)} jobs in {args.accounts} accounts "
              f"in {time.perf_counter() - t:.1f}s", flush=True)
        quiet = [(t, j) for t, j in jobs if f"{t.account}/{j}" not in lag_due]
        events = backlog(quiet, args.events, now)
        seconds = await publish(bus, events)
        print(f"stored {len(events)} events in JetStream in {seconds:.1f}s "
              f"({len(events) / seconds:.0f}/s)", flush=True)
        del events
        # The lag jobs' deadlines are placed relative to the evaluator's start, so they pass
        # while the backlog is being worked off (and after it), not while we were seeding.
        lag_due = shift_lag_jobs(db, lag_due, args.lag_from, args.lag_spread)
        now = datetime.now(UTC)
        gc.collect()
        rss_before = rss_mb()

        settings = EvaluatorSettings(evaluator_batch=args.batch, evaluator_lease_seconds=6)
        others = start_replicas(db, args, nats.url)
        evaluator = Evaluator(db, bus, settings, replica_id="bench")
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(evaluator.run(stop))
        share = -(-EVALUATOR_PARTITIONS // args.replicas)
        await until(lambda: len(evaluator.workers) >= share, 0.01)
        await evaluator.wait_loaded()
        rebuild = time.perf_counter() - started
        deadlines = sum(len(w.engine.deadlines) for w, _ in evaluator.workers.values())
        print(f"rebuilt {deadlines} deadlines ({len(evaluator.workers)} partitions) "
              f"in {rebuild:.2f}s", flush=True)
        loaded_at = time.perf_counter()
        cpu_at = time.process_time()
        await until(lambda: drained(bus), 0.05)
        took = time.perf_counter() - loaded_at
        cpu = time.process_time() - cpu_at
        rate = args.events / took
        print(f"applied {args.events} events in {took:.1f}s: {rate:.0f} events/s "
              f"({cpu:.1f}s CPU in the evaluator's process)", flush=True)
        lag_deadline = now + timedelta(seconds=window[1] + 5)
        await until(lambda: datetime.now(UTC) >= lag_deadline, 0.2)
        measured = lags(db, lag_due)
        rss_after = rss_mb()
        stop.set()
        await task
        for process in others:
            process.terminate()
        for process in others:
            process.wait(timeout=30)
    finally:
        await bus.close()
        db.dispose()
        nats.stop()
    result: dict[str, object] = {
        "jobs": len(jobs), "accounts": args.accounts, "events": args.events,
        "events_per_second": round(rate),
        "rebuild_seconds": round(rebuild, 2), "deadlines_indexed": deadlines,
        "missed_detected": f"{len(measured)}/{len(lag_due)}",
        "lag_p50_seconds": round(percentile(measured, 0.5), 3),
        "lag_p99_seconds": round(percentile(measured, 0.99), 3),
        "lag_max_seconds": round(max(measured), 3) if measured else None,
        "rss_mb": round(rss_after), "rss_before_evaluator_mb": round(rss_before),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "database": url.split(":", 1)[0], "replicas": args.replicas,
    }
    result["targets_met"] = (
        rate >= TARGETS["events_per_second"] and rebuild <= TARGETS["rebuild_seconds"]
        and len(measured) == len(lag_due)
        and percentile(measured, 0.99) <= TARGETS["lag_p99_seconds"])
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lag-jobs", type=int, default=1000)
    parser.add_argument("--lag-from", type=float, default=12.0,
                        help="seconds after the evaluator starts when the first lag deadline "
                             "passes")
    parser.add_argument("--lag-spread", type=float, default=20.0)
    parser.add_argument("--replicas", type=int, default=1,
                        help="evaluator replicas (processes); more than one needs PostgreSQL")
    parser.add_argument("--database-url", default="",
                        help="SQLAlchemy URL of an empty database (default: SQLite in a temp dir)")
    args = parser.parse_args()
    if args.replicas > 1 and not args.database_url.startswith("postgresql"):
        parser.error("--replicas above 1 needs --database-url postgresql+psycopg://…")
    result = asyncio.run(main(args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    cli()
