"""Reports over imported history are true (issue 14): a small cohort imported as history, with
its own dates, gives the timeliness figures worked out by hand below; the same cohort exported
(`lfd history export`) and imported into an empty database (`lfd history import`) gives the
same reports."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.auth.scopes import Scope
from app.cli import main
from app.config import Settings, get_settings
from app.db import Database
from app.migrate import upgrade
from tests.conftest import Api, MakeApp, new_client
from tests.factories import idem, screening_body
from tests.history_records import bundle, history_record, sjr_referral

NDJSON = {"Content-Type": "application/x-ndjson"}
BASE = datetime(2014, 5, 1, 9, tzinfo=UTC)  # May 2014: no other test has deaths then
AS_OF = re.compile(rb"As of [0-9T:+-]+")
REPORTS = ("timeliness", "care-quality", "lfd-dashboard", "themes")


async def run(api: Api, body: bytes) -> dict[str, Any]:
    response = await api.post("/v1/history/imports", content=body, headers=NDJSON)
    assert response.status_code == 202, response.text
    for _ in range(3000):
        job: dict[str, Any] = (await api.get(response.headers["Location"])).json()
        if job["status"] != "queued" and job["status"] != "running":
            return job
        await asyncio.sleep(0.01)
    raise AssertionError("the import did not finish")


def cohort(site: str) -> list[dict[str, Any]]:
    """Six deaths in May 2014 at one site, as the timeliness test's live cohort
    (tests/test_reports_timeliness.py), but imported with their own dates:

    | death | screened after | referrals (created after screening) | review after referral |
    |---|---|---|---|
    | D1 General Surgery, unexpected | 12 h | SJR 0 days, M&M 3 days (open) | SJR 10 days |
    | D2 unexpected | 24 h | SJR 1 day | SJR 20 days |
    | D3 unexpected | 48 h | SJR 2 days | SJR 60 days |
    | D4 unexpected | 96 h | SJR 4 days (open, due 1 July 2014) | - |
    | D5 expected | 24 h | none | - |
    | D6 unexpected, SJR overridden | 24 h | none | - |
    """
    place = {"site": site}
    records = []
    plan = [(12, 0, 10), (24, 1, 20), (48, 2, 60), (96, 4, None)]
    for index, (hours, after_days, review_days) in enumerate(plan):
        died = BASE + timedelta(days=index)
        screened = died + timedelta(hours=hours)
        created = screened + timedelta(days=after_days)
        submitted = created + timedelta(days=review_days) if review_days is not None else None
        referral = sjr_referral(created, submitted, due=datetime(2014, 7, 1, 9, tzinfo=UTC))
        specialty = "General Surgery" if index == 0 else "General Medicine"
        record = history_record(
            died,
            screened_after=timedelta(hours=hours),
            death={**place, "specialty_at_death": specialty, "admitting_specialty": specialty},
            screening={"death_expected": False},
            referrals=[referral],
        )
        if index == 0:
            mm_created = screened + timedelta(days=3)
            record["referrals"].append(
                {
                    "reference": "MM1",
                    "route": "mm",
                    "reasons": ["specialty_mm"],
                    "status": "ready",
                    "created_at": mm_created.isoformat(),
                    "due_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                }
            )
        records.append(record)
    records.append(history_record(BASE + timedelta(days=4), death=place))
    d6 = BASE + timedelta(days=5)
    records.append(
        history_record(
            d6,
            death=place,
            screening={
                "death_expected": False,
                "overrides": [
                    {
                        "route": "sjr",
                        "reason": "Reviewed at the specialty meeting instead.",
                        "recorded_at": (d6 + timedelta(hours=24)).isoformat(),
                    }
                ],
            },
        )
    )
    return records


def rows(report: dict[str, Any], key: str) -> list[dict[str, Any]]:
    (table,) = [t for t in report["tables"] if t["key"] == key]
    found: list[dict[str, Any]] = table["rows"]
    return found


def interval(name: str, route: str, count: int, median: float | None, p90: float | None):
    return {"interval": name, "route": route, "count": count, "median_days": median} | {
        "p90_days": p90
    }


async def test_timeliness_over_imported_history_is_worked_by_hand(api: Api) -> None:
    site = f"History site {uuid.uuid4().hex[:10]}"
    job = await run(api, bundle(cohort(site)))
    assert (job["status"], job["created"]) == ("completed", 6), job
    response = await api.get("/v1/reports/timeliness", params={"period": "2014-05", "site": site})
    assert response.status_code == 200, response.text
    report = response.json()
    assert rows(report, "intervals") == [
        # 12, 24, 24, 24, 48, 96 hours: median 24 h; rank 1 + 5 x 0.9 = 5.5: 72 h.
        interval("Death to medical examiner screening", "all routes", 6, 1.0, 3.0),
        # 0, 1, 2, 3, 4 days: median 2; rank 4.6: 3 + 0.6 x 1.
        interval("Screening to referral", "all routes", 5, 2.0, 3.6),
        interval("Screening to referral", "sjr", 4, 1.5, 3.4),
        interval("Screening to referral", "mm", 1, 3.0, 3.0),
        # 10, 20, 60 days, not 12 years: median 20; rank 2.8: 20 + 0.8 x 40.
        interval("Referral to completed review", "all routes", 3, 20.0, 52.0),
        interval("Referral to completed review", "sjr", 3, 20.0, 52.0),
    ]
    # D4's SJR was due on 1 July 2014 and is still open; D1's M&M is due in 30 days' time.
    assert rows(report, "overdue") == [
        {"route": "all routes", "open": 2, "overdue": 1, "overdue_percent": 50.0}
        | {"oldest_due": "2014-07-01"},
        {"route": "sjr", "open": 1, "overdue": 1, "overdue_percent": 100.0}
        | {"oldest_due": "2014-07-01"},
        {"route": "mm", "open": 1, "overdue": 0, "overdue_percent": 0.0, "oldest_due": None},
    ]
    # Six screened; four referred (D5 needed nothing, D6's SJR declined in writing): 66.7%.
    assert rows(report, "referral_rate")[0] == {
        "route": "all routes",
        "screened_deaths": 6,
        "referred_deaths": 4,
        "referral_rate": 66.7,
        "overridden_deaths": 1,
    }
    assert rows(report, "override_criteria") == [
        {"route": "sjr", "criterion": "unexpected_death", "deaths": 1}
    ]


async def reports(api: Api, site: str) -> dict[str, Any]:
    found = {}
    for name in REPORTS:
        response = await api.get(f"/v1/reports/{name}", params={"period": "2014-05", "site": site})
        assert response.status_code == 200, (name, response.text)
        # The one thing that may differ: the moment "as of now" was read.
        found[name] = orjson.loads(AS_OF.sub(b"As of (now)", response.content))
        found[name].pop("generated_at")
    return found


@pytest.mark.parametrize(
    "scratch_url",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres_only)],
    indirect=True,
)
async def test_export_then_import_into_an_empty_database_gives_the_same_reports(
    api: Api,
    app_factory: MakeApp,
    base_settings: Settings,
    database_url: str,
    scratch_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = f"Round trip {uuid.uuid4().hex[:10]}"
    records = cohort(site)
    # A finding on D1's SJR, so that themes come out and go back in.
    records[0]["findings"] = [
        {
            "reference": "F1",
            "referral": "R1",
            "kind": "learning_point",
            "theme": {"code": "round_trip_escalation", "name": "Escalation (round trip)"},
            "description": "Early warning scores were acted on.",
            "recorded_at": (BASE + timedelta(days=20)).isoformat(),
        }
    ]
    assert (await run(api, bundle(records)))["created"] == 6
    # And a death live intake recorded: the export holds everything, not only what came in.
    live = screening_body(died_at=BASE + timedelta(days=10), death={"site": site})
    assert (await api.post("/v1/screenings", json=live, headers=idem())).status_code == 201
    before = await reports(api, site)

    exported = tmp_path / "export.jsonl"
    monkeypatch.setenv("LFD_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        code = await asyncio.to_thread(
            main,
            [
                "history",
                "export",
                "--from",
                "2014-05-01",
                "--to",
                "2014-05-31",
                "-o",
                str(exported),
            ],
        )
        assert code == 0
        await asyncio.to_thread(upgrade, scratch_url)
        monkeypatch.setenv("LFD_DATABASE_URL", scratch_url)
        get_settings.cache_clear()
        assert await asyncio.to_thread(main, ["history", "import", str(exported)]) == 0
    finally:
        get_settings.cache_clear()
    lines = exported.read_bytes().splitlines()
    assert sum(site.encode() in line for line in lines) == 7

    _, http = await app_factory(database_url=scratch_url)
    key, client_id = await new_client(
        Database(base_settings.model_copy(update={"database_url": scratch_url})), [Scope.admin]
    )
    after = await reports(Api(http, key, client_id), site)
    assert after == before
