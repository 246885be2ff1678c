"""OpenTelemetry tracing (docs/operations.md): off unless LFD_OTEL_EXPORTER_OTLP_ENDPOINT is
set, then spans of each request (FastAPI), each SQL statement (SQLAlchemy: the statement's
text with its placeholders, never the values bound to them) and each outgoing HTTP call
(httpx: webhooks, JWKS fetches) are sent over OTLP/HTTP.

A request span's URL attributes are cut to the path: a query string may hold an NHS number
(`/v1/deaths?nhs_number=...`), which must not leave the service in a trace."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from app.config import Settings
from app.db import Database

URL_ATTRIBUTES = ("http.target", "http.url", "url.full", "url.query")


def _scrub(span: Any, scope: dict[str, Any]) -> None:
    """Server request hook: the span's URL attributes without the query string."""
    if span is None or not span.is_recording():
        return
    path = scope.get("path", "")
    span.set_attribute("http.target", path)
    span.set_attribute("url.path", path)
    span.set_attribute("url.query", "")
    server = scope.get("server") or ("", None)
    host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    span.set_attribute("http.url", f"{scope.get('scheme', 'http')}://{host}{path}")
    span.set_attribute("url.full", f"{scope.get('scheme', 'http')}://{host}{path}")


def configure_tracing(
    app: FastAPI, settings: Settings, database: Database, exporter: Any = None
) -> Any:
    """Instrument the app, its engine and httpx; returns the tracer provider (None when
    tracing is off). `exporter` replaces the OTLP exporter (tests)."""
    if exporter is None and not settings.otel_exporter_otlp_endpoint:
        return None
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name})
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/")  # type: ignore[union-attr]
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        server_request_hook=_scrub,
        excluded_urls="healthz,readyz,metrics",
        exclude_spans=["receive", "send"],
    )
    # The instrumentation declares SQLAlchemy < 2.1; it works with 2.1's engine events, which
    # tests/test_tracing.py checks.
    SQLAlchemyInstrumentor().instrument(
        engine=database.engine.sync_engine,
        tracer_provider=provider,
        enable_commenter=False,
        skip_dep_check=True,
    )
    httpx_instrumentor = HTTPXClientInstrumentor()
    if not httpx_instrumentor.is_instrumented_by_opentelemetry:
        httpx_instrumentor.instrument(tracer_provider=provider)
    app.state.tracer_provider = provider
    return provider
