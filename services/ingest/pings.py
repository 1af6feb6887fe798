"""The Healthchecks.io-compatible ping API, so borgmatic, runitor and cron ``curl`` lines work.

URL forms (GET, HEAD and POST all count):

- ``/ping/<ping-key>[/start|/fail|/log|/<exit-status>]`` reports on the account's ``default``
  job (the key plays the role of a Healthchecks check UUID);
- ``/ping/<ping-key>/<slug>[/start|/fail|/log|/<exit-status>]`` reports on the job named
  ``slug`` (lower case, as Healthchecks requires); ``?create=1`` creates it on first ping.

``start``, ``fail``, ``log`` and numbers therefore cannot be used as slugs. Answers are
Healthchecks' own plain-text ones: ``OK`` (200), ``Created`` (201), ``not found`` (404),
``invalid url format`` / ``invalid uuid format`` (400).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from services.ingest.auth import Caller, PingKeyResolver
from services.ingest.errors import PingBadRequest, PingNotFound
from services.ingest.excerpts import body_excerpt
from services.ingest.failed_auth import client_address
from services.ingest.jobs import Jobs, check_slug
from services.ingest.publish import Publisher
from services.ingest.ratelimit import RateLimiter
from services.ingest.routing import RequestRoute
from services.ingest.runs import run_event_id
from shared.events import Event, RunLogged, RunReported, utcnow

DEFAULT_JOB = "default"
ACTIONS = ("start", "fail", "log")
# What the client sends in User-Agent becomes the run's client name, as sent (borgmatic 2.1.10
# sends "borgmatic", runitor "runitor/v1.4.1 (linux-amd64; +https://bdd.fi/x/runitor)").
MAX_CLIENT_NAME = 100

Action = Literal["success", "start", "fail", "log"]


@dataclass(frozen=True)
class Ping:
    """One parsed ping: which job, what happened, and what came with it."""

    job: str
    action: Action
    exit_status: int | None = None
    run_id: str | None = None
    body: bytes = b""
    user_agent: str | None = None


def parse_action(part: str) -> tuple[Action, int | None]:
    """``start``/``fail``/``log`` or an exit status 0-255 (0 success, else failure)."""
    if part in ACTIONS:
        return part, None  # type: ignore[return-value]
    if part.isascii() and part.isdigit():
        digits = part.lstrip("0") or "0"
        if len(digits) > 3 or int(digits) > 255:  # int() of thousands of digits would raise
            raise PingBadRequest("invalid url format")
        status = int(digits)
        return ("success" if status == 0 else "fail"), status
    raise PingNotFound()


def parse_rid(rid: str | None) -> str | None:
    if rid is None:
        return None
    try:
        return str(uuid.UUID(rid))
    except ValueError as exc:
        raise PingBadRequest("invalid uuid format") from exc


def is_action(part: str) -> bool:
    return part in ACTIONS or (part.isascii() and part.isdigit())


def ping_event(caller: Caller, ping: Ping, body_limit: int) -> Event:
    now = utcnow()
    excerpt = body_excerpt(ping.body, body_limit)
    if ping.action == "log":
        return RunLogged(occurred_at=now, tenant=caller.tenant, job=ping.job,
                         run_id=ping.run_id, log_excerpt=excerpt, source="ping")
    status = {"success": "success", "start": "started", "fail": "failure"}[ping.action]
    finished: datetime | None = None if status == "started" else now
    return RunReported(
        event_id=run_event_id(caller.tenant, ping.job, ping.run_id, status), occurred_at=now,
        tenant=caller.tenant, job=ping.job, status=status,
        run_id=ping.run_id, started_at=now if status == "started" else None,
        finished_at=finished, exit_code=ping.exit_status, log_excerpt=excerpt,
        client_name=_client_name(ping.user_agent), source="ping",
    )


def _client_name(user_agent: str | None) -> str | None:
    # NUL cannot be stored (PostgreSQL text); HTTP servers refuse it in headers, but this
    # function must not depend on which server runs it.
    return (user_agent or "").replace("\x00", "")[:MAX_CLIENT_NAME] or None


class PingIntake:
    def __init__(self, keys: PingKeyResolver, jobs: Jobs, limiter: RateLimiter,
                 publisher: Publisher, body_limit: int) -> None:
        self._keys = keys
        self._jobs = jobs
        self._limiter = limiter
        self._publisher = publisher
        self.body_limit = body_limit
        # Healthchecks' headers, encoded once.
        self._headers = [(name.lower().encode(), value.encode()) for name, value in (
            ("Ping-Body-Limit", str(body_limit)),
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Expose-Headers", "Ping-Body-Limit"),
        )]

    async def handle(self, request: Request, key: str, slug: str | None, action_part: str | None,
                     rid: str | None, create: str | None) -> PlainTextResponse:
        action, exit_status = parse_action(action_part) if action_part else ("success", None)
        job = check_slug(slug) if slug is not None else DEFAULT_JOB
        caller = await self._keys.resolve(key, client_address(request))
        if caller is None:
            raise PingNotFound()
        self._limiter.check(caller.key)
        run_id = parse_rid(rid)  # after the key, as Healthchecks: an unknown key is a 404 first
        created = await self._job_for(caller, job, by_slug=slug is not None, create=create == "1")
        ping = Ping(job=job, action=action, exit_status=exit_status, run_id=run_id,
                    body=await request.body() if request.method == "POST" else b"",
                    user_agent=request.headers.get("user-agent"))
        await self._publisher.store(ping_event(caller, ping, self.body_limit))
        return self._answer("Created" if created else "OK", 201 if created else 200)

    async def _job_for(self, caller: Caller, job: str, *, by_slug: bool, create: bool) -> bool:
        """Makes sure the job exists; True when this ping created it via ``?create=1``."""
        if not by_slug:
            await self._jobs.ensure(caller.tenant, job)
            return False
        if await self._jobs.exists(caller.tenant, job):
            return False
        if not create:
            raise PingNotFound()
        await self._jobs.ensure(caller.tenant, job)
        return True

    def _answer(self, text: str, status: int) -> PlainTextResponse:
        answer = PlainTextResponse(text, status_code=status)
        answer.raw_headers += self._headers
        return answer


METHODS = ["GET", "HEAD", "POST"]

# The ping endpoints read their few parameters themselves (see routing.py); the OpenAPI
# document still describes them.
_PARAMETERS: dict[str, dict[str, Any]] = {
    "key": {"name": "key", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "The account's ping key."},
    "part": {"name": "part", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "`start`, `fail`, `log`, an exit status 0-255, or a job slug."},
    "slug": {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "The job's name (lower case)."},
    "action": {"name": "action", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "`start`, `fail`, `log` or an exit status 0-255."},
    "rid": {"name": "rid", "in": "query", "required": False,
            "schema": {"type": "string", "format": "uuid"},
            "description": "Run id pairing a start with its completion."},
    "create": {"name": "create", "in": "query", "required": False,
               "schema": {"type": "string", "enum": ["0", "1"]},
               "description": "`1` creates the job named by the slug on first ping."},
}


def _documented(*names: str) -> dict[str, Any]:
    return {"parameters": [_PARAMETERS[name] for name in names]}


def _query(request: Request) -> Mapping[str, str]:
    # Most pings have no query string; parsing an empty one is not free.
    return request.query_params if request.scope["query_string"] else {}


def add_ping_routes(app: FastAPI, intake: PingIntake) -> None:
    """Registers the ping routes on ``app`` itself: an included router is one more level of
    route matching on every ping."""
    async def ping(request: Request) -> PlainTextResponse:
        """Success for the account's `default` job."""
        key, query = request.path_params["key"], _query(request)
        return await intake.handle(request, key, None, None, query.get("rid"), None)

    async def ping_action_or_slug(request: Request) -> PlainTextResponse:
        """`start`, `fail`, `log` or an exit status for the `default` job, or success for the
        job named by the slug."""
        params, query = request.path_params, _query(request)
        key, part = params["key"], params["part"]
        if is_action(part):
            return await intake.handle(request, key, None, part, query.get("rid"), None)
        return await intake.handle(request, key, part, None, query.get("rid"), query.get("create"))

    async def ping_slug_action(request: Request) -> PlainTextResponse:
        """`start`, `fail`, `log` or an exit status for the job named by the slug."""
        params, query = request.path_params, _query(request)
        return await intake.handle(request, params["key"], params["slug"], params["action"],
                                   query.get("rid"), query.get("create"))

    routes: list[tuple[str, Callable[..., Awaitable[PlainTextResponse]], dict[str, Any] | None]] = [
        ("/ping/{key}", ping, _documented("key", "rid")),
        ("/ping/{key}/", ping, None),
        ("/ping/{key}/{part}", ping_action_or_slug, _documented("key", "part", "rid", "create")),
        ("/ping/{key}/{slug}/{action}", ping_slug_action,
         _documented("key", "slug", "action", "rid", "create")),
    ]
    for path, endpoint, doc in routes:
        # One route per method: each gets its own operation id in the OpenAPI document.
        for method in METHODS:
            app.router.add_api_route(
                path, endpoint, methods=[method], include_in_schema=doc is not None,
                openapi_extra=doc, tags=["pings"], response_class=PlainTextResponse,
                operation_id=f"{endpoint.__name__}_{method.lower()}" if doc else None,
                route_class_override=RequestRoute,
            )
