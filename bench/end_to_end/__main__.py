"""``python -m bench.end_to_end``: the whole system under load, measured where alerts land.

Phase 1 runs the system — by default one ``backstop run`` process per service around a
nats-server (``--up``: everything in one ``backstop up`` process), SQLite unless
``BACKSTOP_DATABASE_URL`` says otherwise — uploads runs at a fixed rate with a share of
failures, and measures for every failure the time from the ingest's 202 to the webhook
receiver getting the alert (grouping off). Each failure uses a fresh job, so each one fires
exactly one alert. E-mails go to a local SMTP server (aiosmtpd) at the same time. From the
notifier's own records it also splits that time into evaluator → notifier and the notifier's
own accept → sent.

Phase 2 measures e-mail throughput alone: a batch of alerts planned in a fresh database and
delivered through the real SMTP path (aiosmtplib → aiosmtpd).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.end_to_end.receivers import SmtpServer, WebhookReceiver
from services.notifier import admin
from services.notifier.channels.targets import TargetPolicy
from shared.db import Database
from shared.natsd import EmbeddedNats, free_port
from shared.secretbox import SecretBox, new_key
from shared.tenancy import create_account

ROOT = Path(__file__).resolve().parents[2]
TARGET_P99_MS = 250.0
# The receivers listen on this machine: allowed as an on-premises ticket system would be.
LOCAL_NETWORKS = "127.0.0.0/8"
SECRET_KEY = new_key()


def _db_url(data_dir: Path) -> str:
    return os.environ.get("BACKSTOP_DATABASE_URL") or \
        f"sqlite:///{(data_dir / 'backstop.db').resolve()}"


def _setup(data_dir: Path, accounts: int, hook_url: str) -> list[tuple[str, str]]:
    db = Database(_db_url(data_dir))
    db.upgrade()
    issued = []
    with db.session() as session:
        for n in range(accounts):
            new = create_account(session, reseller="bench-msp", customer=f"customer-{n % 5}",
                                 name=f"account-{n}", contacts=[f"ops{n}@customer.example"])
            issued.append((new.account.id, new.token))
        admin.add_webhook(session, reseller="bench-msp", customer=None, url=hook_url,
                          fmt="backstop", keys=SecretBox([SECRET_KEY]),
                          targets=TargetPolicy.parse(LOCAL_NETWORKS))
    db.dispose()
    return issued


@contextlib.contextmanager
def _system(data_dir: Path, port: int, smtp_port: int, split: bool) -> Iterator[str]:
    """``backstop up`` (one process), or with ``split`` one ``backstop run`` process per
    service around a shared nats-server, as in production."""
    env = {
        **os.environ, "BACKSTOP_DATA_DIR": str(data_dir), "BACKSTOP_INGEST_PORT": str(port),
        "BACKSTOP_SMTP_HOST": "127.0.0.1", "BACKSTOP_SMTP_PORT": str(smtp_port),
        "BACKSTOP_LOG_LEVEL": "WARNING", "BACKSTOP_REPEAT_INTERVAL_SECONDS": "0",
        "BACKSTOP_GROUP_WINDOW_SECONDS": "0", "BACKSTOP_DATABASE_URL": _db_url(data_dir),
        "BACKSTOP_SECRET_KEYS": SECRET_KEY, "BACKSTOP_WEBHOOK_ALLOW_NETWORKS": LOCAL_NETWORKS,
        "BACKSTOP_PORTAL_PORT": str(free_port()),
    }
    cli = [sys.executable, "-m", "services.cli"]
    nats = None
    if split:
        nats = EmbeddedNats(data_dir / "nats")
        env.update(BACKSTOP_NATS_URL=nats.start())
        commands = [[*cli, "run", s] for s in ("ingest", "evaluator", "notifier")]
    else:
        commands = [[*cli, "up"]]
    # Each process answers /readyz on its own ops port.
    ops_ports = [free_port() for _ in commands]
    processes = [subprocess.Popen(c, cwd=ROOT, env={**env, "BACKSTOP_OPS_PORT": str(ops)})
                 for c, ops in zip(commands, ops_ports, strict=True)]
    base = f"http://127.0.0.1:{port}"

    def ready(ops: int) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://127.0.0.1:{ops}/readyz", timeout=1).status_code == 200
        return False

    try:
        deadline = time.monotonic() + 60
        while True:
            if any(p.poll() is not None for p in processes):
                raise RuntimeError("a backstop process exited early")
            if all(ready(ops) for ops in ops_ports):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("backstop did not become ready")
            time.sleep(0.2)
        time.sleep(1 if split else 0)  # the other services subscribe
        yield base
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if nats is not None:
            nats.stop()


def _load(base: str, accounts: list[tuple[str, str]], rate: float, seconds: float,
          failure_every: int, threads: int = 32) -> tuple[dict[tuple[str, str], float], int, int]:
    """Paced uploads from plain threads with keep-alive connections (an event loop juggling
    thousands of requests would note a 202 late, when it gets round to it). Returns the 202
    times of the failures (keyed by account and job; jobs are numbered in upload order), the
    count of 202s and of errors."""
    accepted: dict[tuple[str, str], float] = {}
    counts = {"ok": 0, "error": 0}
    lock = threading.Lock()
    host, port = base.removeprefix("http://").split(":")
    total = int(rate * seconds)
    start = time.perf_counter() + 0.5

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        for i in range(k, total, threads):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            account_id, token = accounts[i % len(accounts)]
            failure = i % failure_every == 0
            job = f"job-{i}" if failure else f"steady-{i % 7}"
            body = json.dumps({
                "job": job, "status": "failure" if failure else "success", "run_id": f"run-{i}",
                "finished_at": datetime.now(UTC).isoformat(), "exit_code": 1 if failure else 0,
                "message": "disk full" if failure else None,
            })
            try:
                conn.request("POST", "/v1/runs", body, {
                    "content-type": "application/json", "authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
                at = time.perf_counter()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                status, at = 0, 0.0
            with lock:
                if status == 202:
                    counts["ok"] += 1
                    if failure:
                        accepted[(account_id, job)] = at
                else:
                    counts["error"] += 1
        conn.close()

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return accepted, counts["ok"], counts["error"]


def _stages(data_dir: Path, first_measured: int) -> dict[str, float]:
    """Where the time went, from the notifier's own records (one clock: the server's), for the
    alerts after the warm-up."""
    from sqlmodel import and_, select

    from services.notifier.tables import Notification, NotifyTransition

    db = Database(_db_url(data_dir))
    upstream, notifier = [], []
    with db.session() as session:
        rows = session.exec(
            select(NotifyTransition, Notification)
            .join(Notification, and_(Notification.fingerprint == NotifyTransition.fingerprint,
                                     Notification.sequence == NotifyTransition.sequence))
            .where(Notification.channel == "webhook", Notification.status == "sent")
        ).all()
    db.dispose()
    for transition, row in rows:
        if int(str(transition.alert["job"]).split("-")[1]) < first_measured:
            continue
        occurred = datetime.fromisoformat(transition.alert["occurred_at"].replace("Z", "+00:00"))
        upstream.append((transition.received_at - occurred).total_seconds() * 1000)
        assert row.sent_at is not None
        notifier.append((row.sent_at - transition.received_at).total_seconds() * 1000)
    if not rows:
        return {}
    return {
        "evaluator_to_notifier_p50_ms": statistics.median(upstream),
        "evaluator_to_notifier_p99_ms": _percentile(upstream, 0.99),
        "notifier_accept_to_sent_p50_ms": statistics.median(notifier),
        "notifier_accept_to_sent_p99_ms": _percentile(notifier, 0.99),
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def end_to_end(rate: float, seconds: float, failure_every: int, accounts: int,
               split: bool, warmup: float, dump: Path | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, WebhookReceiver() as hook, SmtpServer() as smtp:
        data_dir = Path(tmp)
        issued = _setup(data_dir, accounts, hook.url)
        with _system(data_dir, free_port(), smtp.port, split) as base:
            everything, ok, errors = _load(base, issued, rate, warmup + seconds, failure_every)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not everything.keys() <= hook.arrivals.keys():
                time.sleep(0.2)
            time.sleep(1)  # let trailing e-mails land
        # The first seconds after start-up are measured apart: caches, connections and code
        # paths are cold there, which is a start-up cost, not the steady state.
        first_measured = int(rate * warmup)
        stages = _stages(data_dir, first_measured)
        accepted = {k: t for k, t in everything.items()
                    if int(k[1].split("-")[1]) >= first_measured}
        cold = [(hook.arrivals[k] - t) * 1000 for k, t in everything.items()
                if k not in accepted and k in hook.arrivals]
        latencies = [(hook.arrivals[k] - t) * 1000 for k, t in accepted.items()
                     if k in hook.arrivals]
        if dump is not None:  # when each alert was accepted, and how long it took: stalls show
            first = min(everything.values(), default=0.0)
            dump.write_text(json.dumps(sorted(
                (round(t - first, 3), round((hook.arrivals[k] - t) * 1000, 1))
                for k, t in everything.items() if k in hook.arrivals)))
        mails = smtp.sink.times
        span = (mails[-1] - mails[0]) if len(mails) > 1 else 0.0
        return {
            "uploads_202": ok, "upload_errors": errors, "alerts_expected": len(accepted),
            "alerts_received": len(latencies), "webhooks_total": hook.total,
            "p50_ms": statistics.median(latencies) if latencies else float("nan"),
            "p90_ms": _percentile(latencies, 0.90) if latencies else float("nan"),
            "p99_ms": _percentile(latencies, 0.99) if latencies else float("nan"),
            "max_ms": max(latencies) if latencies else float("nan"),
            "warmup_alerts": len(cold), "warmup_lost": len(everything) - len(accepted) - len(cold),
            "warmup_max_ms": max(cold) if cold else float("nan"),
            "mails": len(mails), "mails_per_s_offered": len(mails) / span if span else 0.0,
            **stages,
        }


async def _notifier_alone(alerts_per_s: float, seconds: float, data_dir: Path,
                          hook: WebhookReceiver) -> dict[str, float]:
    """AlertChanged published on the bus → webhook received, with only the notifier running:
    the notifier's share of the end-to-end time, whatever the upstream services do."""
    from services.notifier.service import run
    from shared.bus import Bus
    from shared.config import NotifierSettings
    from shared.events import AlertChanged
    from shared.runtime import Runtime

    nats = EmbeddedNats(data_dir / "nats")
    url = await asyncio.to_thread(nats.start)
    db = Database(f"sqlite:///{(data_dir / 'alone.db').resolve()}")
    db.upgrade()
    with db.session() as session:
        account = create_account(session, reseller="alone-msp", customer="c", name="a",
                                 contacts=["ops@customer.example"]).account
        admin.add_webhook(session, reseller="alone-msp", customer=None, url=hook.url,
                          fmt="backstop", keys=SecretBox([SECRET_KEY]),
                          targets=TargetPolicy.parse(LOCAL_NETWORKS))
    bus = Bus(url)
    await bus.connect()
    runtime = Runtime(bus=bus, db=db)
    settings = NotifierSettings(data_dir=data_dir, repeat_interval_seconds=0,
                                secret_keys=SECRET_KEY, webhook_allow_networks=LOCAL_NETWORKS)
    service = asyncio.create_task(run(settings, runtime))
    await asyncio.sleep(1)
    published: dict[tuple[str, str], float] = {}
    start = time.perf_counter()
    for n in range(int(alerts_per_s * seconds)):
        delay = start + n / alerts_per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = datetime.now(UTC)
        await bus.publish(AlertChanged(
            tenant=account.tenant(), fingerprint=f"{n:032x}", kind="failed_run",
            state="firing", severity="error", sequence=1, job=f"alone-{n}",
            summary=f"Backup job alone-{n} failed", first_seen=now, last_changed=now,
        ))
        published[(account.id, f"alone-{n}")] = time.perf_counter()  # stored by JetStream
    for _ in range(150):  # at most 15 s for stragglers
        if published.keys() <= hook.arrivals.keys():
            break
        await asyncio.sleep(0.1)
    runtime.stop.set()
    await service
    await bus.close()
    db.dispose()
    await asyncio.to_thread(nats.stop)
    latencies = [(hook.arrivals[k] - t) * 1000 for k, t in published.items()
                 if k in hook.arrivals]
    return {
        "alerts": len(published), "received": len(latencies),
        "p50_ms": statistics.median(latencies), "p90_ms": _percentile(latencies, 0.9),
        "p99_ms": _percentile(latencies, 0.99), "max_ms": max(latencies),
    }


def notifier_alone(alerts_per_s: float, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, WebhookReceiver() as hook:
        return asyncio.run(_notifier_alone(alerts_per_s, seconds, Path(tmp), hook))


async def _mail_throughput(count: int, data_dir: Path, smtp_port: int,
                           smtp: SmtpServer) -> dict[str, float]:
    from services.notifier.service import build
    from shared.bus import Bus
    from shared.config import NotifierSettings
    from shared.events import AlertChanged
    from shared.runtime import Runtime

    settings = NotifierSettings(data_dir=data_dir, smtp_host="127.0.0.1", smtp_port=smtp_port,
                                repeat_interval_seconds=0)
    db = Database(settings.sqlalchemy_url())
    db.upgrade()
    with db.session() as session:
        account = create_account(session, reseller="mail-msp", customer="c", name="a",
                                 contacts=["ops@customer.example"]).account
    notifier = build(settings, Runtime(bus=Bus("nats://127.0.0.1:4222"), db=db))  # bus unused
    notifier.options.inline = False  # accept everything first, then time planning + sending
    now = datetime.now(UTC)
    for n in range(count):
        await notifier.handle(AlertChanged(
            tenant=account.tenant(), fingerprint=f"{n:032x}", kind="failed_run",
            state="firing", severity="error", sequence=1, job=f"job-{n}",
            summary=f"Backup job job-{n} failed", first_seen=now, last_changed=now,
        ))
    start = time.perf_counter()
    while len(smtp.sink.times) < count and time.perf_counter() - start < 120:
        planned = await notifier.plan_due()
        await notifier.drain()
        if not planned and not await notifier.dispatcher.deliver_due():
            await asyncio.sleep(0.01)
    took = time.perf_counter() - start
    await notifier.close()
    db.dispose()
    return {"mails": len(smtp.sink.times), "seconds": took,
            "mails_per_s": len(smtp.sink.times) / took}


def mail_throughput(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, SmtpServer() as smtp:
        return asyncio.run(_mail_throughput(count, Path(tmp), smtp.port, smtp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200, help="uploads per second")
    parser.add_argument("--seconds", type=float, default=30, help="measured load duration")
    parser.add_argument("--warmup", type=float, default=3,
                        help="seconds of load before the measured part (reported apart)")
    parser.add_argument("--failure-every", type=int, default=10,
                        help="every n-th upload fails (10 = 10%%)")
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--mails", type=int, default=1000, help="phase 2 e-mail count")
    parser.add_argument("--up", action="store_true",
                        help="one `backstop up` process instead of one process per service")
    parser.add_argument("--dump", type=Path,
                        help="write [accepted at (s), latency (ms)] of every alert to this file")
    parser.add_argument("--end-to-end-only", action="store_true",
                        help="skip the notifier-alone and e-mail throughput phases")
    args = parser.parse_args()

    result = end_to_end(args.rate, args.seconds, args.failure_every, args.accounts,
                        split=not args.up, warmup=args.warmup, dump=args.dump)
    mode = "backstop up" if args.up else "ingest/evaluator/notifier processes"
    print(f"end to end ({mode}) at {args.rate:.0f} uploads/s for {args.seconds:.0f}s "
          f"after {args.warmup:.0f}s of warm-up ({100 / args.failure_every:.0f}% failures):")
    for key, value in result.items():
        print(f"  {key:22} {value:.1f}" if isinstance(value, float) else f"  {key:22} {value}")
    ok = (result["p99_ms"] <= TARGET_P99_MS and result["warmup_lost"] == 0
          and result["alerts_received"] == result["alerts_expected"])
    if args.end_to_end_only:
        print(f"target p99 <= {TARGET_P99_MS:.0f} ms: {'MET' if ok else 'NOT MET'}")
        sys.exit(0 if ok else 1)
    alone = notifier_alone(args.rate / args.failure_every, args.seconds)
    print(f"notifier alone at {args.rate / args.failure_every:.0f} alerts/s "
          "(published AlertChanged → webhook received):")
    for key, value in alone.items():
        print(f"  {key:22} {value:.1f}")
    mail = mail_throughput(args.mails)
    print("e-mail throughput (notifier → aiosmtpd):")
    for key, value in mail.items():
        print(f"  {key:22} {value:.1f}")
    print(f"target p99 <= {TARGET_P99_MS:.0f} ms end to end, every alert delivered: "
          f"{'MET' if ok else 'NOT MET'}; notifier alone p99 {alone['p99_ms']:.0f} ms: "
          f"{'MET' if alone['p99_ms'] <= TARGET_P99_MS else 'NOT MET'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
