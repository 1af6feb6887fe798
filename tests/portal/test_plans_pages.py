"""The Plans pages (SQLite and PostgreSQL): plans in scope with their last execution, a plan's
executions, the drill-down execution → activity → task → files, Run now publishing the trigger
``backstop plans run`` publishes (onto a real nats-server's executor stream), and the same reads
as JSON under /api/v1. Executions are real: plans applied with the executor's catalog and run
by its flow with the probe plugin, recorded by its database history."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from services.executor import catalog
from services.executor.flow import execute
from services.executor.history import DatabaseHistory
from services.executor.plans.files import load_text
from services.executor.ports import ExecutionContext
from services.portal import api_keys
from services.portal.users import Role
from shared.bus import Bus
from shared.db import Database
from shared.events import PlanTriggered, decode
from shared.streams import EXECUTOR
from tests.executor.probe import plugins
from tests.portal.site import (
    PASSWORD,
    RunningPortal,
    Tenants,
    add_user,
    csrf_token,
    portal_app,
    tenants,
)

SCRIPT = "<script>alert(1)</script>"


def _documents(destination: Path) -> str:
    def plan(name: str, account: str) -> str:
        return (f"kind: Plan\nmetadata: {{name: {name}}}\nspec:\n  account: {account}\n"
                f"  destination: {{path: '{destination / name}'}}\n"
                "  schedule: {cron: '0 2 * * *', timezone: Europe/Berlin}\n"
                "  activities:\n"
                "    - action: probe.copy\n      targets: '*'\n"
                f"      scripts: {{pre: 'echo \"{SCRIPT}\"'}}\n")
    return ("kind: Target\nmetadata: {name: alpha}\n---\n"
            + plan("acme-files", "Reseller One/Acme/fileserver") + "---\n"
            + plan("initech-erp", "Reseller Two/Initech/erp"))


@dataclass
class History:
    tenants: Tenants
    acme: str  # the execution ids
    initech: str
    acme_task: str
    initech_task: str


async def _run(db: Database, name: str) -> tuple[str, str]:
    with db.session() as session:
        plan = catalog.load_plan(session, name)
        inventory = catalog.inventory(session)
    execution = await execute(plan, inventory,
                              ExecutionContext(plugins=plugins(), history=DatabaseHistory(db)))
    return execution.id, execution.tasks[0].id


async def record_history(db: Database, tmp_path: Path) -> History:
    seen = tenants(db)
    with db.session() as session:
        catalog.apply(session, load_text(_documents(tmp_path / "dest"), "plans.yaml"), plugins())
    acme, acme_task = await _run(db, "acme-files")
    await _run(db, "acme-files")  # two executions of acme's plan
    initech, initech_task = await _run(db, "initech-erp")
    add_user(db, "op@example.com", Role.operator)
    add_user(db, "it@acme.example", Role.customer, reseller="Reseller One", customer="Acme")
    add_user(db, "ro@acme.example", Role.customer, reseller="Reseller One", customer="Acme",
             read_only=True)
    return History(seen, acme, initech, acme_task, initech_task)


@pytest.fixture
async def history(db: Database, tmp_path: Path) -> History:
    return await record_history(db, tmp_path)


@pytest.fixture
async def web(db: Database, tmp_path: Path, bus: Bus) -> AsyncIterator[httpx.AsyncClient]:
    """The portal app in this test's event loop (its bus is the test's), without a server."""
    app = portal_app(db, tmp_path, bus)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://portal.test") as client:
        yield client


async def log_in(client: httpx.AsyncClient, email: str) -> None:
    form = await client.get("/login")
    answer = await client.post("/login", data={"email": email, "password": PASSWORD, "next": "/",
                                               "csrf_token": csrf_token(form.text)})
    assert answer.status_code == 303, answer.text


async def triggers(bus: Bus) -> list[PlanTriggered]:
    info = await bus.js.stream_info(EXECUTOR.name)
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        if info.state.messages == 0:
            break
        data = (await bus.js.get_msg(EXECUTOR.name, seq)).data
        assert data is not None
        event = decode(data)
        assert isinstance(event, PlanTriggered)
        found.append(event)
    return found


async def test_plans_list_plan_and_drill_down(web: httpx.AsyncClient, history: History) -> None:
    await log_in(web, "op@example.com")
    listing = await web.get("/plans")
    assert listing.status_code == 200
    assert 'href="/plans/acme-files"' in listing.text
    assert 'href="/plans/initech-erp"' in listing.text
    assert "0 2 * * * (Europe/Berlin)" in listing.text and "succeeded" in listing.text
    assert '<a href="/plans" aria-current="page">Plans</a>' in listing.text

    plan = await web.get("/plans/acme-files")
    assert plan.status_code == 200
    assert "The last 2 of 2 executions kept (at most 40)" in plan.text
    assert f'href="/executions/{history.acme}"' in plan.text
    assert 'action="/plans/acme-files/run"' in plan.text

    execution = await web.get(f"/executions/{history.acme}")
    assert execution.status_code == 200
    assert "probe.copy" in execution.text
    assert f'href="/executions/{history.acme}?activity=0#tasks"' in execution.text
    assert f'href="/tasks/{history.acme_task}"' in execution.text
    only = await web.get(f"/executions/{history.acme}", params={"activity": 0})
    assert "Tasks of activity 1" in only.text and "1 task<" in only.text
    assert "0 tasks" in (await web.get(f"/executions/{history.acme}",
                                        params={"activity": 5})).text

    task = await web.get(f"/tasks/{history.acme_task}")
    assert task.status_code == 200
    text = task.text
    assert "<dt>Files transferred</dt><dd>1</dd>" in text
    assert "<dt>Bytes</dt><dd>10 B</dd>" in text
    assert "<code>data.txt</code>" in text and "1 file<" in text
    assert "probe.version" in text
    # The pre-task script printed a script element: shown as text, never run.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert SCRIPT not in text


@pytest.mark.parametrize("email", ["it@acme.example", "ro@acme.example"])
async def test_another_tenants_plans_are_not_found(web: httpx.AsyncClient, history: History,
                                                   email: str) -> None:
    await log_in(web, email)
    listing = (await web.get("/plans")).text
    assert "acme-files" in listing and "initech-erp" not in listing
    assert (await web.get(f"/tasks/{history.acme_task}")).status_code == 200
    for path in ("/plans/initech-erp", f"/executions/{history.initech}",
                 f"/tasks/{history.initech_task}", "/plans/no-such-plan"):
        answer = await web.get(path)
        assert answer.status_code == 404, path
        assert "nothing you may see" in answer.text
        assert "initech" not in answer.text.lower()


async def test_run_now_publishes_the_plans_trigger(web: httpx.AsyncClient, history: History,
                                                   bus: Bus) -> None:
    await log_in(web, "it@acme.example")
    plan = await web.get("/plans/acme-files")
    answer = await web.post("/plans/acme-files/run", data={"csrf_token": csrf_token(plan.text)})
    assert answer.status_code == 303
    location = answer.headers["location"]
    found = re.fullmatch(r"/plans/acme-files\?queued=([0-9a-f]{32})", location)
    assert found, location
    [trigger] = await triggers(bus)
    acme = history.tenants.acme
    assert (trigger.plan, trigger.execution_id, trigger.reason) == (
        "acme-files", found.group(1), "manual")
    assert (trigger.tenant.reseller, trigger.tenant.customer, trigger.tenant.account) == (
        acme.reseller.id, acme.customer.id, acme.account.id)
    shown = await web.get(location)
    assert shown.status_code == 200
    assert f"Execution <code>{found.group(1)}</code> is queued" in shown.text

    # Another tenant's plan: not found, and nothing published.
    refused = await web.post("/plans/initech-erp/run",
                             data={"csrf_token": csrf_token(plan.text)})
    assert refused.status_code == 404
    assert len(await triggers(bus)) == 1


async def test_run_now_is_refused_read_only_and_without_a_token(
    web: httpx.AsyncClient, history: History, bus: Bus,
) -> None:
    await log_in(web, "ro@acme.example")
    plan = await web.get("/plans/acme-files")
    assert 'action="/plans/acme-files/run"' not in plan.text
    assert "read-only: it cannot start plans" in plan.text
    refused = await web.post("/plans/acme-files/run", data={"csrf_token": csrf_token(plan.text)})
    assert refused.status_code == 403
    assert "Read-only" in refused.text

    web.cookies.clear()
    await log_in(web, "it@acme.example")
    assert (await web.post("/plans/acme-files/run")).status_code == 403
    assert (await web.post("/plans/acme-files/run",
                           data={"csrf_token": "forged"})).status_code == 403
    assert await triggers(bus) == []


async def test_the_json_api_is_scoped_by_the_session(web: httpx.AsyncClient,
                                                     history: History) -> None:
    assert (await web.get("/api/v1/plans")).status_code == 401
    await log_in(web, "it@acme.example")
    plans = (await web.get("/api/v1/plans")).json()
    assert [p["name"] for p in plans["items"]] == ["acme-files"]
    runs = (await web.get("/api/v1/plans/acme-files/executions")).json()
    assert runs["total"] == 2 and history.acme in [r["id"] for r in runs["items"]]
    files = (await web.get(f"/api/v1/tasks/{history.acme_task}/files")).json()
    assert [f["path"] for f in files["items"]] == ["data.txt"]
    for path in ("/api/v1/plans/initech-erp", f"/api/v1/executions/{history.initech}",
                 f"/api/v1/tasks/{history.initech_task}/files"):
        assert (await web.get(path)).status_code == 404, path


async def test_an_api_key_reads_the_plans_and_the_document_lists_them(
        web: httpx.AsyncClient, db: Database, history: History) -> None:
    with db.session() as session:
        issued = api_keys.create(session, "it@acme.example", "script")
    key = {"Authorization": f"Bearer {issued.secret}"}
    plans = (await web.get("/api/v1/plans", headers=key)).json()
    assert [p["name"] for p in plans["items"]] == ["acme-files"]
    assert (await web.get("/api/v1/plans/initech-erp", headers=key)).status_code == 404
    paths = set((await web.get("/api/v1/openapi.json")).json()["paths"])
    assert {"/api/v1/plans", "/api/v1/executions/{execution_id}", "/api/v1/accounts"} <= paths


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BACKSTOP_PORTAL_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.slow
async def test_run_now_in_a_browser(browser: Browser, running_portal: RunningPortal,
                                    sqlite_db: Database, bus: Bus, tmp_path: Path) -> None:
    """Plans → a plan → Run now → back on the plan, queued; then down to a task's files.
    ``BACKSTOP_PORTAL_SCREENSHOTS=docs/screenshots`` keeps the plan page as plans.png."""
    history = await record_history(sqlite_db, tmp_path)
    folder = shots(tmp_path)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    url = running_portal.url
    await page.goto(f"{url}/login")
    await page.get_by_label("E-mail address").fill("it@acme.example")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{url}/")
    await page.get_by_role("link", name="Plans", exact=True).click()
    await page.get_by_role("link", name="acme-files").click()
    await page.get_by_role("button", name="Run now").click()
    await expect(page.get_by_role("status")).to_contain_text("is queued")
    [trigger] = await triggers(bus)
    await expect(page).to_have_url(f"{url}/plans/acme-files?queued={trigger.execution_id}")
    await page.screenshot(path=str(folder / "plans.png"), full_page=True)
    await page.locator(f'a[href="/executions/{history.acme}"]').click()
    await page.locator(f'a[href="/tasks/{history.acme_task}"]').click()
    await expect(page.locator("pre.script-output")).to_contain_text(SCRIPT)
    await expect(page.get_by_role("rowheader", name="data.txt")).to_be_visible()
    await page.close()
