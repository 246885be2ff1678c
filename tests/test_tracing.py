"""OpenTelemetry tracing (issue 18; docs/operations.md): off by default; on, a request gives a
server span named by its route template and SQL spans, and no query string (which may hold an
NHS number) reaches any span."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.main import create_app
from app.tracing import configure_tracing
from tests.factories import test_nhs_number


def test_tracing_is_off_by_default(base_settings):
    app = create_app(base_settings)
    assert getattr(app.state, "tracer_provider", None) is None


async def test_spans_name_route_templates_and_carry_no_query(api, app_and_http):
    app, _ = app_and_http
    exporter = InMemorySpanExporter()
    # The app under test was built untraced: trace a fresh one over the same database.
    traced = create_app(app.state.settings)
    configure_tracing(traced, app.state.settings, traced.state.database, exporter=exporter)
    import httpx

    nhs = test_nhs_number()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=traced), base_url="http://testserver"
    ) as client:
        answer = await client.get("/v1/deaths", params={"nhs_number": nhs}, headers=api.headers)
        assert answer.status_code == 200
    await traced.state.database.dispose()
    spans = exporter.get_finished_spans()
    names = [span.name for span in spans]
    assert "GET /v1/deaths" in names
    assert any(span.attributes.get("db.system") for span in spans), names
    for span in spans:
        for key, value in (span.attributes or {}).items():
            assert nhs not in str(value), (span.name, key)
        assert nhs not in span.name
