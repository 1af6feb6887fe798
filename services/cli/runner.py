"""Starting services: ``backstop up`` (everything, one process) and ``backstop run <service>``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

import typer
import uvloop

from services.cli.settings import option as setting_option
from shared.bus import Bus
from shared.config import (
    BaseServiceSettings,
    EmbeddedSettings,
    EvaluatorSettings,
    IngestSettings,
    NotifierSettings,
    PortalSettings,
)
from shared.db import Database
from shared.logs import configure_logging
from shared.natsd import EmbeddedNats, StoreInUse
from shared.ops import ops_app
from shared.private_files import protect_data
from shared.runtime import Runtime
from shared.secretbox import secret_box
from shared.wakeup import pause
from shared.webserver import serve_until

log = logging.getLogger("backstop")

ServiceMain = Callable[[Any, Runtime], Awaitable[None]]


class Service(StrEnum):
    ingest = "ingest"
    evaluator = "evaluator"
    notifier = "notifier"
    portal = "portal"


def _service(name: Service) -> tuple[type[BaseServiceSettings], ServiceMain]:
    # Imported lazily: `backstop run ingest` should not load the notifier's dependencies.
    if name is Service.ingest:
        from services.ingest.service import run as ingest

        return IngestSettings, ingest
    if name is Service.evaluator:
        from services.evaluator.service import run as evaluator

        return EvaluatorSettings, evaluator
    if name is Service.portal:
        from services.portal.service import run as portal

        return PortalSettings, portal
    from services.notifier.service import run as notifier

    return NotifierSettings, notifier


def up(
    data_dir: Path = setting_option(EmbeddedSettings, "data_dir"),
    ingest_port: int = setting_option(EmbeddedSettings, "ingest_port"),
    portal_port: int = setting_option(EmbeddedSettings, "portal_port"),
) -> None:
    """Run every service in one process: embedded NATS, SQLite and an e-mail outbox by default."""
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if ingest_port is not None:
        overrides["ingest_port"] = ingest_port
    if portal_port is not None:
        overrides["portal_port"] = portal_port
    settings = EmbeddedSettings(**overrides)
    configure_logging(settings.log_format, settings.log_level)
    mains = [_service(s)[1] for s in Service]
    try:
        uvloop.run(serve(settings, mains, embedded=True))
    except StoreInUse as exc:
        log.error("%s", exc)
        raise typer.Exit(1) from None


def run(service: Service = typer.Argument(..., help="Which service to run.")) -> None:
    """Run one service (as Kubernetes does), with /healthz, /readyz and /metrics on the ops port."""
    settings_cls, main = _service(service)
    settings = settings_cls()
    configure_logging(settings.log_format, settings.log_level)
    uvloop.run(serve(settings, [main], embedded=False))


async def serve(
    settings: Any, mains: list[ServiceMain], *, embedded: bool, stop: asyncio.Event | None = None
) -> None:
    """Run ``mains`` until SIGINT/SIGTERM, or until ``stop`` is set when one is given."""
    outbox = settings.outbox() if isinstance(settings, NotifierSettings) else None
    protect_data(Path(settings.data_dir), outbox, create=embedded)
    nats = None
    if embedded and not settings.nats_url:
        nats = EmbeddedNats(Path(settings.data_dir) / "nats", port=0)
        # Started (and restarted) from this, the main thread: the parent-death signal is bound
        # to the thread that started the server.
        settings.nats_url = nats.start()
        log.info("embedded nats-server at %s", nats.address)
    db = Database(settings.sqlalchemy_url())
    try:
        if embedded:
            await asyncio.to_thread(db.upgrade, partial(secret_box, settings))
        bus = Bus(settings.nats_access(), name="backstop")
        await bus.connect()
        runtime = Runtime(bus=bus, db=db)
        if stop is None:
            _stop_on_signals(runtime.stop)
        else:
            runtime.stop = stop
        tasks = [main(settings, runtime) for main in mains]
        if settings.ops_port:
            tasks.append(_serve_ops(settings, runtime))
        if nats is not None:
            tasks.append(nats.supervise(runtime.stop))
        if embedded:
            tasks.append(_announce_when_ready(settings, runtime))
        log.info("backstop running: %s", ", ".join(m.__module__.split(".")[1] for m in mains))
        await _until_stopped(runtime, tasks)
        await bus.close()
    finally:
        db.dispose()
        if nats is not None:
            # Last: the services above have stopped and drained their connection.
            await asyncio.to_thread(nats.stop)
    log.info("backstop stopped")


async def _until_stopped(runtime: Runtime, tasks: list[Awaitable[None]]) -> None:
    """Run the services; if one crashes, stop the others instead of limping on."""
    running = [asyncio.ensure_future(t) for t in tasks]
    await asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)
    runtime.stop.set()
    results = await asyncio.gather(*running, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


async def _serve_ops(settings: BaseServiceSettings, runtime: Runtime) -> None:
    await serve_until(ops_app(runtime), settings.ops_host, settings.ops_port, runtime.stop,
                      settings.http_limits(), settings.access_log)


async def _announce_when_ready(settings: EmbeddedSettings, runtime: Runtime) -> None:
    """Tell the operator where everything is, once it all answers."""
    listening = [(settings.ingest_host, settings.ingest_port)]
    if settings.portal_port:
        listening.append((settings.portal_host, settings.portal_port))
    if settings.ops_port:
        listening.append((settings.ops_host, settings.ops_port))
    while not await pause(runtime.stop, 0.1):
        if all((await runtime.ready()).values()) and all(
            [await _accepts(host, port) for host, port in listening]
        ):
            log.info("backstop ready: %s", _addresses(settings))
            return


def _addresses(settings: EmbeddedSettings) -> str:
    where = [f"ingest API http://{settings.ingest_host}:{settings.ingest_port}"]
    if settings.portal_port:
        where.append(f"portal http://{settings.portal_host}:{settings.portal_port}")
    if settings.ops_port:
        where.append(f"ops http://{settings.ops_host}:{settings.ops_port} "
                     "(/metrics /healthz /readyz /docs)")
    if settings.smtp_host:
        where.append(f"e-mail via SMTP {settings.smtp_host}:{settings.smtp_port}")
    else:
        where.append(f"outbox {settings.outbox()}")
    return ", ".join(where)


async def _accepts(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1" if host in ("0.0.0.0", "") else host, port)
    except OSError:
        return False
    writer.close()
    return True
