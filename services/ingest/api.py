"""The ingest HTTP API: every upload is answered only after JetStream stored its event."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request, Response
from pydantic import BaseModel
from starlette.routing import BaseRoute

from services.ingest.auth import Caller, PingKeyResolver, TokenResolver
from services.ingest.bodies import body_doc, parse_body, publish_schemas
from services.ingest.errors import install_error_mapping
from services.ingest.failed_auth import FailedAuthLimiter
from services.ingest.jobs import Jobs
from services.ingest.limits import BodyLimitMiddleware
from services.ingest.metrics import MetricsMiddleware
from services.ingest.pings import PingIntake, add_ping_routes
from services.ingest.publish import Publisher
from services.ingest.ratelimit import RateLimiter
from services.ingest.routing import RequestRoute
from services.ingest.runs import RunIntake
from services.ingest.schedules import Schedules
from services.ingest.schemas import (
    Accepted,
    BatchResult,
    HeartbeatReport,
    JobName,
    RunBatch,
    RunReport,
    ScheduleRequest,
    UsageReport,
)
from services.ingest.usage import heartbeat_event, usage_event
from shared.config import IngestSettings
from shared.runtime import Runtime

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, unknown or revoked token."},
    413: {"description": "Request body too large."},
    422: {"description": "Invalid body: the details name each bad field."},
    429: {"description": "Rate limit exceeded; see Retry-After."},
    503: {"description": "Event store unavailable; retry (uploads are idempotent by run id)."},
}


def answer_json(body: BaseModel, status: int) -> Response:
    """The answer, serialised by pydantic-core directly: FastAPI's response_model round trip
    (validate, dump, json.dumps) costs more than the rest of a small request. The declared
    response_model still documents it."""
    return Response(body.model_dump_json(), status_code=status, media_type="application/json")


def create_app(settings: IngestSettings, runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="Backstop ingest",
        version="1",
        description="Backup clients report runs, schedules, usage and heartbeats here.",
        # The public port serves the client API only: this document, /docs and the other
        # operations endpoints are on the ops port (shared/ops.py).
        docs_url=None, redoc_url=None, openapi_url=None,
        # Backstop's metrics are Prometheus'. FastAPI's OpenTelemetry support would otherwise
        # look for a configured provider on every request (about 4 µs, found none).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_mapping(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.ingest_max_body_bytes)
    app.add_middleware(MetricsMiddleware)

    ttl = settings.ingest_token_cache_seconds
    # One count of failures per client address, whether it guesses tokens or ping keys.
    failures = FailedAuthLimiter(settings.ingest_auth_failure_limit,
                                 settings.ingest_auth_failure_burst)
    tokens = TokenResolver(runtime.db, ttl=ttl, failures=failures)
    limiter = RateLimiter(settings.ingest_rate_limit, settings.ingest_rate_burst)
    publisher = Publisher(runtime.bus, settings.ingest_publish_timeout)
    jobs = Jobs(runtime.db)
    runs = RunIntake(jobs, publisher, settings.ingest_log_excerpt_bytes)
    schedules = Schedules(runtime.db, jobs, publisher)

    # One flat dependency (not a chain of them): FastAPI's dependency solving is per request.
    async def caller(request: Request) -> Caller:
        """A valid token within its rate limit: what every JSON endpoint needs."""
        who = await tokens.authenticate(request)
        limiter.check(who.key)
        return who

    async def post_run(request: Request) -> Response:
        """Report a run, or its start (`status: started`); the same `run_id` completes it."""
        # The hottest endpoint reads its token and body itself (see bodies.py).
        who = await caller(request)
        report = await parse_body(request, RunReport)
        event_id, duplicate = await runs.store(who.tenant, report)
        return answer_json(Accepted(event_id=event_id, duplicate=duplicate), 202)

    app.router.add_api_route(
        "/v1/runs", post_run, methods=["POST"], status_code=202, response_model=Accepted,
        tags=["runs"], responses=ERRORS, openapi_extra=body_doc(RunReport),
        route_class_override=RequestRoute,
    )

    @app.post("/v1/runs:batch", response_model=BatchResult, tags=["runs"],
              responses=ERRORS)
    async def post_runs_batch(batch: RunBatch, who: Caller = Depends(caller)) -> BatchResult:
        """Up to 500 reports at once (e.g. kept while offline), with a result per item."""
        return await runs.store_batch(who.tenant, batch)

    @app.put("/v1/jobs/{job}/schedule", response_model=Accepted, tags=["jobs"],
             responses=ERRORS)
    async def put_schedule(
        schedule: ScheduleRequest,
        job: Annotated[JobName, Path()],
        who: Caller = Depends(caller),
    ) -> Response:
        """Set the job's schedule; uploading the same schedule again changes nothing."""
        return answer_json(await schedules.upload(who.tenant, job, schedule), 200)

    @app.post("/v1/usage", status_code=202, response_model=Accepted, tags=["usage"],
              responses=ERRORS)
    async def post_usage(report: UsageReport, who: Caller = Depends(caller)) -> Response:
        """Storage used, optionally with a quota (else the account's) and a per-job split."""
        return answer_json(await publisher.accept(usage_event(who, report)), 202)

    @app.post("/v1/heartbeat", status_code=202, response_model=Accepted, tags=["clients"],
              responses=ERRORS)
    async def post_heartbeat(report: HeartbeatReport, who: Caller = Depends(caller)) -> Response:
        """The client is alive: its name, version, host name and OS."""
        return answer_json(await publisher.accept(heartbeat_event(who, report)), 202)

    keys = PingKeyResolver(runtime.db, ttl=ttl, failures=failures)
    pings = PingIntake(keys, jobs, limiter, publisher, settings.ingest_ping_body_limit)
    add_ping_routes(app, pings)
    publish_schemas(app, RunReport)
    # Starlette tries routes in list order; trying the hot ones first spares a dozen failed
    # matches on nearly every request.
    app.router.routes.sort(key=_hot_first)
    return app


def _hot_first(route: BaseRoute) -> int:
    path, methods = getattr(route, "path", ""), getattr(route, "methods", None) or set()
    if path == "/v1/runs":
        return 0
    if path.startswith("/ping/"):
        return 1 if "GET" in methods else 2
    return 3
