"""/metrics (issue 18; docs/operations.md): Prometheus text, scope metrics:read, requests by
route template and status after traffic, the scrape-time gauges, job runs and errors."""

from __future__ import annotations

import re
import uuid

from prometheus_client.parser import text_string_to_metric_families

from app.auth.scopes import Scope
from app.worker import Worker
from tests.factories import idem, screening_body


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_after_traffic(api, make_api):
    reader = await make_api(Scope.metrics_read)
    before = samples((await reader.get("/metrics")).text)
    body = screening_body(death={"learning_disability": True})
    created = await api.post("/v1/screenings", json=body, headers=idem())
    assert created.status_code == 201, created.text
    death_id = created.json()["death_id"]
    for _ in range(3):
        assert (await api.get(f"/v1/deaths/{death_id}")).status_code == 200
    assert (await api.get(f"/v1/deaths/{uuid.uuid4()}")).status_code == 404

    answer = await reader.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    after = samples(text)
    route = "/v1/deaths/{death_id}"
    ok = dict(method="GET", route=route, status="200")
    assert (
        value(after, "lfd_http_requests_total", **ok)
        - value(before, "lfd_http_requests_total", **ok)
        == 3
    )
    missing = dict(method="GET", route=route, status="404")
    assert value(after, "lfd_http_requests_total", **missing) >= 1
    assert value(after, "lfd_http_request_duration_seconds_count", method="GET", route=route) >= 4
    # Templates only: no id (and so nothing about a patient) in a label.
    assert death_id not in text
    # The screening raised a LeDeR referral, open and not yet due.
    assert value(after, "lfd_referrals_open", route="leder") >= 1
    assert ("lfd_referrals_overdue", (("route", "leder"),)) in after
    for name in (
        "lfd_oldest_unscreened_death_age_seconds",
        "lfd_webhook_endpoints_disabled",
        "lfd_webhook_oldest_undelivered_age_seconds",
        "lfd_feed_horizon_lag_seconds",
        "lfd_db_pool_checked_out",
    ):
        assert (name, ()) in after, name
    for status in ("pending", "failed", "dead"):
        assert ("lfd_webhook_deliveries", (("status", status),)) in after


async def test_metrics_need_their_scope(make_api, http):
    assert (await http.get("/metrics")).status_code == 401
    other = await make_api(Scope.deaths_read)
    answer = await other.get("/metrics")
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"


async def test_unmatched_paths_share_one_label(make_api, http):
    await http.get(f"/no/such/{uuid.uuid4()}")
    await http.request("X-MADE-UP", "/healthz")
    reader = await make_api(Scope.metrics_read)
    text = (await reader.get("/metrics")).text
    assert 'route="<unmatched>"' in text
    assert not re.search(r'route="/no/such', text)
    assert "X-MADE-UP" not in text and 'method="OTHER"' in text


async def test_job_runs_and_errors_are_counted(database, make_api):
    async def works(_database) -> int:
        return 1

    async def fails(_database) -> int:
        raise RuntimeError("boom")

    reader = await make_api(Scope.metrics_read)
    before = samples((await reader.get("/metrics")).text)
    await Worker(database, 60, jobs=(("test_ok", works), ("test_bad", fails))).run_once()
    after = samples((await reader.get("/metrics")).text)
    for job, runs, errors in (("test_ok", 1, 0), ("test_bad", 1, 1)):
        assert (
            value(after, "lfd_job_runs_total", job=job)
            - value(before, "lfd_job_runs_total", job=job)
            == runs
        )
        assert (
            value(after, "lfd_job_errors_total", job=job)
            - value(before, "lfd_job_errors_total", job=job)
            == errors
        )


async def test_metrics_can_be_turned_off(app_factory, database):
    from tests.conftest import new_client

    key, _ = await new_client(database, [Scope.admin])
    _, http = await app_factory(metrics_enabled=False)
    answer = await http.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 404


def test_json_logs_leave_out_uvicorn_colour_fields():
    """uvicorn puts an ANSI-coloured copy of its message in `color_message`."""
    import json
    import logging

    from app.logging import JsonFormatter

    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started", (), None)
    record.color_message = "\x1b[32mStarted\x1b[0m"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "Started"
    assert "color_message" not in entry
