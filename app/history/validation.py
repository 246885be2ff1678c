"""One bundle line, parsed and checked: the live intake's rules (the death's, the screening's,
each review instrument's) and history's own (nothing after the import, nothing closed before
it was created, no review submitted before its referral). Every problem is a JSON pointer
into the record, a code and a sentence; never a submitted value."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import orjson
from pydantic import ValidationError

from app.deaths.service import death_values
from app.deaths.validation import CLOCK_SKEW, check_death
from app.errors import ValidationFailed, field_error, validation_errors
from app.history.bundle import OPEN_HISTORIC, HistoricReferral, HistoricStatus, HistoryRecordIn
from app.history.plan import Planned
from app.history.plans import PlanRecordIn, is_plan_line, parse_plan, plan_reference
from app.kit.enums import ReviewStatus, Route
from app.kit.schemas import PLAIN_TEXT, plain_text
from app.models import Death
from app.reviews.service import _check_instrument
from app.screenings.service import check_screening


@dataclass(frozen=True)
class _Died:
    died_at: datetime


@dataclass
class Checked:
    """A bundle line: its number (from 1), the sender's reference when it could be read, the
    record if it is valid, and its problems."""

    line: int
    source_reference: str | None = None
    record: HistoryRecordIn | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    sha256: str = ""
    # The death's field values (app.deaths.service.death_values), checked and then planned.
    death: dict[str, Any] = field(default_factory=dict)
    # Set by app.history.prepare for a valid record: its death's key, its rows, its line.
    key: tuple[str, str] = ("", "")
    planned: Planned | None = None
    raw: bytes = b""
    # A line holding an action plan instead (app.history.plans): the record, kept whole.
    plan: PlanRecordIn | None = None


def _reference_of(document: Any) -> str | None:
    death = document.get("death") if isinstance(document, dict) else None
    reference = death.get("source_reference") if isinstance(death, dict) else None
    return reference[:100] if isinstance(reference, str) else None


def fingerprint(record: HistoryRecordIn) -> str:
    """The record's fingerprint: sha256 of the record as validated, so that the same record
    sent again, as a bundle line or as a CSV set's rows, is found unchanged."""
    return hashlib.sha256(record.model_dump_json().encode()).hexdigest()


def parse_record(
    document: Any, line: int, moment: datetime, context: dict[str, Any] | None = None
) -> Checked:
    """Validate one decoded record against the bundle's schema and rules (the same text rules
    as live intake: app.kit.text; ``context`` PLAIN_TEXT when the line is known to hold only
    plain text, which those rules leave as it is)."""
    if is_plan_line(document):
        checked = Checked(line, plan_reference(document))
        checked.plan, checked.errors, checked.sha256 = parse_plan(document, moment, context)
        if checked.plan is not None:
            plan = checked.plan.action_plan
            checked.key = (plan.source_system, plan.source_reference)
        return checked
    checked = Checked(line, _reference_of(document))
    if not isinstance(document, dict):
        checked.errors.append(field_error("", "a record is a JSON object", "type_error"))
        return checked
    try:
        record = HistoryRecordIn.model_validate(document, context=context)
    except ValidationError as error:
        checked.errors = validation_errors(error.errors(), document)
        return checked
    checked.death = death_values(record.death)
    checked.errors = check_record(record, moment, checked.death)
    if not checked.errors:
        checked.record = record
        checked.sha256 = fingerprint(record)
    return checked


def parse_line(raw: bytes, line: int, moment: datetime) -> Checked:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Checked(line, errors=[field_error("", "the line is not valid JSON", "json_invalid")])
    return parse_record(document, line, moment, PLAIN_TEXT if plain_text(raw) else None)


def check_record(
    record: HistoryRecordIn, moment: datetime, death: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The cross-field rules, with ``moment`` (the import's start) as "now": a death, a
    screening or a review after its import is refused. ``death``: the death's values, when
    the caller has them."""
    values = death if death is not None else death_values(record.death)
    errors = [error.as_dict() for error in check_death(values, moment, "/death")]
    died_at = record.death.died_at
    try:
        check_screening(record.screening, died_at, "/screening")
    except ValidationFailed as failed:
        errors.extend(failed.errors or [])
    latest = moment + CLOCK_SKEW

    def fail(pointer: str, detail: str, code: str = "value_error") -> None:
        errors.append(field_error(pointer, detail, code))

    if record.screening.screened_at > latest:
        fail("/screening/screened_at", "the screening is after the import")
    for index, override in enumerate(record.screening.overrides):
        pointer = f"/screening/overrides/{index}/recorded_at"
        if override.recorded_at < died_at:
            fail(pointer, "the override is recorded before the death")
        elif override.recorded_at > latest:
            fail(pointer, "the override is recorded after the import")
    reviewed: set[str] = set()
    for index, referral in enumerate(record.referrals):
        errors.extend(_check_referral(referral, f"/referrals/{index}", record, latest))
        if referral.review is not None:
            reviewed.add(referral.reference)
    references = {referral.reference for referral in record.referrals}
    for index, finding in enumerate(record.findings):
        pointer = f"/findings/{index}"
        if finding.referral is not None:
            if finding.referral not in references:
                fail(f"{pointer}/referral", "no referral of this record has this reference")
            elif finding.referral not in reviewed:
                fail(f"{pointer}/referral", "a finding comes from a referral with a review")
        if finding.recorded_at < died_at:
            fail(f"{pointer}/recorded_at", "the finding is recorded before the death")
        elif finding.recorded_at > latest:
            fail(f"{pointer}/recorded_at", "the finding is recorded after the import")
    return errors


def _check_referral(
    referral: HistoricReferral, pointer: str, record: HistoryRecordIn, latest: datetime
) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []

    def fail(name: str, detail: str, code: str = "value_error") -> None:
        errors.append(field_error(f"{pointer}{name}", detail, code))

    created = referral.created_at
    if referral.route is Route.sjr and referral.stage is None:
        fail("/stage", "an SJR referral has a stage (1 or 2)")
    if referral.route is not Route.sjr and referral.stage is not None:
        fail("/stage", "only an SJR referral has a stage")
    if created < record.death.died_at:
        fail("/created_at", "the referral is before the death")
    elif created < record.screening.screened_at:
        fail("/created_at", "the referral is before the screening")
    if created > latest:
        fail("/created_at", "the referral is after the import")
    if referral.claimed_at is not None and referral.claimed_at < created:
        fail("/claimed_at", "claimed before it was created")
    if referral.due_at is not None and referral.due_at < created:
        fail("/due_at", "due before it was created")
    closed = referral.closed_at
    if referral.status in OPEN_HISTORIC:
        if closed is not None:
            fail("/closed_at", f"a referral still {referral.status.value} has no closing time")
        if referral.due_at is None:
            fail("/due_at", "an open referral needs the due date its source recorded")
    elif closed is None:
        fail("/closed_at", f"a {referral.status.value} referral needs the time it was closed")
    elif closed < created:
        fail("/closed_at", "closed before it was created")
    elif closed > latest:
        fail("/closed_at", "closed after the import")
    review = referral.review
    if review is None:
        return errors
    here = f"{pointer}/review"
    submitted = review.status is ReviewStatus.submitted
    try:
        # The instrument check reads only the death's time: a light stand-in for the ORM object
        # (an ORM instance costs more to make than the rest of the record's checks).
        died = cast(Death, _Died(record.death.died_at))
        _check_instrument(referral.route, review.form, died, submitted, historical=True)
    except ValidationFailed as failed:
        for error in failed.errors or []:
            inner = str(error["pointer"]).removeprefix("/review")
            errors.append({**error, "pointer": f"{here}/form{inner}"})
    if review.started_at is not None and review.started_at < created:
        fail("/review/started_at", "the review was begun before its referral")
    if submitted:
        at = review.submitted_at
        if referral.status is not HistoricStatus.completed:
            fail("/status", "a referral with a submitted review is completed")
        if at is None:
            fail("/review/submitted_at", "a submitted review needs the time it was submitted")
        elif at < created:
            fail("/review/submitted_at", "the review is submitted before its referral")
        elif at > latest:
            fail("/review/submitted_at", "the review is submitted after the import")
        elif closed is not None and closed < at:
            fail("/closed_at", "the referral was closed before its review was submitted")
    else:
        if review.submitted_at is not None:
            fail("/review/submitted_at", "a draft review has no submission time")
        if referral.status not in OPEN_HISTORIC:
            fail("/review/status", "a draft review belongs to an open referral")
    return errors
