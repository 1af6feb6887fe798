"""The pages' content: filters and paging of the overview, the job page's runs and charts, the
read-only rule, and the helpers that draw (charts, strips, colours, units)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient

from services.portal.access import editor
from services.portal.branding import check_colour, contrast, parse_hosts, readable_on
from services.portal.charts import Point, line_chart
from services.portal.queries.days import DayCell
from services.portal.rendering import day_strip, duration, size
from services.portal.users import Role, Viewer
from shared.db import Database
from tests.portal.site import Tenants, add_user, csrf_token, log_in, portal_app, seed_job


def job_names(html: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/jobs/\w+">([^<]+)</a>', html)


def test_overview_filters_and_pages(client: TestClient, sqlite_db: Database,
                                    three_tenants: Tenants) -> None:
    t = three_tenants
    seed_job(sqlite_db, t.acme, "broken", runs=3, failures=2)
    for n in range(60):
        seed_job(sqlite_db, t.globex, f"job-{n:02d}", runs=1)
    seed_job(sqlite_db, t.other, "fresh", runs=0)
    add_user(sqlite_db, "op@example.com", Role.operator)
    log_in(client, "op@example.com")
    first = client.get("/").text
    assert job_names(first)[0] == "broken"
    assert len(job_names(first)) == 50
    assert "62 jobs, worst first" in first and "Next page" in first
    second = client.get("/?offset=50").text
    assert len(job_names(second)) == 12 and "Previous page" in second
    assert job_names(client.get("/?state=never+run").text) == ["fresh"]
    assert job_names(client.get(f"/?customer={t.acme.customer.id}").text) == ["broken"]
    assert job_names(client.get("/?q=JOB-5").text) == [f"job-5{n}" for n in range(10)]
    account = client.get(f"/accounts/{t.acme.account.id}").text
    assert "Account fileserver" in account and job_names(account) == ["broken"]


def test_job_page_pages_its_runs_newest_first(client: TestClient, sqlite_db: Database,
                                              three_tenants: Tenants) -> None:
    job = seed_job(sqlite_db, three_tenants.acme, "nightly", runs=60, failures=1,
                   every=timedelta(hours=6))
    add_user(sqlite_db, "op@example.com", Role.operator)
    log_in(client, "op@example.com")
    page = client.get(f"/jobs/{job}").text
    assert "60 runs kept, newest first" in page
    finished = re.findall(r'data-label="Finished">([^<]+)<', page)
    assert len(finished) == 25 and finished == sorted(finished, reverse=True)
    assert "borg: disk full" in page  # the failed run's log excerpt
    # The charts draw the last 100 runs, so all 60 here (the page lists 25).
    assert page.count('role="img"') == 2 and "Duration of the last runs: 60 runs from" in page
    older = re.search(r'href="(/jobs/\w+\?before=[^"#]+)#runs">Older runs', page)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).text
    more = re.findall(r'data-label="Finished">([^<]+)<', second)
    assert len(more) == 25 and max(more) < min(finished)
    assert "Newest runs" in second


def test_a_job_without_runs_says_so(client: TestClient, sqlite_db: Database,
                                    three_tenants: Tenants) -> None:
    job = seed_job(sqlite_db, three_tenants.acme, "new", runs=0)
    add_user(sqlite_db, "op@example.com", Role.operator)
    log_in(client, "op@example.com")
    page = client.get(f"/jobs/{job}").text
    assert "No runs recorded yet." in page and "no runs with this figure yet" in page
    assert "never run" in page


def test_read_only_users_may_look_but_not_change(sqlite_db: Database, tmp_path: Path,
                                                 three_tenants: Tenants) -> None:
    app = portal_app(sqlite_db, tmp_path)

    @app.post("/test-change")
    async def change(viewer: Viewer = Depends(editor)) -> dict[str, str]:
        return {"changed_by": viewer.email}

    add_user(sqlite_db, "look@example.com", Role.operator, read_only=True)
    add_user(sqlite_db, "edit@example.com", Role.operator)
    for email, status in (("look@example.com", 403), ("edit@example.com", 200)):
        with TestClient(app) as client:
            log_in(client, email)
            token = csrf_token(client.get("/").text)
            answer = client.post("/test-change", data={"csrf_token": token})
            assert answer.status_code == status, answer.text
            if status == 403:
                assert "may look but not change" in answer.text


def test_charts_are_svg_with_a_text_alternative() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    points = [Point(start + timedelta(days=i), 600 + i * 10, failed=i == 3) for i in range(5)]
    chart = str(line_chart(points, title="Duration <of> runs", unit=duration))
    assert chart.count("<circle") == 5 and chart.count('class="mark-failed"') == 1
    assert "<title id=" in chart and "Duration &lt;of&gt; runs" in chart
    assert "lowest 10 min 00 s, highest 10 min 40 s; 1 failed" in chart
    assert "no runs" in str(line_chart([], title="Sizes", unit=size))


def test_strip_cells_carry_their_day_and_outcome_as_text() -> None:
    cells = [DayCell(date(2026, 11, 29), failures=1), DayCell(date(2026, 11, 30))]
    strip = str(day_strip(cells))
    assert 'aria-label="Last 2 days, oldest first"' in strip
    assert '<span class="visually-hidden">2026-11-29: failure</span>' in strip
    assert 'class="cell cell-none"' in strip


@pytest.mark.parametrize(("background", "text"), [
    ("#ffd400", "#111111"), ("#1d4f7a", "#ffffff"), ("#ffffff", "#111111"),
    ("#000000", "#ffffff")])
def test_header_text_is_readable_on_any_brand_colour(background: str, text: str) -> None:
    assert readable_on(background) == text
    assert contrast(background, text) >= 4.5


def test_brand_settings_are_checked() -> None:
    assert check_colour("#0A5C36") == "#0a5c36"
    with pytest.raises(ValueError, match="#rrggbb"):
        check_colour("red; background: url(x)")
    assert parse_hosts(" a.example=My MSP , B.example=r1") == {"a.example": "My MSP",
                                                              "b.example": "r1"}
    with pytest.raises(ValueError, match="host=reseller"):
        parse_hosts("a.example")


def test_units() -> None:
    assert size(1_234_000_000) == "1.2 GB" and size(999) == "999 B" and size(None) == "—"
    assert duration(59) == "59 s" and duration(3723) == "1 h 02 min"
    assert duration(200_000) == "2 d 7 h"
