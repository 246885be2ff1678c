"""Prometheus metrics at `/metrics` (scope `metrics:read`; docs/operations.md).

Counted as they happen, in this process: requests by method, route template and status, with
a latency histogram; background job runs and errors. Computed at scrape time with a few cheap
queries: open referrals by route (and how many are overdue), the oldest death without a
screening, the webhook backlog, failures and disabled endpoints, the change feed's horizon lag,
and the database pool in use. No label ever holds patient data: routes are templates
(`/v1/deaths/{death_id}`), never paths.

Several workers (`lfd serve --workers N`): each process counts its own requests, so the
counters are kept in prometheus-client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is
set (`lfd serve` sets it to a fresh directory when it starts more than one worker), and a
scrape of any worker sums every worker's."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select, text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.deps import MetricsReader
from app.auth.routing import AuthFirstRoute
from app.db import Database, DatabaseDep
from app.errors import Forbidden, Unauthorized, problem_responses
from app.kit.enums import OPEN_REFERRAL_STATUSES
from app.models import Death, Referral, Screening, WebhookDelivery, WebhookEndpoint
from app.models.base import utcnow
from app.replica.reads import Reads
from app.telemetry import LATENCY, REGISTRY, REQUESTS
from app.webhooks.schemas import DeliveryStatus

UNMATCHED = "<unmatched>"
# A client can send any method name: anything else is counted as OTHER, so that no caller can
# grow the number of series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CONTENT_TYPE = CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts each HTTP request under its route template once routing has found it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(time.perf_counter() - started)


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


async def scrape_gauges(database: Database) -> list[Metric]:
    """The gauges computed now, from the database and the pool."""
    now = utcnow()
    open_statuses = [status.value for status in OPEN_REFERRAL_STATUSES]
    referrals = _gauge("lfd_referrals_open", "Open referrals by route.", ["route"])
    overdue = _gauge("lfd_referrals_overdue", "Open referrals past their due date.", ["route"])
    deliveries = _gauge(
        "lfd_webhook_deliveries", "Webhook deliveries not delivered, by status.", ["status"]
    )
    async with database.snapshot() as session:
        rows = await session.execute(
            select(
                Referral.route,
                func.count(),
                func.count().filter(Referral.due_at < now),
            )
            .where(Referral.status.in_(open_statuses))
            .group_by(Referral.route)
        )
        for route, count, late in rows:
            referrals.add_metric([route], count)
            overdue.add_metric([route], late)
        oldest = await session.scalar(
            select(func.min(Death.died_at)).where(
                ~select(Screening.id).where(Screening.death_id == Death.id).exists()
            )
        )
        by_status = dict(
            (
                await session.execute(
                    select(WebhookDelivery.status, func.count())
                    .where(WebhookDelivery.status != DeliveryStatus.delivered.value)
                    .group_by(WebhookDelivery.status)
                )
            ).all()
        )
        oldest_pending = await session.scalar(
            select(func.min(WebhookDelivery.created_at)).where(
                WebhookDelivery.status.in_(
                    [DeliveryStatus.pending.value, DeliveryStatus.failed.value]
                )
            )
        )
        disabled = await session.scalar(
            select(func.count()).select_from(WebhookEndpoint).where(~WebhookEndpoint.enabled)
        )
        horizon_lag = 0.0
        if database.dialect == "postgresql":
            # The change feed waits for the oldest transaction still running (app.events.feed).
            lag = await session.scalar(
                text(
                    "SELECT coalesce(extract(epoch FROM now() - min(xact_start)), 0)"
                    " FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
                    " AND pid <> pg_backend_pid()"
                )
            )
            horizon_lag = float(lag or 0)
    for status in DeliveryStatus:
        if status is not DeliveryStatus.delivered:
            deliveries.add_metric([status.value], by_status.get(status.value, 0))
    unscreened = _gauge(
        "lfd_oldest_unscreened_death_age_seconds",
        "Age of the oldest death with no screening (0: none).",
    )
    unscreened.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
    backlog_age = _gauge(
        "lfd_webhook_oldest_undelivered_age_seconds",
        "Age of the oldest pending or retrying webhook delivery (0: none).",
    )
    backlog_age.add_metric([], (now - oldest_pending).total_seconds() if oldest_pending else 0.0)
    endpoints = _gauge(
        "lfd_webhook_endpoints_disabled", "Webhook endpoints disabled (dead or turned off)."
    )
    endpoints.add_metric([], disabled or 0)
    horizon = _gauge(
        "lfd_feed_horizon_lag_seconds",
        "How long the oldest running transaction has held the change feed's horizon back.",
    )
    horizon.add_metric([], horizon_lag)
    return [
        referrals,
        overdue,
        unscreened,
        deliveries,
        backlog_age,
        endpoints,
        horizon,
        *pool_gauges(database),
    ]


def pool_gauges(database: Database) -> list[Metric]:
    pool: Any = database.engine.pool
    gauges: list[Metric] = []
    for name, method, documentation in (
        ("lfd_db_pool_checked_out", "checkedout", "Connections in use."),
        ("lfd_db_pool_size", "size", "Connections the pool keeps."),
        ("lfd_db_pool_overflow", "overflow", "Connections beyond the pool's size."),
    ):
        if hasattr(pool, method):
            gauge = _gauge(name, f"{documentation} (this process)")
            gauge.add_metric([], float(getattr(pool, method)()))
            gauges.append(gauge)
    return gauges


class _Fixed:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


def replica_gauges(reads: Reads) -> list[Metric]:
    """The read replica as this process last measured it (app.replica); nothing without one.
    A scrape measures it afresh when the last check is older than the check interval."""
    if not reads.configured:
        return []
    status = reads.monitor.last
    in_use = _gauge(
        "lfd_read_replica_in_use",
        "1 while the reports and the change feed read from the read replica (this process).",
    )
    in_use.add_metric([], 1.0 if status is not None and status.usable else 0.0)
    gauges: list[Metric] = [in_use]
    if status is not None and status.lag_seconds is not None:
        lag = _gauge(
            "lfd_read_replica_lag_seconds", "How old the read replica's data may be, at most."
        )
        lag.add_metric([], status.lag_seconds)
        gauges.append(lag)
    if status is not None and status.lag_bytes is not None:
        behind = _gauge("lfd_read_replica_lag_bytes", "WAL the read replica has still to replay.")
        behind.add_metric([], float(status.lag_bytes))
        gauges.append(behind)
    return gauges


async def render(database: Database, reads: Reads | None = None) -> bytes:
    """The exposition text: this process's counters (every worker's in multiprocess mode)
    and the scrape-time gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        counted: Any = registry
    else:
        counted = REGISTRY
    gauges = await scrape_gauges(database)
    if reads is not None:
        await reads.monitor.current()
        gauges.extend(replica_gauges(reads))
    return generate_latest(counted) + generate_latest(_FixedRegistry(gauges))


class _FixedRegistry(CollectorRegistry):
    def __init__(self, metrics: list[Metric]) -> None:
        super().__init__(auto_describe=False)
        self.register(_Fixed(metrics))


router = APIRouter(route_class=AuthFirstRoute, tags=["operations"])


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}},
        **problem_responses(Unauthorized, Forbidden),
    },
)
async def metrics(principal: MetricsReader, database: DatabaseDep, request: Request) -> Response:
    """Prometheus metrics (text exposition format): requests by route template and status
    with latency histograms, the database pool, open and overdue referrals by route, the
    oldest death without a screening, the webhook backlog and disabled endpoints, the change
    feed's horizon lag, the read replica's lag, background job runs and errors. No patient data.
    docs/operations.md lists every metric and the scrape configuration.

    Scope: `metrics:read`."""
    return Response(await render(database, request.app.state.reads), media_type=CONTENT_TYPE)
