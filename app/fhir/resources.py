"""Referrals as FHIR R4 Task and deaths as Patient, as plain JSON-ready dicts (the FHIR model
library is a test dependency only: the tests validate every response against it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from app.fhir.mapping import (
    AGE_BAND_EXTENSION,
    CASE_REFERENCE_SYSTEM,
    EXTERNAL_REFERENCE_SYSTEM,
    GENDER,
    NHS_NUMBER_STATUS_DISPLAY,
    NHS_NUMBER_SYSTEM,
    NHS_NUMBER_VERIFICATION_EXTENSION,
    NHS_NUMBER_VERIFICATION_SYSTEM,
    PSEUDONYM_SYSTEM,
    REASON_DISPLAY,
    REFERRAL_ID_SYSTEM,
    REFERRAL_REASON_SYSTEM,
    REFERRAL_STATUS_DISPLAY,
    REFERRAL_STATUS_SYSTEM,
    ROUTE_DISPLAY,
    ROUTE_SYSTEM,
    TASK_STATUS,
    task_priority,
)
from app.kit.enums import NhsNumberStatus, ReasonCode, ReferralStatus, Route, Sex
from app.models import Death, Referral
from app.privacy.pseudonym import age_band, month_of_death, postcode_district, pseudonym


def instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def weak_etag(version_id: str) -> str:
    return f'W/"{version_id}"'


def task_version(referral: Referral, at: datetime) -> str:
    """meta.versionId: the referral's version, marked once a lease has lapsed without a
    write, since the Task then reads differently (ready again, no owner) at the same version."""
    lapsed = referral.lease_expires_at is not None and not referral.lease_live(at)
    return f"{referral.version}-lapsed" if lapsed else str(referral.version)


def effective_status(referral: Referral, at: datetime) -> ReferralStatus:
    """As readers see it at ``at``: a live lease on a ready referral reads as claimed."""
    stored = ReferralStatus(referral.status)
    if stored is ReferralStatus.ready and referral.lease_live(at):
        return ReferralStatus.claimed
    return stored


def task_owner(referral: Referral, at: datetime, lease_holders: dict[uuid.UUID, str]) -> str | None:
    """The assignee; else the reviewer the live lease is for; else the client holding it."""
    if referral.assigned_to:
        return referral.assigned_to
    if referral.lease_live(at):
        if referral.leased_to:
            return referral.leased_to
        if referral.leased_by is not None:
            return lease_holders.get(referral.leased_by)
    return None


def lease_holder_needed(referral: Referral, at: datetime) -> uuid.UUID | None:
    """The client whose name the Task's owner shows (a live lease without a reviewer's name)."""
    if referral.assigned_to or referral.leased_to or not referral.lease_live(at):
        return None
    return referral.leased_by


def task(
    referral: Referral,
    *,
    at: datetime,
    pseudonymised: bool,
    lease_holders: dict[uuid.UUID, str],
) -> dict[str, Any]:
    status = effective_status(referral, at)
    route = Route(referral.route)
    route_text = ROUTE_DISPLAY[route]
    if referral.stage is not None:
        route_text += f", stage {referral.stage}"
    identifiers = [{"use": "official", "system": REFERRAL_ID_SYSTEM, "value": str(referral.id)}]
    if referral.external_reference and not pseudonymised:
        identifiers.append(
            {
                "use": "secondary",
                "system": EXTERNAL_REFERENCE_SYSTEM,
                "value": referral.external_reference,
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(referral.id),
        "meta": {
            "versionId": task_version(referral, at),
            "lastUpdated": instant(referral.updated_at),
        },
        "identifier": identifiers,
        "status": TASK_STATUS[status],
        "businessStatus": {
            "coding": [
                {
                    "system": REFERRAL_STATUS_SYSTEM,
                    "code": status.value,
                    "display": REFERRAL_STATUS_DISPLAY[status],
                }
            ],
            "text": f"{route_text}: {REFERRAL_STATUS_DISPLAY[status].lower()}",
        },
        "intent": "order",
        "priority": task_priority(referral.priority),
        "code": {
            "coding": [
                {"system": ROUTE_SYSTEM, "code": route.value, "display": ROUTE_DISPLAY[route]}
            ],
            "text": route_text,
        },
        "for": {"reference": f"Patient/{referral.death_id}", "type": "Patient"},
        "authoredOn": instant(referral.created_at),
        "lastModified": instant(referral.updated_at),
        "restriction": {"period": {"end": instant(referral.due_at)}},
    }
    if referral.status_reason and not pseudonymised:
        # Free text written by staff: a pseudonymised client does not get it.
        resource["statusReason"] = {"text": referral.status_reason}
    if referral.completed_at is not None:
        resource["executionPeriod"] = {"end": instant(referral.completed_at)}
    owner = task_owner(referral, at, lease_holders)
    if owner:
        resource["owner"] = {"display": owner}
    reasons = [ReasonCode(code) for code in referral.reasons]
    if reasons:
        # R4 allows one reasonCode: its codings are the referral's reasons, all of them.
        resource["reasonCode"] = {
            "coding": [
                {
                    "system": REFERRAL_REASON_SYSTEM,
                    "code": reason.value,
                    "display": REASON_DISPLAY[reason],
                }
                for reason in reasons
            ],
            "text": "; ".join(REASON_DISPLAY[reason] for reason in reasons),
        }
    return resource


def patient(death: Death, *, pseudonymised: bool, key: bytes | None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(death.id),
        "meta": {"versionId": str(death.version), "lastUpdated": instant(death.updated_at)},
    }
    if pseudonymised:
        if key is None:
            raise ValueError("a pseudonymised Patient needs the pseudonym key")
        band = age_band(death.age_at_death)
        if band is not None:
            resource["extension"] = [{"url": AGE_BAND_EXTENSION, "valueString": band}]
        resource["identifier"] = [
            {
                "use": "secondary",
                "system": PSEUDONYM_SYSTEM,
                "value": pseudonym(key, death.nhs_number, death.id),
            }
        ]
    else:
        identifiers: list[dict[str, Any]] = []
        if death.nhs_number:
            status = NhsNumberStatus(death.nhs_number_status)
            identifiers.append(
                {
                    "extension": [
                        {
                            "url": NHS_NUMBER_VERIFICATION_EXTENSION,
                            "valueCodeableConcept": {
                                "coding": [
                                    {
                                        "system": NHS_NUMBER_VERIFICATION_SYSTEM,
                                        "code": status.value,
                                        "display": NHS_NUMBER_STATUS_DISPLAY[status],
                                    }
                                ]
                            },
                        }
                    ],
                    "use": "official",
                    "system": NHS_NUMBER_SYSTEM,
                    "value": death.nhs_number,
                }
            )
        identifiers.append(
            {"use": "secondary", "system": CASE_REFERENCE_SYSTEM, "value": death.case_reference}
        )
        resource["identifier"] = identifiers
        if death.family_name or death.given_name:
            name: dict[str, Any] = {"use": "official"}
            if death.family_name:
                name["family"] = death.family_name
            if death.given_name:
                name["given"] = [death.given_name]
            resource["name"] = [name]
    resource["gender"] = GENDER[Sex(death.sex)]
    if pseudonymised:
        resource["deceasedDateTime"] = month_of_death(death.died_at)
        district = postcode_district(death.postcode)
        if district:
            resource["address"] = [{"postalCode": district}]
    else:
        resource["birthDate"] = death.date_of_birth.isoformat()
        resource["deceasedDateTime"] = instant(death.died_at)
        if death.postcode:
            resource["address"] = [{"postalCode": death.postcode}]
    return resource


def bundle(
    resources: list[dict[str, Any]], *, base_url: str, self_url: str, next_url: str | None
) -> dict[str, Any]:
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": instant(datetime.now(UTC)),
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in resources
        ],
    }
