"""Posting, amending and reading reviews, and the referrals a submitted review sets off."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, time
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.audit.service import record_access
from app.auth.principal import Principal
from app.config import Settings
from app.deaths.status import refresh_death_status
from app.errors import ValidationFailed
from app.events.service import Change
from app.kit.enums import (
    MmOutcome,
    ReasonCode,
    ReferralStatus,
    ReviewStatus,
    Route,
    SjrPhase,
    instrument_for,
)
from app.kit.etag import Precondition
from app.kit.sql import insert_rows, load_one
from app.kit.time import LONDON, now
from app.models import (
    Death,
    Referral,
    Review,
    ReviewPhaseRating,
    ReviewProblem,
    ReviewVersion,
)
from app.referrals.service import FollowOn, raise_follow_ons
from app.referrals.workflow import (
    CLAIMABLE,
    TransitionRefused,
    Transitions,
    check_lease,
    clear_lease,
    load_referral,
    refuse,
)
from app.reviews.care import care_organisations
from app.reviews.schemas import (
    ExternalReview,
    FollowOnReferral,
    LederReview,
    MmReview,
    ReviewAmendment,
    ReviewOut,
    ReviewSubmission,
    ReviewVersionOut,
    SjrReview,
)
from app.reviews.views import review_out

AVOIDABLE = 3  # avoidability 1-3: "more likely than not due to problems in care"
POOR_CARE = 2  # overall care rated 1-2: very poor or poor

Instrumented = SjrReview | MmReview | LederReview | ExternalReview


def _check_instrument(
    route: Route, review: Instrumented, death: Death, submit: bool, historical: bool = False
) -> None:
    """The instrument must be the route's; its dates must be possible; a submitted SJR must
    be complete (a historical one, imported as it was recorded, need not give each rated
    phase a narrative: that rule is live submissions'). Problems point into the body."""
    expected = instrument_for(route)
    errors: list[dict[str, Any]] = []

    def fail(pointer: str, detail: str, code: str = "value_error") -> None:
        errors.append({"pointer": pointer, "code": code, "detail": detail})

    if review.instrument != expected.value:
        fail(
            "/review/instrument",
            f"a {route.value} referral takes the `{expected.value}` instrument",
            "wrong_instrument",
        )
        raise ValidationFailed("The review is not the route's instrument.", errors=errors)
    moment = now()
    died = death.died_at
    if isinstance(review, SjrReview) and submit:
        for pointer, detail in review.missing_for_submission(narratives=not historical):
            fail(pointer, detail, "required_for_submission")
    if isinstance(review, MmReview):
        meeting = datetime.combine(review.meeting_date, time(23, 59), LONDON)
        if meeting < died:
            fail("/review/meeting_date", "the meeting is before the death")
        if review.meeting_date > moment.astimezone(LONDON).date():
            fail("/review/meeting_date", "the meeting is in the future")
    if isinstance(review, LederReview):
        if review.notified_at < died:
            fail("/review/notified_at", "the notification is before the death")
        if review.notified_at > moment:
            fail("/review/notified_at", "the notification is in the future")
    if isinstance(review, ExternalReview):
        if review.referred_at < died:
            fail("/review/referred_at", "the referral is before the death")
        if review.referred_at > moment:
            fail("/review/referred_at", "the referral is in the future")
        if review.completed_at is not None and review.completed_at < review.referred_at:
            fail("/review/completed_at", "completed before it was referred")
    if errors:
        raise ValidationFailed("The review is not possible as given; see errors.", errors=errors)


def _add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(
        moment.day,
        [
            31,
            29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28,
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ][month - 1],
    )
    return moment.replace(year=year, month=month, day=day)


def _columns(review: Instrumented, settings: Settings) -> dict[str, Any]:
    """The instrument's reportable fields as columns (the rest stays in `detail`)."""
    columns: dict[str, Any] = {
        "reviewer": None,
        "overall_rating": None,
        "quality_of_records": None,
        "avoidability": None,
        "meeting_date": None,
        "outcome": None,
        "external_reference": None,
        "external_status": None,
        "notified_at": None,
        "external_due_at": None,
    }
    if isinstance(review, SjrReview):
        columns.update(
            reviewer=review.reviewer.name if review.reviewer else None,
            overall_rating=review.rating(SjrPhase.overall),
            quality_of_records=review.quality_of_records,
            avoidability=review.avoidability,
        )
    elif isinstance(review, MmReview):
        columns.update(
            reviewer=review.presenter,
            meeting_date=review.meeting_date,
            outcome=review.outcome.value,
            avoidability=review.avoidability,
        )
    elif isinstance(review, LederReview):
        columns.update(
            external_reference=review.leder_reference,
            external_status=review.status.value,
            notified_at=review.notified_at,
            # Six months in the trust's calendar: a notification at 00:30 BST on 1 September
            # is due on 1 March, not on the UTC date's 28 February.
            external_due_at=_add_months(
                review.notified_at.astimezone(LONDON), settings.leder_review_months
            ),
        )
    else:
        columns.update(
            external_reference=review.reference,
            external_status=review.status.value,
            notified_at=review.referred_at,
        )
    return columns


def follow_ons(referral: Referral, review: Instrumented) -> list[FollowOn]:
    """What a submitted review calls for next (DESIGN.md section 4, last rows)."""
    wanted: list[FollowOn] = []
    if isinstance(review, SjrReview):
        overall = review.rating(SjrPhase.overall)
        avoidable = review.avoidability is not None and review.avoidability <= AVOIDABLE
        if referral.stage != 2 and (avoidable or (overall is not None and overall <= POOR_CARE)):
            wanted.append(
                FollowOn(
                    Route.sjr,
                    2,
                    ReasonCode.second_stage,
                    review.reviewer.name if review.reviewer else None,
                )
            )
        if referral.stage == 2 and avoidable:
            wanted.append(FollowOn(Route.psii, None, ReasonCode.more_likely_than_not_avoidable))
        if review.patient_safety_incident_suspected:
            wanted.append(FollowOn(Route.psii, None, ReasonCode.patient_safety_incident))
    if isinstance(review, MmReview):
        if review.outcome is MmOutcome.escalate_sjr:
            wanted.append(FollowOn(Route.sjr, 1, ReasonCode.mm_escalation))
        if review.outcome is MmOutcome.escalate_psii:
            wanted.append(FollowOn(Route.psii, None, ReasonCode.patient_safety_incident))
    return wanted


async def _write_parts(
    session: AsyncSession,
    review: Review,
    body: Instrumented,
    care: dict[str, uuid.UUID],
) -> None:
    """The SJR's phase ratings and problems in care, as rows that reports aggregate, each with
    the organisation of care it names (``care``: ids by reference, app.reviews.care)."""
    review_id, owner = review.id, review.organisation_id
    await session.execute(delete(ReviewPhaseRating).where(ReviewPhaseRating.review_id == review_id))
    await session.execute(delete(ReviewProblem).where(ReviewProblem.review_id == review_id))
    if not isinstance(body, SjrReview):
        return
    await insert_rows(
        session,
        ReviewPhaseRating,
        [
            {
                "id": uuid.uuid4(),
                "review_id": review_id,
                "organisation_id": owner,
                "phase": r.phase.value,
                "rating": r.rating,
                "care_organisation_id": care.get(r.care_organisation or ""),
            }
            for r in body.phases
        ],
    )
    await insert_rows(
        session,
        ReviewProblem,
        [
            {
                "id": uuid.uuid4(),
                "review_id": review_id,
                "organisation_id": owner,
                "problem_type": p.type.value,
                "phase": p.phase.value,
                "harm": p.harm.value,
                "care_organisation_id": care.get(p.care_organisation or ""),
            }
            for p in body.problems_in_care
        ],
    )


async def submit_review(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    referral_id: uuid.UUID,
    body: ReviewSubmission,
) -> tuple[ReviewOut, bool]:
    """Save a draft or submit the review of a referral; (the review, whether it is new).

    Allowed while the referral is ready or in progress, with its lease when one is live. A
    submitted review completes the referral and raises what it calls for (second-stage SJR,
    PSII, SJR from M&M)."""
    referral = await load_referral(session, referral_id, for_update=True)
    moment = now()
    if referral.status not in CLAIMABLE:
        error = refuse(referral, "reviewed")
        existing = await session.scalar(select(Review.id).where(Review.referral_id == referral.id))
        if existing is not None:
            error.detail = f"{error.detail} Amend its review with PUT /v1/reviews/{existing}."
            error.extra["review"] = f"/v1/reviews/{existing}"
        raise error
    await check_lease(session, principal, referral, body.lease_id, moment)
    named = body.review.reviewer if isinstance(body.review, SjrReview) else None
    reviewer = named.name if named is not None else principal.on_behalf_of
    if (
        referral.excluded_reviewer is not None
        and reviewer is not None
        and reviewer.lower() == referral.excluded_reviewer.lower()
    ):
        # Without a live lease no claim is needed to post, so the exclusion is checked here too.
        raise TransitionRefused(
            "The stage-1 reviewer cannot take the stage-2 review.",
            extra={"current_status": referral.effective_status},
        )
    death = await session.get_one(Death, referral.death_id)
    raised: list[Referral] = []
    _check_instrument(Route(referral.route), body.review, death, body.submit)
    care = await care_organisations(session, body.review)

    review = await session.scalar(select(Review).where(Review.referral_id == referral.id))
    created = review is None
    columns = _columns(body.review, settings)
    detail = body.review.model_dump(mode="json")
    status = ReviewStatus.submitted if body.submit else ReviewStatus.draft
    if review is None:
        review = Review(
            id=uuid.uuid4(),
            referral_id=referral.id,
            death_id=death.id,
            organisation_id=death.organisation_id,
            died_on=death.died_on,
            route=referral.route,
            stage=referral.stage,
            instrument=body.review.instrument,
            version=1,
            created_by_client_id=principal.client_id,
            created_at=moment,
            updated_at=moment,
            status=status.value,
            detail=detail,
            submitted_at=moment if body.submit else None,
            **columns,
        )
        session.add(review)
    else:
        for name, value in columns.items():
            setattr(review, name, value)
        review.detail = detail
        review.status = status.value
        review.submitted_at = moment if body.submit else None
        review.version += 1
    await session.flush()
    await _write_parts(session, review, body.review, care)

    transitions = Transitions(Journal(principal))
    journal = transitions.journal
    before = referral.effective_status
    if body.submit:
        referral.status = ReferralStatus.completed.value
        referral.completed_at = moment
        if isinstance(body.review, LederReview | ExternalReview):
            referral.external_reference = columns["external_reference"]
        clear_lease(referral)
        transitions.record(
            referral,
            "complete",
            before,
            event="referral.completed",
            changed=["status", "completed_at"],
            reviewer=review.reviewer,
        )
        journal.event(Change("review.submitted", "review", review.id, death.id))
        raised = await raise_follow_ons(
            session, journal, settings, death, follow_ons(referral, body.review)
        )
    else:
        if referral.status != ReferralStatus.in_progress:
            referral.status = ReferralStatus.in_progress.value
            transitions.record(
                referral,
                "start",
                before,
                event="referral.started",
                changed=["status"],
                reviewer=review.reviewer,
            )
        journal.event(Change("review.drafted", "review", review.id, death.id))
    journal.audit("review.create" if created else "review.update", "review", review.id, death.id)
    await session.flush()
    await refresh_death_status(session, journal, death.id)
    await transitions.write(session)
    return _with_follow_ons(await review_out(session, review), raised), created


def _with_follow_ons(out: ReviewOut, raised: Sequence[Referral]) -> ReviewOut:
    """The answer naming the referrals the request raised (issue 18: the reviewer's system
    learns at once that a stage-2 SJR or a PSII now waits)."""
    if not raised:
        return out
    follow = [
        FollowOnReferral(
            id=r.id,
            route=Route(r.route),
            stage=r.stage,
            status=r.status,
            reasons=list(r.reasons),
            due_at=r.due_at,
        )
        for r in raised
    ]
    return out.model_copy(update={"follow_on_referrals": follow})


async def load_review(
    session: AsyncSession, review_id: uuid.UUID, *, for_update: bool = False
) -> Review:
    return await load_one(session, Review, review_id, "review", for_update=for_update)


async def amend_review(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    review_id: uuid.UUID,
    body: ReviewAmendment,
    if_match: Precondition,
) -> ReviewOut:
    """Amend a submitted review (a LeDeR review's progress, a corrected SJR score): the old
    version is kept, and what the amended review calls for is raised if not raised already."""
    review = await load_review(session, review_id, for_update=True)
    if_match.check(review.id, review.version)
    if review.status != ReviewStatus.submitted:
        raise TransitionRefused(
            "A draft is saved with POST /v1/referrals/{id}/review, not amended.",
            extra={"current_status": review.status},
        )
    referral = await session.get_one(Referral, review.referral_id)
    death = await session.get_one(Death, review.death_id)
    _check_instrument(Route(review.route), body.review, death, True)
    care = await care_organisations(session, body.review)
    detail = body.review.model_dump(mode="json")
    journal = Journal(principal)
    raised: list[Referral] = []
    if detail != review.detail:
        session.add(
            ReviewVersion(
                review_id=review.id,
                version=review.version,
                superseded_by_client_id=principal.client_id,
                snapshot=(await review_out(session, review)).model_dump(mode="json"),
            )
        )
        columns = _columns(body.review, settings)
        changed = [name for name, value in columns.items() if getattr(review, name) != value]
        for name, value in columns.items():
            setattr(review, name, value)
        review.detail = detail
        review.version += 1
        review.updated_at = now()
        await session.flush()
        await _write_parts(session, review, body.review, care)
        journal.event(
            Change("review.amended", "review", review.id, death.id, changed or ["detail"])
        )
        journal.audit("review.amend", "review", review.id, death.id)
        raised = await raise_follow_ons(
            session, journal, settings, death, follow_ons(referral, body.review)
        )
        await session.flush()
        await refresh_death_status(session, journal, death.id)
    else:
        journal.audit("review.read", "review", review.id, death.id)
    await journal.write(session)
    return _with_follow_ons(await review_out(session, review), raised)


async def read_review(
    session: AsyncSession, principal: Principal, review_id: uuid.UUID
) -> ReviewOut:
    review = await load_review(session, review_id)
    await record_access(session, principal, "review.read", "review", [(review.id, review.death_id)])
    return await review_out(session, review)


async def review_history(
    session: AsyncSession, principal: Principal, review_id: uuid.UUID
) -> list[ReviewVersionOut]:
    review = await load_review(session, review_id)
    rows: Sequence[ReviewVersion] = (
        await session.scalars(
            select(ReviewVersion)
            .where(ReviewVersion.review_id == review.id)
            .order_by(ReviewVersion.version)
        )
    ).all()
    await record_access(
        session, principal, "review.history", "review", [(review.id, review.death_id)]
    )
    return [ReviewVersionOut.model_validate(row) for row in rows]
