"""The README's executor demo, exactly as written, on a copy of the checkout with `backstop up`
running: `plans apply -f examples/plans/local.yaml` (which declares the account too),
`plans run local --wait`, `plans history local` and nothing else; then the backup on disk and
the plan report in the outbox."""

from __future__ import annotations

import re
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
    applied = system.cli("plans", "apply", "-f", "examples/plans/local.yaml").splitlines()
    assert re.fullmatch(r"account/Local/Demo/laptop created \(id ([0-9a-f]{16})\); issue its API "
                        r"token with `backstop tokens issue --account \1`", applied[0]), applied
    assert applied[1:] == ["target/localhost created", "plan/local created"]  # no secrets

    outcome = system.cli("plans", "run", "local", "--wait")
    assert re.search(r"^status\s+succeeded$", outcome, re.MULTILINE), outcome
    execution_id = next(line.split()[-1] for line in outcome.splitlines()
                        if line.startswith("id"))

    history = system.cli("plans", "history", "local").splitlines()
    assert history[0].split()[:3] == ["ID", "QUEUED_AT", "TARGETS"]
    assert len(history) == 2 and history[1].startswith(execution_id)
    assert "succeeded" in history[1]

    [copy] = (checkout / "var" / "backups").rglob("architecture.md")
    assert copy.read_bytes() == (checkout / "docs" / "architecture.md").read_bytes()
    assert "/localhost/rsync.sync/" in str(copy)
    assert {p.name for p in (checkout / "docs").glob("*.md")} == {
        p.name for p in copy.parent.glob("*.md")}

    reports = [p.read_text() for p in (checkout / "var" / "outbox").glob("*.eml")]
    assert any("Backup plan local: succeeded" in r for r in reports)
