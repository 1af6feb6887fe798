"""Backup state for Prometheus: the backups themselves, not Backstop's health, computed from the
database when /metrics is scraped (a Grafana board and alerting rules can then show them).

- ``backstop_alerts_firing{kind,reseller}``: alerts firing, per kind and reseller;
- ``backstop_jobs{state,reseller}``: jobs per overview state and reseller;
- opt-in (``BACKSTOP_METRICS_JOB_LAST_SUCCESS``): ``backstop_job_last_success_timestamp_seconds
  {reseller,customer,account,job}``, one series per job, for small installations.

The first two have bounded label sets (kinds by resellers, states by resellers) whatever the
number of jobs. Labels carry names (unique at each level), as people read them. The figures are
read at most every ``ttl`` seconds: scrapes in between get the last ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.core import REGISTRY, CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func
from sqlalchemy import select as sql_select
from sqlmodel import Session

from services.evaluator.tables import Alert, JobState
from services.portal.queries.states import STATES, rank_of, silenced
from shared.config import PortalSettings
from shared.db import Database, core_table
from shared.events import utcnow
from shared.tenancy import Account, Customer, Job, Reseller

DEFAULT_TTL = 10.0


@dataclass(frozen=True)
class BackupState:
    firing: dict[tuple[str, str], int]  # (kind, reseller name) → alerts firing
    jobs: dict[tuple[str, str], int]  # (state, reseller name) → jobs
    last_success: list[tuple[str, str, str, str, float]]  # names, then a Unix time


def read_state(session: Session, now: datetime, per_job: bool) -> BackupState:
    alerts, resellers = core_table(Alert), core_table(Reseller)
    firing: dict[tuple[str, str], int] = {}
    # Every kind a reseller has ever had an alert of, 0 when none fires: rules see the series.
    for kind, reseller, count in session.execute(
        sql_select(alerts.c.kind, resellers.c.name,
                   func.sum(case((alerts.c.state == "firing", 1), else_=0)))
        .join(resellers, resellers.c.id == alerts.c.reseller_id)
        .group_by(alerts.c.kind, resellers.c.name)
    ):
        firing[(kind, reseller)] = int(count or 0)
    jobs, accounts, states = core_table(Job), core_table(Account), core_table(JobState)
    rank = rank_of(states, accounts, silenced(session, now)).label("rank")
    counted: dict[tuple[str, str], int] = {}
    for name in session.execute(sql_select(resellers.c.name)).scalars():
        counted.update({(s, name): 0 for s in STATES})
    for job_rank, reseller, count in session.execute(
        sql_select(rank, resellers.c.name, func.count())
        .select_from(jobs)
        .join(accounts, accounts.c.id == jobs.c.account_id)
        .join(resellers, resellers.c.id == accounts.c.reseller_id)
        .outerjoin(states, states.c.job_id == jobs.c.id)
        .group_by(rank, resellers.c.name)
    ):
        counted[(STATES[job_rank], reseller)] = count
    last: list[tuple[str, str, str, str, float]] = []
    if per_job:
        customers = core_table(Customer)
        for row in session.execute(
            sql_select(resellers.c.name.label("reseller"), customers.c.name.label("customer"),
                       accounts.c.name.label("account"), jobs.c.name.label("job"),
                       states.c.last_success_at)
            .select_from(jobs)
            .join(accounts, accounts.c.id == jobs.c.account_id)
            .join(customers, customers.c.id == accounts.c.customer_id)
            .join(resellers, resellers.c.id == accounts.c.reseller_id)
            .join(states, states.c.job_id == jobs.c.id)
            .where(states.c.last_success_at.is_not(None))
        ):
            last.append((row.reseller, row.customer, row.account, row.job,
                         row.last_success_at.timestamp()))
    return BackupState(firing, counted, last)


class BackupStateCollector(Collector):
    """A Prometheus collector reading :class:`BackupState` from the database at scrape."""

    def __init__(self, db: Database, *, per_job: bool = False, ttl: float = DEFAULT_TTL,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.per_job = per_job
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, BackupState] | None = None

    def state(self) -> BackupState:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self.ttl:
                return self._cached[1]
            with self.db.session() as session:
                state = read_state(session, self.clock(), self.per_job)
            self._cached = (time.monotonic(), state)
            return state

    def collect(self) -> Iterator[Metric]:
        state = self.state()
        firing = GaugeMetricFamily("backstop_alerts_firing", "Alerts firing, per kind and "
                                   "reseller.", labels=["kind", "reseller"])
        for (kind, reseller), count in sorted(state.firing.items()):
            firing.add_metric([kind, reseller], count)
        yield firing
        jobs = GaugeMetricFamily("backstop_jobs", "Backup jobs per state (failing, late, "
                                 "never run, running, paused, ok) and reseller.",
                                 labels=["state", "reseller"])
        for (job_state, reseller), count in sorted(state.jobs.items()):
            jobs.add_metric([job_state, reseller], count)
        yield jobs
        if self.per_job:
            last = GaugeMetricFamily(
                "backstop_job_last_success_timestamp_seconds",
                "When each job last succeeded (Unix time).",
                labels=["reseller", "customer", "account", "job"])
            for reseller, customer, account, job, at in state.last_success:
                last.add_metric([reseller, customer, account, job], at)
            yield last

    def describe(self) -> Iterator[Metric]:
        # Registering must not query the database: the families, without samples.
        yield GaugeMetricFamily("backstop_alerts_firing", "", labels=["kind", "reseller"])
        yield GaugeMetricFamily("backstop_jobs", "", labels=["state", "reseller"])
        if self.per_job:
            yield GaugeMetricFamily("backstop_job_last_success_timestamp_seconds", "",
                                    labels=["reseller", "customer", "account", "job"])


def register_backup_state(db: Database, settings: PortalSettings,
                          registry: CollectorRegistry = REGISTRY) -> BackupStateCollector:
    """Serve the backup state on the process's /metrics (:mod:`shared.ops` serves the default
    registry); unregister it (``registry.unregister``) when the database closes."""
    collector = BackupStateCollector(db, per_job=settings.metrics_job_last_success)
    registry.register(collector)
    return collector
