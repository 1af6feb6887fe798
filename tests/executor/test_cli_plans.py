"""``backstop plans`` and ``backstop targets`` through the real command line, on both database
backends: apply (and its errors), list, show, enable/disable, history and the drill-down."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.executor import catalog
from services.executor.flow import execute
from services.executor.history import DatabaseHistory
from services.executor.plugins import registry
from services.executor.ports import ExecutionContext
from shared.db import Database
from shared.tenancy import account_for_token
from tests.executor.support import write_tree
from tests.support import make_account

runner = CliRunner()


@pytest.fixture
def env(db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setenv("BACKSTOP_DATABASE_URL", db_url)
    make_account(db, reseller="MSP", customer="Acme", name="fileserver")
    return db


def invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.stderr


def plan_file(tmp_path: Path) -> Path:
    source = write_tree(tmp_path / "docs", {"index.md": "# Docs\n", "guide/a.md": "aaa\n"})
    path = tmp_path / "local.yaml"
    path.write_text(f"""\
kind: Target
metadata: {{name: localhost, labels: {{site: here}}}}
---
kind: Plan
metadata: {{name: local}}
spec:
  account: MSP/Acme/fileserver
  schedule: {{cron: "0 22 * * *", timezone: Europe/Berlin}}
  destination: {{path: '{tmp_path / "backups"}'}}
  report: {{recipients: [ops@acme.example]}}
  activities:
    - action: rsync.sync
      targets: localhost
      options: {{source: '{source}'}}
      retention: {{keepLast: 5}}
""")
    return path


def test_apply_list_show_enable_disable(env: Database, tmp_path: Path) -> None:
    path = plan_file(tmp_path)
    assert invoke("plans", "apply", "-f", str(path)).splitlines() == [
        "target/localhost created", "plan/local created"]
    assert invoke("plans", "apply", "-f", str(path)).splitlines() == [
        "target/localhost unchanged", "plan/local unchanged"]
    listing = invoke("plans", "list").splitlines()
    assert listing[0].split() == ["NAME", "ENABLED", "ACCOUNT", "JOB", "SCHEDULE", "WINDOWS",
                                  "ACTIVITIES", "LAST_RUN", "LAST_STATUS"]
    assert listing[1].split()[:4] == ["local", "true", "MSP/Acme/fileserver", "local"]
    shown = invoke("plans", "show", "local")
    assert "destination  " + str(tmp_path / "backups") in shown
    assert "rsync.sync" in shown and "ops@acme.example" in shown
    document = json.loads(invoke("plans", "show", "local", "--json"))["document"]
    assert document["spec"]["activities"][0]["retention"]["keepLast"] == 5
    assert invoke("plans", "disable", "local") == "plan local disabled\n"
    assert invoke("plans", "disable", "local") == "plan local was already disabled\n"
    assert json.loads(invoke("plans", "list", "--json"))["items"][0]["enabled"] is False
    assert invoke("plans", "enable", "local") == "plan local enabled\n"
    targets = json.loads(invoke("targets", "list", "--json"))
    assert [(t["name"], t["labels"], t["ssh"]) for t in targets["items"]] == [
        ("localhost", {"site": "here"}, False)]
    assert invoke("plans", "enable", "nope", code=2) == "error: no plan 'nope'\n"


def test_a_bad_file_is_refused_with_file_line_and_field(env: Database, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: Plan\nmetadata: {name: p}\nspec:\n  account: MSP/Acme/nobody\n"
                    "  destination: {path: /x}\n  activities:\n"
                    "    - {action: rsync.sync, targets: '*', options: {sauce: /}}\n")
    error = invoke("plans", "apply", "-f", str(path), code=2)
    assert error.splitlines() == [
        f"error: {path}:4:12: Plan p: spec.account: no account 'MSP/Acme/nobody' (declare it "
        "as kind: Account, or create it with backstop accounts create)",
        f"{path}:7:51: Plan p: spec.activities[0].options.source: Field required",
        f"{path}:7:59: Plan p: spec.activities[0].options.sauce: Extra inputs are not "
        "permitted"]
    assert json.loads(invoke("plans", "list", "--json"))["total"] == 0


def test_apply_declares_accounts_without_showing_secrets(env: Database, tmp_path: Path) -> None:
    path = tmp_path / "account.yaml"
    account = ("kind: Account\nmetadata: {name: MSP/Acme/laptop}\n"
               "spec: {contacts: [a@acme.example]}\n")
    plan = plan_file(tmp_path).read_text().replace("MSP/Acme/fileserver", "MSP/Acme/laptop")
    path.write_text(account + "---\n" + plan)
    created = invoke("plans", "apply", "-f", str(path)).splitlines()
    match = re.fullmatch(r"account/MSP/Acme/laptop created \(id ([0-9a-f]{16})\); issue its API "
                         r"token with `backstop tokens issue --account \1`", created[0])
    assert match is not None, created
    assert created[1:] == ["target/localhost created", "plan/local created"]
    # The hint works: a token is issued on demand (the one made with the account stays unknown).
    token = invoke("tokens", "issue", "--account", match.group(1)).strip()
    with env.session() as session:
        found = account_for_token(session, token)
    assert found is not None and found.id == match.group(1)
    path.write_text(account.replace("a@acme", "b@acme") + "---\n" + plan)
    applied = json.loads(invoke("plans", "apply", "-f", str(path), "--json"))["applied"]
    assert applied == [
        {"kind": "Account", "name": "MSP/Acme/laptop", "outcome": "updated", "generation": None,
         "account_id": match.group(1)},
        {"kind": "Target", "name": "localhost", "outcome": "unchanged", "generation": 1},
        {"kind": "Plan", "name": "local", "outcome": "unchanged", "generation": 1}]
    assert invoke("plans", "apply", "-f", str(path)).splitlines()[0] == \
        "account/MSP/Acme/laptop unchanged"
    listing = json.loads(invoke("accounts", "list", "--json"))["items"]
    assert [(a["name"], a["contacts"]) for a in listing] == [
        ("fileserver", ["ops@example.com"]), ("laptop", ["b@acme.example"])]
    path.write_text("kind: Account\nmetadata: {name: MSP/laptop}\n")
    assert invoke("plans", "apply", "-f", str(path), code=2) == (
        f"error: {path}:2:18: Account MSP/laptop: metadata.name: 'MSP/laptop' is not an "
        "account path: 'reseller/customer/account'\n")


async def test_history_and_drill_down_to_files(env: Database, tmp_path: Path) -> None:
    invoke("plans", "apply", "-f", str(plan_file(tmp_path)))
    with env.session() as session:
        plan, inventory = catalog.load_plan(session, "local"), catalog.inventory(session)
    execution = await execute(plan, inventory, ExecutionContext(
        plugins=registry.load(), history=DatabaseHistory(env)))
    history = invoke("plans", "history", "local").splitlines()
    assert history[0].split() == ["ID", "QUEUED_AT", "TARGETS", "ITEMS", "STATUS", "SUCCEEDED",
                                  "FAILED", "SKIPPED", "ERROR"]
    assert history[1].split()[0] == execution.id
    assert history[1].split()[3:] == ["1", "0", "succeeded", "1", "0", "0", "-"]
    shown = invoke("plans", "show", execution.id)
    assert "status       succeeded" in shown
    task_line = [line for line in shown.splitlines() if line.startswith("1 ")][-1].split()
    assert task_line[3:6] == ["localhost", "all", "2"]  # target, item, files
    task = invoke("plans", "show", execution.id, "--task", "1", "--files")
    assert "status       succeeded" in task and "fact " in task
    files = task.split("PATH")[1].splitlines()
    assert sorted(line.split()[0] for line in files[1:]) == ["guide/a.md", "index.md"]
    as_json = json.loads(invoke("plans", "show", execution.id, "--task", "1", "--files",
                                "--json"))
    assert {f["path"]: f["size"] for f in as_json["files"]} == {"guide/a.md": 4, "index.md": 7}
    assert json.loads(invoke("plans", "history", "local", "--json"))["total"] == 1
    assert invoke("plans", "show", "0123456789abcdef", code=2) == \
        "error: no execution '0123456789abcdef'\n"
    assert invoke("plans", "show", "local", "--files", code=2).startswith("error: --task")
