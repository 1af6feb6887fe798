"""The management pages in a real browser (Debian's chromium, headless, through Playwright),
going on from where the consultant's flow (test_browser.py) ends: silence an alert and end the
silence, edit a threshold and see it in force, look at usage and settings — without JavaScript
doing anything but what the forms do.

Screenshots go where test_browser.py puts them (``BACKSTOP_PORTAL_SCREENSHOTS``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from services.evaluator import admin as evaluator
from services.notifier.policy.silences import active_for
from services.portal.users import Role
from shared.db import Database
from shared.events import utcnow
from tests.portal.site import PASSWORD, RunningPortal, Tenants, add_user, seed_alert, seed_job
from tests.portal.support import add_usage

pytestmark = pytest.mark.slow


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BACKSTOP_PORTAL_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def log_in(page: Page, portal: RunningPortal, email: str) -> None:
    await page.goto(f"{portal.url}/login")
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(f"{portal.url}/")


async def test_a_reseller_silences_an_alert_and_edits_a_threshold(
    browser: Browser, running_portal: RunningPortal, sqlite_db: Database,
    three_tenants: Tenants, tmp_path: Path,
) -> None:
    acme = three_tenants.acme
    seed_job(sqlite_db, acme, "nightly-files", runs=10, failures=1)
    seed_alert(sqlite_db, acme, "nightly-files",
               summary="Backup job nightly-files failed: Repository is locked")
    today = utcnow().date()
    for back in range(20):
        add_usage(sqlite_db, acme, today - timedelta(days=19 - back),
                  (400 + back * 20) * 10**9, 1000 * 10**9)
    add_user(sqlite_db, "staff@one.example", Role.reseller, reseller="Reseller One")
    folder = shots(tmp_path)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await log_in(page, running_portal, "staff@one.example")

    # Alerts: silence the firing alert's account for 4 hours, with a reason.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    row = page.locator("table.alerts tbody tr").filter(has_text="Repository is locked")
    await expect(row.locator(".state")).to_have_text("firing")
    await page.screenshot(path=str(folder / "alerts.png"), full_page=True)
    await row.get_by_label("For").select_option("4")
    await row.get_by_label("Reason").fill("swapping the backup disk")
    await row.get_by_role("button", name="Silence").click()
    await expect(page.get_by_role("status")).to_contain_text("Silenced")
    await expect(page.get_by_role("cell", name="swapping the backup disk")).to_be_visible()
    with sqlite_db.session() as session:
        [silence] = active_for(session, acme.account.tenant(), utcnow())
    assert timedelta(hours=3, minutes=59) < silence.ends_at - silence.starts_at <= timedelta(
        hours=4)
    # ... and un-silence it.
    await page.get_by_role("button", name="Un-silence").click()
    await expect(page.get_by_role("status")).to_contain_text("Silence ended")
    with sqlite_db.session() as session:
        assert active_for(session, acme.account.tenant(), utcnow()) == []

    # Quotas: the account's page shows the trend; set the quota threshold to 75 %.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Quotas").click()
    await page.get_by_role("link", name="fileserver").click()
    await expect(page.get_by_role("img", name="Storage of fileserver")).to_be_visible()
    await page.get_by_label("Setting").select_option("quota_percent")
    await page.get_by_label("Value for this account").fill("75")
    await page.get_by_role("button", name="Save", exact=True).first.click()
    await expect(page.get_by_role("status")).to_contain_text("Saved")
    quota_row = page.locator("tr").filter(has=page.get_by_role("rowheader",
                                                                name="quota_percent"))
    await expect(quota_row.locator("td").nth(0)).to_have_text("75.0")
    await expect(quota_row.locator("td").nth(1)).to_have_text("account")
    await page.screenshot(path=str(folder / "thresholds.png"), full_page=True)
    with sqlite_db.session() as session:
        assert evaluator.effective(session, acme.account.id).values["quota_percent"] == (
            75.0, "account")
    # A job's tolerance, from the same page.
    await page.get_by_label("Show").select_option("nightly-files")
    await page.get_by_role("button", name="Show").click()
    await page.get_by_label("Setting").select_option("failures_tolerance")
    await page.get_by_label("Value for job nightly-files").fill("3")
    await page.get_by_role("button", name="Save", exact=True).first.click()
    await expect(page.get_by_role("status")).to_contain_text("Saved")
    with sqlite_db.session() as session:
        assert evaluator.effective(session, acme.account.id, "nightly-files").values[
            "failures_tolerance"] == (3, "job")

    # Usage and settings render for the same user.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    await expect(page.get_by_role("img", name="Storage of Acme per day")).to_be_visible()
    await page.screenshot(path=str(folder / "usage.png"), full_page=True)
    await page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Settings").click()
    await expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
    await page.screenshot(path=str(folder / "settings.png"), full_page=True)
