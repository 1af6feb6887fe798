"""The portal in a real browser (Debian's chromium, headless, through Playwright): log in, see
the failing job first, drill into it, open its alert, see a new alert appear live, log out.

Set ``BACKSTOP_PORTAL_SCREENSHOTS=docs/screenshots`` to keep the main pages' screenshots there
(the README links them); otherwise they go to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from services.notifier.tables import Notification
from services.portal.users import Role
from shared.bus import Bus
from shared.db import Database
from shared.events import AlertChanged, utcnow
from tests.portal.site import PASSWORD, RunningPortal, Tenants, add_user, seed_alert, seed_job
from tests.support import make_account

pytestmark = pytest.mark.slow


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BACKSTOP_PORTAL_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def landscape(db: Database, t: Tenants) -> dict[str, str]:
    """A consultant's morning: most jobs fine, one failing, one late, one never run."""
    ids = {"failing": seed_job(db, t.acme, "nightly-files", runs=30, failures=2,
                               message="borg: Repository /srv/borg is locked")}
    seed_job(db, t.acme, "db-dump", runs=30, every=timedelta(hours=24))
    seed_job(db, t.globex, "mail-archive", runs=30)
    seed_job(db, t.other, "erp-snapshots", runs=30)
    seed_job(db, t.other, "new-laptop", runs=0)
    for name in ("Contoso", "Fabrikam"):
        issued = make_account(db, reseller="Reseller One", customer=name, name="server")
        seed_job(db, issued, "nightly", runs=30)
    alert = seed_alert(
        db, t.acme, "nightly-files",
        summary="Backup job nightly-files failed: Repository is locked",
        details={"message": "borg: Repository /srv/borg is locked",
                 "log_tail": "Creating archive at /srv/borg::host-2026-11-30\n"
                             "Failed to create/acquire the lock /srv/borg/lock.exclusive\n"
                             "terminating with error status, rc 2"})
    with db.session() as session:
        session.add(Notification(
            key=f"{alert.fingerprint}:1:email:it@acme.example", fingerprint=alert.fingerprint,
            sequence=1, account_id=t.acme.account.id, channel="email",
            target="it@acme.example", status="sent", attempts=1, sent_at=utcnow()))
    ids["alert"] = alert.fingerprint  # what e-mails link to; the job page links the id
    add_user(db, "consultant@msp.example", Role.operator)
    return ids


async def log_in(page: Page, portal: RunningPortal, email: str) -> None:
    await page.goto(f"{portal.url}/")
    await expect(page).to_have_url(f"{portal.url}/login")
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{portal.url}/")


async def test_a_consultant_finds_the_failing_job_and_sees_new_alerts_live(
    browser: Browser, running_portal: RunningPortal, sqlite_db: Database,
    three_tenants: Tenants, bus: Bus, tmp_path: Path,
) -> None:
    ids = landscape(sqlite_db, three_tenants)
    folder = shots(tmp_path)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(f"{running_portal.url}/login")
    await page.screenshot(path=str(folder / "login.png"))
    await log_in(page, running_portal, "consultant@msp.example")

    # Worst first: the failing job heads the table, and the counts say how many are failing.
    first = page.locator("table.jobs tbody tr").first
    await expect(first.locator("th")).to_have_text("nightly-files")
    await expect(first.locator(".state")).to_have_text("failing")
    await expect(page.get_by_role("link", name="failing 1")).to_be_visible()
    cells = first.locator(".strip li")
    await expect(cells).to_have_count(30)
    await expect(first.locator(".strip .cell-failure")).not_to_have_count(0)
    await page.screenshot(path=str(folder / "overview.png"), full_page=True)

    # Filtering narrows the table without JavaScript (a GET form).
    await page.get_by_label("State", exact=True).select_option("never run")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("table.jobs tbody tr")).to_have_count(1)
    await expect(page.locator("table.jobs tbody tr th")).to_have_text("new-laptop")
    await page.goto(f"{running_portal.url}/")

    # Drill into the failing job: its runs with the error, the chart, the thresholds.
    await page.get_by_role("link", name="nightly-files").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("nightly-files")
    await expect(page.locator("table.runs tbody tr").first).to_contain_text(
        "Repository /srv/borg is locked")
    await expect(page.get_by_role("img", name="Duration of the last runs")).to_be_visible()
    await expect(page.get_by_role("rowheader", name="grace_seconds")).to_be_visible()
    await page.locator("table.runs details summary").first.click()
    await expect(page.locator("table.runs details pre").first).to_contain_text(
        "terminating with error status")
    await page.screenshot(path=str(folder / "job.png"), full_page=True)

    # The alert the e-mail links to.
    await page.get_by_role("link", name="Backup job nightly-files failed").click()
    await expect(page).to_have_url(re.compile(r"/alerts/\w+$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Repository is locked")
    await page.screenshot(path=str(folder / "alert.png"), full_page=True)

    # A new alert shows within a second, without reloading.
    await page.goto(f"{running_portal.url}/")
    await page.wait_for_function("document.readyState === 'complete'")
    await page.wait_for_timeout(300)  # the EventSource has connected
    t = three_tenants.globex
    event = AlertChanged(
        tenant=t.account.tenant(), fingerprint="e" * 32, kind="failed_run", state="firing",
        severity="error", sequence=1, job="mail-archive",
        summary="Backup job mail-archive failed: quota exceeded", first_seen=utcnow(),
        last_changed=utcnow())
    live = page.locator("#live")
    await expect(live).to_have_class(re.compile(r"\blive-empty\b"))  # nothing new yet
    sent = time.monotonic()
    await bus.publish(event)
    await expect(live.get_by_role("link", name="Backup job mail-archive failed: quota "
                                                "exceeded")).to_be_visible(timeout=1000)
    assert time.monotonic() - sent < 1.0
    row = page.locator('tr[data-job="mail-archive"]')
    await expect(row.locator(".state")).to_have_text("failing")
    await page.screenshot(path=str(folder / "live.png"))

    # Phone-sized: the same page, stacked, still usable.
    phone = await browser.new_page(viewport={"width": 390, "height": 844})
    await phone.context.add_cookies(
        await page.context.cookies())  # type: ignore[arg-type]
    await phone.goto(f"{running_portal.url}/")
    await expect(phone.locator("table.jobs tbody tr").first).to_contain_text("nightly-files")
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, "the overview scrolls sideways on a phone"
    await phone.screenshot(path=str(folder / "overview-phone.png"), full_page=True)
    await phone.close()

    # Log out: back to the login page, and the pages ask for a login again.
    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(f"{running_portal.url}/login")
    await page.goto(f"{running_portal.url}/jobs/{ids['failing']}")
    await expect(page).to_have_url(f"{running_portal.url}/login?next=/jobs/{ids['failing']}")


async def test_the_keyboard_reaches_everything(
    browser: Browser, running_portal: RunningPortal, sqlite_db: Database,
    three_tenants: Tenants,
) -> None:
    landscape(sqlite_db, three_tenants)
    page = await browser.new_page()
    await page.goto(f"{running_portal.url}/login")
    # The address field has the focus at once; Tab leads to the password, Enter sends.
    assert await page.evaluate("document.activeElement.id") == "email"
    await page.keyboard.type("consultant@msp.example")
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{running_portal.url}/")
    # On every page the first Tab reaches "Skip to content", which jumps past the header.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    # Then the keyboard walks the page; the failing job's link is among the first stops.
    for _ in range(30):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent") == "nightly-files":
            break
    else:
        raise AssertionError("the failing job's link is not reachable by keyboard")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("nightly-files")


async def test_customers_of_a_reseller_see_its_branding_also_at_login(
    browser: Browser, sqlite_db: Database, three_tenants: Tenants, tmp_path: Path,
) -> None:
    from services.notifier.tables import BrandRow
    from services.portal import branding

    reseller = three_tenants.acme.reseller
    with sqlite_db.session() as session:
        session.add(BrandRow(reseller_id=reseller.id, name="One Backup Services"))
        branding.set_colour(session, reseller.id, "#ffd400")
    add_user(sqlite_db, "it@acme.example", Role.customer, reseller="Reseller One",
             customer="Acme")
    portal = RunningPortal(sqlite_db, tmp_path, None,
                           portal_reseller_hosts="localhost=Reseller One")
    await portal.start()
    try:
        page = await browser.new_page()
        # Reached through the reseller's host name: its brand before anyone logs in.
        await page.goto(f"http://localhost:{portal.port}/login")
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Log in to One Backup Services")
        header = page.locator("header.brand")
        assert await header.evaluate("e => getComputedStyle(e).backgroundColor") == \
            "rgb(255, 212, 0)"
        # Yellow needs dark text to be readable.
        assert await header.evaluate("e => getComputedStyle(e).color") == "rgb(17, 17, 17)"
        # Through another name: Backstop's own.
        await page.goto(f"{portal.url}/login")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Log in to Backstop")
        await page.get_by_label("E-mail address").fill("it@acme.example")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in").click()
        await expect(page.locator(".brand-name")).to_have_text("One Backup Services")
    finally:
        await portal.stop()
