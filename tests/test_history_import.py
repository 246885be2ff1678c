"""History imports over HTTP (issue 14, docs/history.md): a bundle in as a job with its own
dates, idempotent re-import, per-record refusal with pointers, all-or-nothing, the one summary
event per batch and the one audit row, missed referrals."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from app.auth.scopes import Scope
from app.db import Database
from app.models import AuditEvent, Death, OutboxEvent, Referral, Review, Screening
from tests.conftest import Api, MakeApi
from tests.history_records import bundle, history_record, sjr_form, sjr_referral, utc

NDJSON = {"Content-Type": "application/x-ndjson"}


async def run(api: Api, records: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    """Post a bundle and poll the job to its end."""
    response = await api.post(
        "/v1/history/imports", content=bundle(records), headers=NDJSON, params=params
    )
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    for _ in range(2000):
        job = (await api.get(location)).json()
        if job["status"] in {"completed", "refused", "failed"}:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError("the import did not finish")


def cohort() -> list[dict[str, Any]]:
    died = utc(2017, 5, 3, 14, 0)
    return [
        history_record(
            died,
            screening={"death_expected": False},
            referrals=[sjr_referral(died + timedelta(days=2), died + timedelta(days=40))],
            findings=[
                {
                    "reference": "F1",
                    "referral": "R1",
                    "kind": "problem_in_care",
                    "theme": {"code": "hist_monitoring", "name": "Monitoring (history test)"},
                    "description": "Observations were not escalated.",
                    "recorded_at": (died + timedelta(days=41)).isoformat(),
                }
            ],
        ),
        # Unexpected, never referred: a missed SJR.
        history_record(utc(2017, 6, 10, 9, 30), screening={"death_expected": False}),
    ]


async def test_a_bundle_goes_in_with_its_own_dates(api: Api, database: Database) -> None:
    records = cohort()
    job = await run(api, records)
    assert job["status"] == "completed", job
    assert (job["created"], job["updated"], job["unchanged"], job["refused"]) == (2, 0, 0, 0)
    reference = records[0]["death"]["source_reference"]
    async with database.transaction() as session:
        death = await session.scalar(select(Death).where(Death.source_reference == reference))
        assert death is not None
        assert death.status == "closed"
        screening = await session.scalar(select(Screening).where(Screening.death_id == death.id))
        assert screening is not None and screening.screened_at == utc(2017, 5, 4, 14, 0)
        referral = await session.scalar(select(Referral).where(Referral.death_id == death.id))
        assert referral is not None
        assert referral.created_at == utc(2017, 5, 5, 14, 0)
        assert referral.completed_at == utc(2017, 6, 12, 14, 0)
        assert referral.lease_id is None and referral.status == "completed"
        review = await session.scalar(select(Review).where(Review.death_id == death.id))
        assert review is not None and review.submitted_at == utc(2017, 6, 12, 14, 0)
        assert review.overall_rating == 3 and review.avoidability == 5
        # No stage 2 raised, no referral by today's rules for the second death.
        second = records[1]["death"]["source_reference"]
        count = await session.scalar(
            select(func.count())
            .select_from(Referral)
            .join(Death, Death.id == Referral.death_id)
            .where(Death.source_reference.in_([reference, second]))
        )
        assert count == 1
