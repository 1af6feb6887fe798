"""Plan and inventory files: what they declare, the errors they give (file, line, field), how
they are applied, where backups go, and how activities expand into tasks."""

from __future__ import annotations

import textwrap
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from services.executor import catalog
from services.executor.executions import TaskStatus
from services.executor.plans.expansion import Found, expand, targets_of
from services.executor.plans.files import PlanFileError, load_files, load_text
from services.executor.plans.models import DEFAULT_OUTPUT, Account, Inventory, Plan, Target
from services.executor.plans.paths import render, reserve, series_pattern, timestamp
from shared.db import Database
from shared.scopes import Scope
from shared.tenancy import Account as AccountRow
from shared.tenancy import ApiToken, Customer, Reseller
from tests.executor.probe import plugins
from tests.support import make_account

GOOD = """\
kind: Target
metadata: {name: db-1, labels: {role: db}}
spec: {address: 10.0.0.5, ssh: {user: backup, port: 2222, key: /keys/id}}
---
kind: Target
metadata: {name: localhost}
---
apiVersion: backstop/v1
kind: Plan
metadata: {name: nightly}
spec:
  account: MSP/Acme/fileserver
  schedule: {cron: "0 22 * * *", timezone: Europe/Berlin}
  window: Mon-Fri 22:00-06:00 Europe/Berlin
  destination: {path: /srv/backups, mustBeMountpoint: true, minFree: 10%, pruneKeeping: 2}
  scripts: {pre: "echo start", post: {run: "echo end", timeout: 30s}}
  report: {recipients: [ops@acme.example]}
  activities:
    - action: command.run
      targets: "db-*"
      items: "app*"
      options: {script: "true"}
      quiesce: {timeout: 2m, grace: 3m}
      scripts: {pre: "echo pre-task"}
      retention: {keepLast: 3, keepDaily: 7}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PlanFileError) as caught:
        load_text(textwrap.dedent(text), "plans.yaml")
    return [str(p) for p in caught.value.problems]


def test_a_good_file_declares_targets_and_a_plan() -> None:
    declared = load_text(GOOD, "plans.yaml")
    assert [(d.kind, d.name, d.line) for d in declared] == [
        ("Target", "db-1", 1), ("Target", "localhost", 5), ("Plan", "nightly", 8)]
    target = declared[0].obj
    assert isinstance(target, Target)
    assert target.labels == {"role": "db"}
    assert target.spec.ssh is not None and target.spec.ssh.port == 2222
    plan = declared[2].obj
    assert isinstance(plan, Plan)
    assert plan.job == "nightly"
    assert plan.spec.windows[0].zone == "Europe/Berlin"
    assert plan.spec.destination.min_free is not None
    assert plan.spec.destination.min_free.needed(1000) == 100
    assert plan.spec.scripts.post is not None and plan.spec.scripts.post.timeout == 30
    activity = plan.spec.activities[0]
    assert activity.quiesce is not None and activity.quiesce.timeout == 120
    assert activity.quiesce.grace == 180
    assert activity.retention is not None and activity.retention.keep_daily == 7
    assert plan.spec.output == DEFAULT_OUTPUT
    assert plan.timezone == "Europe/Berlin"
    # What is stored reads back as the same plan.
    assert Plan.model_validate(catalog.document(plan)) == plan


def test_errors_name_file_line_column_object_and_field() -> None:
    found = problems("""\
        kind: Plan
        metadata: {name: nightly}
        spec:
          account: MSP/Acme
          schedule: {cron: "0 22 * *", timezone: Europe/Berlin}
          window: Mon-Fri 22:00-06:00 Mars/Olympus
          destination: {path: /srv, minFree: lots}
          activities:
            - action: rsync
              targets: "*"
              retension: {keepLast: 3}
            - targets: "*"
        """)
    assert found == [
        "plans.yaml:4:12: Plan nightly: spec.account: 'MSP/Acme' is not an account path: "
        "'reseller/customer/account'",
        "plans.yaml:5:13: Plan nightly: spec.schedule: invalid cron expression '0 22 * *'",
        "plans.yaml:6:11: Plan nightly: spec.window: unknown time zone 'Mars/Olympus' in window "
        "'Mon-Fri 22:00-06:00 Mars/Olympus'",
        "plans.yaml:7:38: Plan nightly: spec.destination.minFree: not a size: 'lots' (e.g. "
        "500MiB, 20GB, 1073741824)",
        "plans.yaml:9:15: Plan nightly: spec.activities[0].action: 'rsync' is not an action: "
        "'plugin.action', e.g. rsync.sync",
        "plans.yaml:11:18: Plan nightly: spec.activities[0].retension: unknown field",
        "plans.yaml:12:7: Plan nightly: spec.activities[1].action: required field missing",
    ]


def test_yaml_kind_and_duplicate_errors() -> None:
    assert problems("kind: Plan\nmetadata: {name: x\n") == [
        "plans.yaml:3:1: file: not valid YAML: expected ',' or '}', but got '<stream end>'"]
    assert problems("kind: Job\nmetadata: {name: x}\n") == [
        "plans.yaml:1:7: Job x: kind: kind must be one of Account, Target, Plan, not 'Job'"]
    assert problems("kind: Target\nkind: Target\n") == [
        "plans.yaml:2:1: document 1: key 'kind' appears twice"]
    assert problems("- a\n- b\n") == [
        "plans.yaml:1:1: document 1: expected an object with kind, metadata and spec"]
    assert problems("kind: Target\nmetadata: {name: '../x'}\n")[0].startswith(
        "plans.yaml:2:18: Target ../x: metadata.name: '../x' is not a name")


def test_the_same_object_in_two_files_is_refused(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("kind: Target\nmetadata: {name: web}\n")
    second.write_text("---\nkind: Target\nmetadata: {name: web}\n")
    with pytest.raises(PlanFileError, match=r"b.yaml:2:1: Target web: metadata.name: declared "
                       r"twice \(first at .*a.yaml:1\)"):
        load_files([first, second])
    with pytest.raises(PlanFileError, match=r"missing\.yaml:1:1: file: No such file"):
        load_files([tmp_path / "missing.yaml"])
    first.write_text("kind: Account\nmetadata: {name: A/B/c}\n")
    second.write_text("kind: Account\nmetadata: {name: A/B/c}\nspec: {contacts: []}\n")
    with pytest.raises(PlanFileError, match=r"b.yaml:1:1: Account A/B/c: metadata.name: declared "
                       r"twice"):
        load_files([first, second])


# --- Accounts -------------------------------------------------------------------------------------

ACCOUNT = """\
kind: Account
metadata: {name: MSP/Acme/fileserver}
spec: {contacts: [ops@acme.example, it@acme.example], quota: 2GiB}
---
"""


def test_an_account_is_declared_by_its_path() -> None:
    declared = load_text(ACCOUNT + "kind: Account\nmetadata: {name: My MSP/Acme Inc./laptop 2}\n",
                         "plans.yaml")
    assert [(d.kind, d.name, d.line) for d in declared] == [
        ("Account", "MSP/Acme/fileserver", 1), ("Account", "My MSP/Acme Inc./laptop 2", 5)]
    first, second = (d.obj for d in declared)
    assert isinstance(first, Account) and isinstance(second, Account)
    assert first.path == ("MSP", "Acme", "fileserver")
    assert first.spec.contacts == ["ops@acme.example", "it@acme.example"]
    assert first.spec.quota == 2 * 1024 ** 3
    assert second.path == ("My MSP", "Acme Inc.", "laptop 2")
    assert (second.spec.contacts, second.spec.quota) == (None, None)  # not given: left alone
    assert Account.model_validate(catalog.document(first)) == first
    assert len(load_text(ACCOUNT, "plans.yaml")) == 1  # a trailing --- starts no object


def test_account_errors_name_file_line_column_and_field() -> None:
    found = problems("""\
        kind: Account
        metadata: {name: MSP/Acme}
        ---
        kind: Account
        metadata: {name: "MSP//laptop"}
        ---
        kind: Account
        metadata: {name: "MSP/Acme/lap\\ttop"}
        ---
        kind: Account
        metadata: {name: MSP/Acme/x, labels: {a: b}}
        spec:
          contacts: [ops@acme.example, nobody]
          quota: lots
          owner: me
        ---
        kind: Account
        spec: {}
        """)
    assert found == [
        "plans.yaml:2:18: Account MSP/Acme: metadata.name: 'MSP/Acme' is not an account path: "
        "'reseller/customer/account'",
        "plans.yaml:5:18: Account MSP//laptop: metadata.name: 'MSP//laptop' is not an account "
        "path: 'reseller/customer/account'",
        "plans.yaml:8:18: Account MSP/Acme/lap\ttop: metadata.name: 'MSP/Acme/lap\\ttop': "
        "account name 'lap\\ttop' contains control characters",
        "plans.yaml:11:38: Account MSP/Acme/x: metadata.labels: unknown field",
        "plans.yaml:13:13: Account MSP/Acme/x: spec.contacts: 'nobody' is not an e-mail address",
        "plans.yaml:14:10: Account MSP/Acme/x: spec.quota: not a size: 'lots' (e.g. 500MiB, "
        "20GB, 1073741824)",
        "plans.yaml:15:10: Account MSP/Acme/x: spec.owner: unknown field",
        "plans.yaml:17:1: document 5: metadata: required field missing",
    ]
    long = "x" * 201
    assert problems(f"kind: Account\nmetadata: {{name: MSP/Acme/{long}}}\n") == [
        f"plans.yaml:2:18: Account MSP/Acme/{long}: metadata.name: 'MSP/Acme/{long}': account "
        "name is longer than 200 characters"]


Stored = tuple[list[str], list[str], list[tuple[str, list[str], int | None]], int]


def tenancy_rows(db: Database) -> Stored:
    """Resellers', customers' names, accounts (name, contacts, quota) and how many tokens."""
    with db.session() as session:
        accounts = session.exec(select(AccountRow)).all()
        return (sorted(r.name for r in session.exec(select(Reseller))),
                sorted(c.name for c in session.exec(select(Customer))),
                sorted((a.name, a.contacts, a.quota_bytes) for a in accounts),
                len(session.exec(select(ApiToken)).all()))


def test_a_plan_reports_as_an_account_declared_in_the_same_file(db: Database) -> None:
    # The plan comes first in the file: the account is still stored before it.
    declared = load_text(GOOD + "---\n" + ACCOUNT, "plans.yaml")
    with db.session() as session:
        first = catalog.apply(session, declared, plugins())
    assert [(a.kind, a.name, a.outcome, a.generation) for a in first] == [
        ("Target", "db-1", "created", 1), ("Target", "localhost", "created", 1),
        ("Plan", "nightly", "created", 1), ("Account", "MSP/Acme/fileserver", "created", None)]
    assert first[3].row() == {"kind": "Account", "name": "MSP/Acme/fileserver",
                              "outcome": "created", "generation": None,
                              "account_id": first[3].account_id}
    assert tenancy_rows(db) == (["MSP"], ["Acme"], [
        ("fileserver", ["ops@acme.example", "it@acme.example"], 2 * 1024 ** 3)], 1)
    with db.session() as session:
        row = catalog.plan_row(session, Scope.everything(), "nightly")
        account = catalog.find_account(session, "MSP/Acme/fileserver")
    assert account is not None and row.account_id == account.id == first[3].account_id
    # Applying again changes nothing and issues nothing.
    with db.session() as session:
        again = catalog.apply(session, declared, plugins())
    assert {a.outcome for a in again} == {"unchanged"}
    assert again[3].account_id == account.id
    assert tenancy_rows(db)[2:] == ([
        ("fileserver", ["ops@acme.example", "it@acme.example"], 2 * 1024 ** 3)], 1)


def test_an_account_applied_again_updates_what_is_given(db: Database) -> None:
    issued = make_account(db, reseller="MSP", customer="Acme", name="fileserver",
                          contacts=["old@acme.example"])
    with db.session() as session:
        [applied] = catalog.apply(session, load_text(ACCOUNT, "a.yaml"), plugins())
    assert (applied.outcome, applied.account_id) == ("updated", issued.account.id)
    assert tenancy_rows(db) == (["MSP"], ["Acme"], [
        ("fileserver", ["ops@acme.example", "it@acme.example"], 2 * 1024 ** 3)], 1)
    # Left out: left alone; given: replaced (an empty list too).
    bare = "kind: Account\nmetadata: {name: MSP/Acme/fileserver}\n"
    with db.session() as session:
        assert catalog.apply(session, load_text(bare, "a.yaml"), plugins())[0].outcome == \
            "unchanged"
    assert tenancy_rows(db)[2] == [
        ("fileserver", ["ops@acme.example", "it@acme.example"], 2 * 1024 ** 3)]
    with db.session() as session:
        [applied] = catalog.apply(session, load_text(bare + "spec: {contacts: [], quota: 1GB}\n",
                                                     "a.yaml"), plugins())
    assert applied.outcome == "updated"
    assert tenancy_rows(db)[2] == [("fileserver", [], 10 ** 9)]
    # A new account under an existing reseller and customer: only the account is created.
    with db.session() as session:
        [applied] = catalog.apply(session, load_text(bare.replace("fileserver", "laptop"),
                                                     "a.yaml"), plugins())
    assert applied.outcome == "created"
    assert tenancy_rows(db) == (["MSP"], ["Acme"], [("fileserver", [], 10 ** 9),
                                                    ("laptop", [], None)], 2)


def test_a_declared_account_is_not_created_when_the_file_is_refused(db: Database) -> None:
    text = ACCOUNT + GOOD.replace("action: command.run", "action: nope.run")
    with db.session() as session, pytest.raises(PlanFileError) as caught:
        catalog.apply(session, load_text(text, "plans.yaml"), plugins())
    assert [p.field for p in caught.value.problems] == ["spec.activities[0].action"]
    assert tenancy_rows(db) == ([], [], [], 0)  # all or nothing


def test_templates_must_give_each_backup_a_place_of_its_own() -> None:
    found = problems("""\
        kind: Plan
        metadata: {name: p}
        spec:
          account: R/C/A
          destination: {path: /d}
          output: "{destination}/{target}/{host}/{timestamp}"
          activities:
            - {action: command.run, targets: "*", output: "{destination}/{target}"}
        """)
    assert "spec.output: unknown placeholder {host}" in found[0]
    assert "spec.activities[0].output: output template '{destination}/{target}' must contain " \
        "{timestamp}" in found[1]


# --- Output paths ---------------------------------------------------------------------------------


def test_default_output_path_has_a_millisecond_timestamp() -> None:
    moment = datetime(2026, 11, 30, 22, 48, 0, 7000, tzinfo=ZoneInfo("Europe/Berlin"))
    assert timestamp(moment) == "2026-11-30-22-48-00-007"
    path = render(DEFAULT_OUTPUT, destination="/data/backup/store", target="QA-device1",
                  action="rsync.sync", item="all", plan="p", activity=1, moment=moment)
    assert path == Path("/data/backup/store/QA-device1/rsync.sync/all/2026-11-30-22-48-00-007")
    assert series_pattern(DEFAULT_OUTPUT) == "*/*/*"


def test_julian_day_and_year_templates_and_unsafe_values() -> None:
    moment = datetime(2026, 9, 25, 1, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))
    path = render("{destination}/{year}/{julian}/{target}-{item}", destination="/b",
                  target="cluster", action="command.run", item="../../etc", plan="p",
                  activity=2, moment=moment)
    assert path == Path("/b/2026/268/cluster-_._.._etc")
    relative = render("{plan}/{date}", destination="/b", target="t", action="a", item="i",
                      plan="p", activity=1, moment=moment)
    assert relative == Path("/b/p/2026-09-25")


def test_an_existing_backup_is_never_overwritten(tmp_path: Path) -> None:
    wanted = tmp_path / "web" / "268"
    first = reserve(wanted)
    (first / "kept.txt").write_text("earlier backup")
    second = reserve(wanted)
    third = reserve(wanted)
    assert (first, second, third) == (wanted, tmp_path / "web" / "268-2",
                                      tmp_path / "web" / "268-3")
    assert (first / "kept.txt").read_text() == "earlier backup"


# --- Expansion ------------------------------------------------------------------------------------


EXPANDING = """\
kind: Plan
metadata: {name: p}
spec:
  account: R/C/A
  destination: {path: /d}
  activities:
    - {action: probe.copy, targets: "qa*"}
    - {action: probe.copy, targets: "test*", items: "DOMAIN*"}
    - {action: probe.copy, targets: "prod*"}
"""


def test_expansion_follows_dpod_example() -> None:
    """DPOD's example: QA1-3 whole; TEST8 two domains; TEST9 unavailable gives a skipped task;
    a pattern matching nothing gives one too."""
    plan = load_text(EXPANDING)[0].obj
    assert isinstance(plan, Plan)
    inventory = Inventory([Target.model_validate({"metadata": {"name": n}})
                           for n in ("qa1", "qa2", "qa3", "test8", "test9", "web")])
    matched = targets_of(plan, inventory)
    assert matched == [["qa1", "qa2", "qa3"], ["test8", "test9"], []]
    found = {(0, n): Found(["all"]) for n in matched[0]}
    found[(1, "test8")] = Found(["DOMAIN1", "DOMAIN2"])
    found[(1, "test9")] = Found(reason="test9 does not answer")
    activities = expand(plan, matched, found, "e1")
    tasks = [t for a in activities for t in a.tasks]
    assert [(t.id, t.target, t.item, t.status, t.error) for t in tasks] == [
        ("e1.1", "qa1", "all", TaskStatus.PENDING, None),
        ("e1.2", "qa2", "all", TaskStatus.PENDING, None),
        ("e1.3", "qa3", "all", TaskStatus.PENDING, None),
        ("e1.4", "test8", "DOMAIN1", TaskStatus.PENDING, None),
        ("e1.5", "test8", "DOMAIN2", TaskStatus.PENDING, None),
        ("e1.6", "test9", "DOMAIN*", TaskStatus.SKIPPED, "test9 does not answer"),
        ("e1.7", "prod*", "all", TaskStatus.SKIPPED, "no target matches 'prod*'"),
    ]


def test_expansion_of_ten_thousand_targets_with_ten_items_is_fast() -> None:
    plan = load_text(EXPANDING)[0].obj
    assert isinstance(plan, Plan)
    inventory = Inventory([Target.model_validate({"metadata": {"name": f"test{n}"}})
                           for n in range(10_000)])
    started = time.perf_counter()
    matched = targets_of(plan, inventory)
    items = [f"DOMAIN{i}" for i in range(10)]
    found = {(1, n): Found(items) for n in matched[1]}
    tasks = [t for a in expand(plan, matched, found, "e") for t in a.tasks]
    elapsed = time.perf_counter() - started
    assert len(tasks) == 1 + 100_000 + 1
    # Loose here (the test machine is shared); the 1 s target is bench/executor/expansion.py.
    assert elapsed < 10.0


# --- Applying -------------------------------------------------------------------------------------


def test_apply_checks_account_plugins_and_options(db: Database) -> None:
    make_account(db, reseller="MSP", customer="Acme", name="fileserver")
    text = GOOD.replace("MSP/Acme/fileserver", "MSP/Acme/nobody").replace(
        'options: {script: "true"}', 'options: {script: "true", colour: blue}') + \
        "    - {action: nope.copy, targets: '*'}\n    - {action: probe.copy, targets: '*', " \
        "options: {}}\n"
    declared = load_text(text, "plans.yaml")
    with db.session() as session, pytest.raises(PlanFileError) as caught:
        catalog.apply(session, declared, plugins())
    assert [str(p) for p in caught.value.problems] == [
        "plans.yaml:12:12: Plan nightly: spec.account: no account 'MSP/Acme/nobody' (declare it "
        "as kind: Account, or create it with backstop accounts create)",
        "plans.yaml:22:41: Plan nightly: spec.activities[0].options.colour: Extra inputs are not "
        "permitted",
        "plans.yaml:26:16: Plan nightly: spec.activities[1].action: no plugin named nope "
        f"(installed: {', '.join(sorted(plugins().plugins))})",
    ]
    with db.session() as session:
        assert catalog.plan_rows(session, Scope.everything()) == []  # all or nothing


def test_apply_creates_updates_and_leaves_unchanged(db: Database) -> None:
    issued = make_account(db, reseller="MSP", customer="Acme", name="fileserver")
    declared = load_text(GOOD, "plans.yaml")
    with db.session() as session:
        first = catalog.apply(session, declared, plugins())
    assert [(a.kind, a.name, a.outcome) for a in first] == [
        ("Target", "db-1", "created"), ("Target", "localhost", "created"),
        ("Plan", "nightly", "created")]
    with db.session() as session:
        again = catalog.apply(session, declared, plugins())
    assert {a.outcome for a in again} == {"unchanged"}
    changed = load_text(GOOD.replace("keepLast: 3", "keepLast: 4"), "plans.yaml")
    with db.session() as session:
        third = catalog.apply(session, changed, plugins())
    assert [(a.name, a.outcome, a.generation) for a in third][2] == ("nightly", "updated", 2)
    with db.session() as session:
        plan = catalog.load_plan(session, "nightly")
        row = catalog.plan_row(session, Scope.everything(), "nightly")
        inventory = catalog.inventory(session)
        assert catalog.set_enabled(session, Scope.everything(), "nightly", False)
    retention = plan.spec.activities[0].retention
    assert retention is not None and retention.keep_last == 4
    assert (row.reseller_id, row.customer_id, row.account_id) == (
        issued.reseller.id, issued.customer.id, issued.account.id)
    assert sorted(inventory.targets) == ["db-1", "localhost"]
    with db.session() as session:
        assert catalog.enabled_plans(session) == []
        assert catalog.load_plan(session, "nightly").spec.enabled is False
        # Plans belong to their account's tenant: another reseller does not see it.
        other = Scope.of_reseller("someone-else")
        assert catalog.plan_rows(session, other) == []
        with pytest.raises(catalog.CatalogError):
            catalog.plan_row(session, other, "nightly")
    # The switch holds until the plan is applied with changed content.
    with db.session() as session:
        assert {a.outcome for a in catalog.apply(session, changed, plugins())} == {"unchanged"}
        assert catalog.enabled_plans(session) == []
        catalog.apply(session, declared, plugins())  # different from the last applied
        assert [p.name for p in catalog.enabled_plans(session)] == ["nightly"]
