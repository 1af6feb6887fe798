"""The README's executor demo, exactly as written, on a copy of the checkout with `backstop up`
running: an account, `plans apply -f examples/plans/local.yaml`, `plans run local --wait`,
`plans history local`, then the drill-down to the files, the backup on disk and the plan
report in the outbox."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.up import ROOT, Up


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """What a fresh clone has that the demo reads: its docs/ and examples/ folders."""
    root = tmp_path / "backstop"
    shutil.copytree(ROOT / "docs", root / "docs")
    shutil.copytree(ROOT / "examples", root / "examples")
    return root


@pytest.fixture
def system(checkout: Path) -> Iterator[Up]:
    up = Up(checkout / "var", cwd=checkout)
    (checkout / "var").mkdir()
    up.start()
    yield up
    up.stop()


@pytest.mark.slow
def test_the_readme_demo_backs_up_the_docs_folder(system: Up, checkout: Path) -> None:
    system.cli("accounts", "create", "--reseller", "Local", "--customer", "Demo", "--name",
               "laptop", "--email", "you@example.com")
    applied = system.cli("plans", "apply", "-f", "examples/plans/local.yaml")
    assert applied.split("\n")[:2] == ["target/localhost created", "plan/local created"]

    outcome = system.cli("plans", "run", "local", "--wait")
    assert "status" in outcome and "succeeded" in outcome, outcome
    execution_id = next(line.split()[-1] for line in outcome.splitlines()
                        if line.startswith("id"))

    history = system.cli("plans", "history", "local").splitlines()
    assert history[0].split()[:3] == ["ID", "QUEUED_AT", "TARGETS"]
    assert len(history) == 2 and history[1].startswith(execution_id)
    assert "succeeded" in history[1]

    files = json.loads(system.cli("plans", "show", execution_id, "--task", "1", "--files",
                                  "--json"))
    names = {Path(f["path"]).name for f in files["files"]}
    assert {"architecture.md", "evaluator.md"} <= names

    [copy] = (checkout / "var" / "backups").rglob("architecture.md")
    assert copy.read_bytes() == (checkout / "docs" / "architecture.md").read_bytes()
    assert "/localhost/rsync.sync/" in str(copy)

    reports = [p.read_text() for p in (checkout / "var" / "outbox").glob("*.eml")]
    assert any("Backup plan local: succeeded" in r for r in reports)
