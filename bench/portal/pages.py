"""``python -m bench.portal.pages``: the portal's pages at the issue's size, as served.

Seeds what ``bench.portal.queries`` seeds (one reseller, 1,000 accounts, 5,000 jobs with 30 days
of runs and day cells, one job with 10,000 runs), adds a reseller user, and measures:

- **server time**: the whole request through the portal app in process (session cookie check,
  user lookup, queries, template rendering), no network: the overview's first page (50 jobs
  with strips and counts) and the job page of the 10,000-run job (its first page of runs and
  the charts' last 100);
- **full page load** in headless chromium (Debian's, through Playwright) against the app under
  uvicorn: the navigation timing's responseEnd and loadEventEnd (HTML, CSS, script).

Targets from the issue: overview p95 ≤ 150 ms, job page p95 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

from bench.portal.queries import seed
from services.portal import users
from services.portal.app import create_app
from services.portal.users import Role
from shared.config import PortalSettings
from shared.db import Database
from shared.natsd import free_port
from shared.webserver import serve_until

EMAIL, PASSWORD = "staff@bench.example", "bench password 1"
TARGETS_MS = {"overview": 150.0, "job page (10,000 runs)": 100.0}
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(kind: str, name: str, times: list[float]) -> None:
    target = TARGETS_MS.get(name)
    p95 = percentile(times, 0.95)
    verdict = "" if target is None or kind != "server" else (
        f"  target p95 ≤ {target:.0f} ms {'✓' if p95 <= target else '✗'}")
    print(f"{kind:12} {name:26} p50 {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms  "
          f"max {max(times):7.1f} ms{verdict}")


async def log_in(client: httpx.AsyncClient) -> None:
    form = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    answer = await client.post("/login", data={"email": EMAIL, "password": PASSWORD,
                                               "csrf_token": token.group(1)})
    assert answer.status_code == 303, answer.text


async def timed(call: Callable[[], Awaitable[httpx.Response]], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = await call()
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.status_code
    return times


async def bench(rounds: int, loads: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        db.upgrade()
        started = time.perf_counter()
        reseller, big = seed(db, random.Random(14))
        with db.session() as session:
            users.add(session, EMAIL, Role.reseller, PASSWORD, reseller=reseller)
        print(f"seeded 5,000 jobs, 160,000 runs in {time.perf_counter() - started:.0f} s (SQLite)")
        settings = PortalSettings(data_dir=Path(tmp), portal_session_secret="bench" * 8)
        app = create_app(settings, db, None)
        pages = {"overview": "/", "job page (10,000 runs)": f"/jobs/{big}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            await log_in(client)
            for name, path in pages.items():
                def get(path: str = path) -> Awaitable[httpx.Response]:
                    return client.get(path)
                await timed(get, 3)  # warm caches
                report("server", name, await timed(get, rounds))
        await browser_loads(app, pages, loads)
        db.dispose()


async def browser_loads(app: object, pages: dict[str, str], loads: int) -> None:
    port, stop = free_port(), asyncio.Event()
    server = asyncio.create_task(serve_until(app, "127.0.0.1", port, stop))
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(100):
                try:
                    await probe.get(f"{base}/login")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                       args=CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.goto(f"{base}/login")
            await page.get_by_label("E-mail address").fill(EMAIL)
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_url(f"{base}/")
            for name, path in pages.items():
                response_end, loaded = [], []
                for _ in range(loads):
                    await page.goto(f"{base}{path}", wait_until="load")
                    timing = await page.evaluate(
                        "(() => { const n = performance.getEntriesByType('navigation')[0];"
                        " return [n.responseEnd - n.startTime, n.loadEventEnd - n.startTime]; })()")
                    response_end.append(timing[0])
                    loaded.append(timing[1])
                report("browser", f"{name}", loaded)
                print(f"{'':12} {'':26} (HTML received: p50 {statistics.median(response_end):.1f}"
                      f" ms; the rest is parsing, CSS, script, layout)")
            await browser.close()
    finally:
        stop.set()
        await server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="Timed server requests per page.")
    parser.add_argument("--loads", type=int, default=15, help="Browser page loads per page.")
    args = parser.parse_args()
    asyncio.run(bench(args.rounds, args.loads))


if __name__ == "__main__":
    main()
