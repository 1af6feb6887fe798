"""The pipeline's shape: planning is a stage returning an outcome, options come from settings."""

from __future__ import annotations

import dataclasses

from services.notifier.errors import DirectoryUnavailable
from services.notifier.queue import planning
from services.notifier.queue.backoff import Schedule
from services.notifier.queue.dispatch import DispatchOptions
from services.notifier.queue.planner import DirectoryDown, Planned, Postponed, Suppressed
from services.notifier.service import PolicyOptions, dispatch_options, policy_options
from services.notifier.tables import NotifyTransition
from shared.config import NotifierSettings
from shared.db import Database
from shared.events import Tenant
from shared.tenancy import AccountPath
from tests.notifier.support import alert, make_notifier
from tests.support import make_account, tenant_of


class DownDirectory:
    async def customer_addresses(self, account: AccountPath) -> list[str]:
        raise DirectoryUnavailable("ldap://dir.test: timed out")


async def _accepted(db: Database, tenant: Tenant, state: str = "firing", sequence: int = 1,
                    fingerprint: str | None = None) -> NotifyTransition:
    changed = alert(tenant, state=state, sequence=sequence, fingerprint=fingerprint)
    accepted = await db.run(lambda s: planning.accept(s, changed, changed.last_changed, 0.0))
    assert accepted is not None
    return accepted


async def test_planning_returns_what_happened_and_leaves_the_reaction_to_the_service(
        sqlite_db: Database) -> None:
    issued = make_account(sqlite_db, contacts=["ops@customer.example"])
    notifier = make_notifier(sqlite_db, inline=False)
    planned = await notifier.planner.plan(await _accepted(sqlite_db, tenant_of(issued)))
    assert isinstance(planned, Planned) and len(planned.units) + planned.left == 1

    gone = Tenant(reseller="r", customer="c", account="no-such-account")
    unknown = await _accepted(sqlite_db, gone)
    assert await notifier.planner.plan(unknown) == Suppressed("unknown_account", recorded=True)
    assert await notifier.planner.plan(unknown) == Suppressed("unknown_account", recorded=False)

    firing = await _accepted(sqlite_db, tenant_of(issued))
    resolved = await _accepted(sqlite_db, tenant_of(issued), state="resolved", sequence=2,
                               fingerprint=firing.fingerprint)
    assert await notifier.planner.plan(resolved) == Postponed()

    down = make_notifier(sqlite_db, directory=DownDirectory(), inline=False)
    outcome = await down.planner.plan(firing)
    assert outcome == DirectoryDown("ldap://dir.test: timed out", 1)
    assert down._inline_paused_until == 0.0  # the stage leaves the service's state alone


def test_options_carry_no_defaults_of_their_own() -> None:
    """The settings own the defaults (lease, concurrency, repeat, retry schedule): the options
    are built from them in one place."""
    owned = {"public_url", "default_brand", "schedule", "lease_seconds", "concurrency",
             "replica_id", "repeat_default", "group_window", "base", "cap", "give_up_after"}
    for options in (DispatchOptions, PolicyOptions, Schedule):
        for field in dataclasses.fields(options):
            if field.name in owned:
                assert field.default is dataclasses.MISSING, (options, field.name)
                assert field.default_factory is dataclasses.MISSING, (options, field.name)
    settings = NotifierSettings(lease_seconds=7, delivery_concurrency=3, retry_base_seconds=4,
                                retry_max_seconds=40, give_up_after_seconds=400,
                                repeat_interval_seconds=9, notifier_replica_id="n-1")
    dispatch, policy = dispatch_options(settings), policy_options(settings)
    assert (dispatch.lease_seconds, dispatch.concurrency, dispatch.replica_id) == (7, 3, "n-1")
    schedule = dispatch.schedule
    assert (schedule.base, schedule.cap, schedule.give_up_after) == (4, 40, 400)
    assert policy.repeat_default == 9
