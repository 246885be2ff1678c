"""The hot paths' referral JSON (app.referrals.rows) is ReferralOut's, byte for byte, for a
referral in every state a reader can see: no lease, a live lease held by the reader or by
another client, an expired lease, overdue or not, open or finished, with and without the
optional fields."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import orjson

from app.models import Referral
from app.referrals.rows import COLUMNS, json_response, of_referral, referral_json
from app.referrals.schemas import referral_out

VIEWER = uuid.uuid4()
OTHER = uuid.uuid4()


def _referrals() -> list[Referral]:
    now = datetime.now(UTC)
    made = []
    states = itertools.product(
        ("ready", "in_progress", "completed", "on_hold"),
        ("none", "mine", "theirs", "expired"),
        (True, False),  # overdue (due in the past)
        (True, False),  # optional fields filled
    )
    for status, lease, late, full in states:
        leased = lease != "none"
        made.append(
            Referral(
                id=uuid.uuid4(),
                death_id=uuid.uuid4(),
                route="sjr",
                stage=1 if full else None,
                reasons=["unexpected_death"],
                status=status,
                status_reason="awaiting notes" if full else None,
                specialty="Cardiology" if full else None,
                site="General" if full else None,
                priority=2,
                due_at=now + timedelta(days=-3 if late else 3, microseconds=0 if full else 7),
                assigned_to="Dr A" if full else None,
                lease_id=uuid.uuid4() if leased else None,
                leased_by={"mine": VIEWER, "theirs": OTHER}.get(lease, OTHER) if leased else None,
                leased_to="Dr B" if leased else None,
                claimed_at=now - timedelta(hours=2) if leased else None,
                lease_expires_at=(
                    now + timedelta(hours=1 if lease != "expired" else -1) if leased else None
                ),
                excluded_reviewer="Dr C" if full else None,
                external_reference="EXT-1" if full else None,
                completed_at=now.replace(microsecond=0) if status == "completed" else None,
                version=3,
                created_at=now - timedelta(days=10),
                updated_at=now - timedelta(days=1, microseconds=120000),
            )
        )
    return made


def test_the_rows_json_is_referral_outs() -> None:
    now = datetime.now(UTC)
    names = [column.key for column in COLUMNS]
    for referral in _referrals():
        row = of_referral(referral)
        assert list(row) == names
        fast = json_response(referral_json(row, VIEWER, now)).body
        assert fast == referral_out(referral, VIEWER).model_dump_json().encode()
        assert orjson.loads(fast)["lease_id"] is None or referral.leased_by == VIEWER
