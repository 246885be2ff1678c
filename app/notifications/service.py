"""Recording death notifications: the death created awaiting screening, or found when the
same patient was notified before (by another system, or by a retry under the same key), with
its events and audit rows in the caller's transaction. HL7 v2 and FHIR are adapters onto
``notify``: every channel goes through the same validation, matching and journal."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.integrity import audit_keys
from app.audit.journal import Journal
from app.audit.service import record_access
from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.deaths.duplicates import flag_possible_duplicates
from app.deaths.organisations import DeathCodes, resolve_death_codes
from app.deaths.service import (
    SourceKeyTaken,
    death_values,
    derived_fields,
    find_by_source,
    insert_death,
    load_death,
    validate_death,
)
from app.deaths.views import death_out
from app.errors import Conflict
from app.events.service import Change
from app.kit.enums import DeathStatus
from app.kit.sql import insert_unless_exists, load_one
from app.kit.time import now
from app.models import Death, DeathNotification
from app.notifications.corrections import (
    KeyReused,
    Sent,
    check_same_patient,
    correct,
    is_correction,
)
from app.notifications.identity import (
    content_hash,
    death_identity,
    patient_keys,
    same_patient_as_death,
)
from app.notifications.schemas import (
    Channel,
    Correction,
    NotificationCreate,
    NotificationOut,
    NotificationRecorded,
)
from app.organisations.ownership import check_owner, owned_deaths, require_owner

MESSAGE_FIELDS = ("sent_at", "message_id")


class AmbiguousDeath(Conflict):
    slug, title = "ambiguous-death", "More than one death matches"

    def __init__(self, detail: str, candidates: list[uuid.UUID], principal: Principal) -> None:
        # The candidates' links for a client that may read deaths; their number for any other
        # (it sent the NHS number, and learns only that the match is not one).
        extra: dict[str, Any] = {"candidate_count": len(candidates)}
        if principal.has(Scope.deaths_read):
            extra["candidates"] = [
                {"death_id": str(death_id), "death": f"/v1/deaths/{death_id}"}
                for death_id in candidates
            ]
        super().__init__(detail, extra=extra)


async def by_source(session: AsyncSession, system: str, reference: str) -> DeathNotification | None:
    return await session.scalar(
        select(DeathNotification).where(
            DeathNotification.source_system == system,
            DeathNotification.source_reference == reference,
        )
    )


async def same_patient(session: AsyncSession, nhs_number: str, died_on: date) -> list[Death]:
    """The deaths held for this NHS number and local date of death, oldest record first: of
    those the client changes (a death shared with it is never the one a notification or a
    screening of its own is matched to: app.organisations.ownership)."""
    query = select(Death).where(Death.nhs_number == nhs_number, Death.died_on == died_on)
    owned = owned_deaths()
    if owned is not None:
        query = query.where(owned)
    return list((await session.scalars(query.order_by(Death.case_number))).all())


async def _recorded(
    session: AsyncSession, notification: DeathNotification, death: Death
) -> NotificationRecorded:
    # The death carries the key of what created it: this notification, or another.
    created = (death.source_system, death.source_reference) == (
        notification.source_system,
        notification.source_reference,
    )
    return NotificationRecorded.model_validate(
        {
            **NotificationOut.model_validate(notification).model_dump(),
            "death_created": created,
            "death": await death_out(session, death),
        }
    )


async def notify(
    session: AsyncSession, principal: Principal, body: NotificationCreate, channel: Channel
) -> tuple[NotificationRecorded, bool]:
    """Record a notification; True when it is new. Sent again under the same key (a retry,
    whatever the channel), it answers what the first one made and changes nothing; with other
    details of the same patient it is a correction, of another patient a 409
    (app.notifications.corrections). A new notification of a patient already held for the
    same date of death (by NHS number) names that death; two or more such deaths are a 409
    listing them (never a guess)."""
    values = death_values(body)
    message = {name: values.pop(name) for name in MESSAGE_FIELDS}
    sent = Sent(
        values=dict(values),
        codes=DeathCodes.of(body),
        message=message,
        status_sent=body.nhs_number_status is not None,
    )
    key = (await audit_keys(session)).notification
    existing = await by_source(session, body.source_system, body.source_reference)
    if existing is not None:
        return await _again(session, principal, key, existing, sent), False
    fingerprint = content_hash(key, sent.content)
    patient = patient_keys(key, values)
    validate_death(values, "")
    values.update(derived_fields(values))
    values.update(await resolve_death_codes(session, principal, sent.codes))
    death, created = await _death_for(session, principal, values)
    moment = now()
    row = {
        "id": uuid.uuid4(),
        "death_id": death.id,
        "source_system": body.source_system,
        "source_reference": body.source_reference,
        "channel": channel.value,
        "received_at": moment,
        "client_id": principal.client_id,
        "patient_keys": patient,
        "content_hash": fingerprint,
        **message,
    }
    inserted = await insert_unless_exists(
        session, DeathNotification, ("source_system", "source_reference"), row
    )
    if inserted is None:
        # A retry that raced this one recorded it first (its transaction has committed).
        found = await by_source(session, body.source_system, body.source_reference)
        if found is None:
            # Committed (ON CONFLICT waited for it) yet out of this client's sight.
            raise SourceKeyTaken("/source_reference")
        return await _again(session, principal, key, found, sent), False
    notification = DeathNotification(**row)
    journal = Journal(principal)
    if created:
        journal.event(Change("death.created", "death", death.id, death.id))
        journal.audit("death.create", "death", death.id, death.id)
    journal.event(Change("death.notified", "death_notification", notification.id, death.id))
    journal.audit("death_notification.create", "death_notification", notification.id, death.id)
    await journal.write(session)
    return await _recorded(session, notification, death), True


async def _again(
    session: AsyncSession,
    principal: Principal,
    key: bytes,
    notification: DeathNotification,
    sent: Sent,
) -> NotificationRecorded:
    """A notification under a key already recorded: a 409 for another patient, a correction
    for other details of the same one, else a replay. The key of a notification of a death
    shared with the client's organisation is not the client's to send (403)."""
    await require_owner(session, notification.death_id, "notifications")
    check_same_patient(key, notification, sent.values)
    if not is_correction(key, notification, sent):
        replayed = await _replayed(session, principal, notification)
        # The correction itself sent again: answered as it was the first time.
        resent = notification.correction is not None and (
            content_hash(key, sent.content) == notification.content_hash
        )
        return replayed.as_correction(replayed.correction if resent else None)
    death = await correct(session, principal, key, notification, sent)
    recorded = await _recorded(session, notification, death)
    return recorded.as_correction(
        Correction(notification.correction) if notification.correction else None
    )


async def _replayed(
    session: AsyncSession, principal: Principal, notification: DeathNotification
) -> NotificationRecorded:
    death = await load_death(session, notification.death_id)
    await record_access(
        session,
        principal,
        "death_notification.read",
        "death_notification",
        [(notification.id, death.id)],
    )
    return await _recorded(session, notification, death)


async def _death_for(
    session: AsyncSession, principal: Principal, values: dict[str, Any]
) -> tuple[Death, bool]:
    """The death this notification is of, and whether it was created now."""
    known = await find_by_source(session, values["source_system"], values["source_reference"])
    if known is not None:
        # A death shared with the client's organisation holds the key: not its to notify.
        check_owner(known.organisation_id, known.id, "notifications")
        # A death recorded under this key by a screening (or an import): of the same patient.
        if not same_patient_as_death(values, known):
            raise KeyReused()
        return known, False
    if values.get("nhs_number"):
        matches = await same_patient(session, values["nhs_number"], values["died_on"])
        if len(matches) == 1:
            return matches[0], False
        if len(matches) > 1:
            raise AmbiguousDeath(
                "More than one death is held for this NHS number and date of death; resolve "
                "the possible duplicate (POST /v1/deaths/{id}/duplicate-review) first.",
                [death.id for death in matches],
                principal,
            )
    values = {**values, "id": uuid.uuid4(), "notified_at": now()}
    death = await insert_death(session, principal, values, DeathStatus.awaiting_screening)
    if death is None:
        # The sender's key was taken by a screening or notification committed meanwhile.
        raced = await find_by_source(session, values["source_system"], values["source_reference"])
        if raced is None:
            # Committed (ON CONFLICT waited for it) yet out of this client's sight.
            raise SourceKeyTaken("/source_reference")
        check_owner(raced.organisation_id, raced.id, "notifications")
        return raced, False
    await flag_possible_duplicates(session, death)
    return death, True


async def read_notification(
    session: AsyncSession, principal: Principal, notification_id: uuid.UUID
) -> NotificationRecorded:
    notification = await load_one(session, DeathNotification, notification_id, "death notification")
    return await _replayed(session, principal, notification)


async def known_before(
    session: AsyncSession, system: str, reference: str, nhs_number: str | None
) -> bool:
    """Whether a screening's death may have been notified or seen before: a notification
    under its key, or any death of its NHS number. One statement; when it is false (a new
    patient, the usual case) the intake skips ``notified_death`` and the duplicate check, two
    statements (issue 19). A true answer only sends the intake the long way."""
    notification = (
        select(DeathNotification.id)
        .where(
            DeathNotification.source_system == system,
            DeathNotification.source_reference == reference,
        )
        .limit(1)
        .scalar_subquery()
    )
    columns: list[Any] = [notification.is_not(None)]
    if nhs_number is not None:
        columns.append(select(Death.id).where(Death.nhs_number == nhs_number).exists())
    found = (await session.execute(select(*columns))).one()
    return any(found)


async def notified_death(
    session: AsyncSession,
    principal: Principal,
    system: str,
    reference: str,
    nhs_number: str | None,
    died_on: date,
) -> Death | None:
    """The death a screening sent under this key is of, when a notification came first: the
    death a notification of the same key names (the ME's screening completes it, its details
    winning: app.screenings.attach), or else the one death awaiting screening with the same
    NHS number and date of death (two or more: a 409 listing them, never a guess). Locked for
    the screening's update. None when nothing was notified."""
    notification = await by_source(session, system, reference)
    if notification is not None:
        death = await load_death(session, notification.death_id, for_update=True)
        check_owner(death.organisation_id, death.id, "screening")
        return death
    if nhs_number is None:
        return None
    matches = [
        death
        for death in await same_patient(session, nhs_number, died_on)
        if death.status == DeathStatus.awaiting_screening
    ]
    if len(matches) > 1:
        raise AmbiguousDeath(
            "More than one notified death awaits screening for this NHS number and date of "
            "death; send the screening under the source_system + source_reference of the "
            "notification it belongs to.",
            [death.id for death in matches],
            principal,
        )
    if not matches:
        return None
    return await load_death(session, matches[0].id, for_update=True)


async def remember_key(
    session: AsyncSession, principal: Principal, death: Death, system: str, reference: str
) -> None:
    """Keep a screening's key as a name of the notified death it attached to, so that the
    screening's sender finds the death by its own reference (a retry, a list filter)."""
    if (death.source_system, death.source_reference) == (system, reference):
        return
    patient = patient_keys((await audit_keys(session)).notification, death_identity(death))
    await insert_unless_exists(
        session,
        DeathNotification,
        ("source_system", "source_reference"),
        {
            "id": uuid.uuid4(),
            "death_id": death.id,
            "source_system": system,
            "source_reference": reference,
            "channel": Channel.screening.value,
            "received_at": now(),
            "client_id": principal.client_id,
            "patient_keys": patient,
        },
    )
