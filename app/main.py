"""create_app(): routers, middleware, error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app import __version__
from app.actions.io_router import router as action_spreadsheets_router
from app.actions.router import router as actions_router
from app.audit.refusals import install_refusal_audit
from app.audit.router import router as audit_router
from app.auth.cache import AuthCache
from app.auth.oauth.errors import install_oauth_error_handler
from app.auth.oauth.router import router as oauth_router
from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.cases.router import router as cases_router
from app.clients.router import router as clients_router
from app.config import Settings, get_settings
from app.db import Database
from app.deaths.router import router as deaths_router
from app.docs_assets import install_docs
from app.errors import install_error_handlers, set_problem_base
from app.events.router import router as events_router
from app.fhir.outcome import operation_outcome_response
from app.fhir.router import router as fhir_router
from app.findings.router import router as findings_router
from app.health.router import router as health_router
from app.history.router import router as history_router
from app.hl7v2.router import router as hl7v2_router
from app.jobs import BACKGROUND_JOBS
from app.kit.schemas import Problem
from app.logging import configure_logging
from app.metrics import MetricsMiddleware
from app.metrics import router as metrics_router
from app.middleware import RequestContextMiddleware
from app.notifications.router import router as notifications_router
from app.notifications.worklist_router import router as worklist_router
from app.openapi_extras import enrich
from app.organisations.router import router as organisations_router
from app.organisations.shares_router import router as shares_router
from app.programmes.cases_router import router as programme_cases_router
from app.programmes.router import router as programmes_router
from app.ratelimit import AuthThrottle, RateLimiter
from app.referrals.router import router as referrals_router
from app.replica.reads import ReadAfterWriteMiddleware, Reads
from app.reports.programme_router import router as programme_reports_router
from app.reports.router import router as reports_router
from app.reviews.router import referral_review_router
from app.reviews.router import router as reviews_router
from app.screenings.router import router as screenings_router
from app.tracing import configure_tracing
from app.webhooks.router import router as webhooks_router
from app.webhooks.worker import webhook_worker
from app.worker import Worker

DESCRIPTION = """
The system of record for how an NHS trust learns from patients' deaths: medical examiner
screenings, referrals for review (SJR, M&M, LeDeR and the other routes), and everything after.

**Credentials.** Every endpoint except `/healthz`, `/readyz`, the token endpoint and the JWKS
needs an API key (`lfd clients create`, `POST /v1/clients`) or an access token from
`POST /oauth2/token` (OAuth 2.0 client credentials with a signed JWT, RFC 7523), sent as
`Authorization: Bearer <credential>`. Each operation lists the scope it needs; a missing or
invalid credential is a 401, a missing scope a 403. `X-User-Assertion` carries the signed
identity of the user a system acts for (verified; its user and role kept in the audit log);
`X-On-Behalf-Of` names them in free text (kept, marked unverified).

**Errors** are RFC 9457 problem details (`application/problem+json`) with `errors[].pointer`
naming the field; a query parameter the operation does not list is a 400 (a misspelled filter is
never ignored). **Lists** take `limit` (at most 200) and an opaque `cursor`, and return
`items` and `next_cursor`. **Updates** need `If-Match` with the resource's `ETag`.

**Read replica.** A deployment may serve the reports and the change feed from a read replica.
Their responses then say `X-LFD-Read-From: replica` or `primary`; a client's own writes are
always in what it reads next from the same worker, and a write's response carries
`X-LFD-Read-After`, which a read may send back to see that write wherever it lands
(docs/replica.md).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The background loop (app.worker), unless it runs as its own `lfd worker` process.
        if settings.run_worker_in_serve:
            app.state.worker = Worker(
                app.state.database, settings.worker_interval_seconds, BACKGROUND_JOBS
            )
            app.state.worker.start()
            app.state.webhook_worker = webhook_worker(app.state.database)
            app.state.webhook_worker.start()
        try:
            yield
        finally:
            if app.state.worker is not None:
                await app.state.worker.close()
            if app.state.webhook_worker is not None:
                await app.state.webhook_worker.close()
            await app.state.reads.close()
            await app.state.database.dispose()

    app = FastAPI(
        title="Learning from Deaths service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served from packaged assets, no CDN (app.docs_assets).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    set_problem_base(settings.problem_base_uri)
    app.state.database = Database(settings)
    app.state.worker = None
    # Per worker process (app.ratelimit): the bound across the service is times the workers.
    app.state.rate_limiter = RateLimiter(settings)
    app.state.auth_throttle = AuthThrottle(settings)
    app.state.auth_cache = AuthCache(app.state.database, settings.auth_cache_seconds)
    app.state.webhook_worker = None
    # Where the reports and the change feed read (app.replica): a read replica when one is
    # configured, with read-your-writes for the clients that write and read there.
    app.state.reads = Reads(app.state.database, settings)
    render_problem = install_error_handlers(app, {"/fhir/": operation_outcome_response})
    install_refusal_audit(app)
    install_oauth_error_handler(app)
    if app.state.reads.configured:
        app.add_middleware(ReadAfterWriteMiddleware, reads=app.state.reads, reader=replica_reader)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        upload_max_bytes=settings.upload_max_bytes,
        render_problem=render_problem,
        body_read_timeout_seconds=settings.body_read_timeout_seconds,
    )
    if settings.metrics_enabled:
        app.add_middleware(MetricsMiddleware)
        app.include_router(metrics_router)
    configure_tracing(app, settings, app.state.database)
    install_docs(app)
    for router in (
        health_router,
        notifications_router,
        worklist_router,
        hl7v2_router,
        screenings_router,
        deaths_router,
        cases_router,
        shares_router,
        referrals_router,
        referral_review_router,
        reviews_router,
        findings_router,
        action_spreadsheets_router,
        actions_router,
        programmes_router,
        programme_cases_router,
        webhooks_router,
        fhir_router,
        events_router,
        reports_router,
        programme_reports_router,
        audit_router,
        oauth_router,
        clients_router,
        organisations_router,
        history_router,
    ):
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                Problem.model_json_schema()
            )
            app.openapi_schema = enrich(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def replica_reader(state: dict[str, object]) -> str | None:
    """The id of a request's client when it may read from the replica (the reports, the change
    feed): only such a client's writes need marking for read-your-writes (app.replica)."""
    principal = state.get("principal")
    if isinstance(principal, Principal) and (
        principal.has(Scope.reports_read) or principal.has(Scope.events_read)
    ):
        return str(principal.client_id)
    return None


def app_factory() -> FastAPI:
    """Entry point for uvicorn --factory: logging configured once per worker process."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)
