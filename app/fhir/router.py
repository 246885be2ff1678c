"""The FHIR R4 view (read-only): `Task` for referrals, `Patient` for deaths, a
CapabilityStatement. Responses are `application/fhir+json`; errors are OperationOutcome."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from app.auth.deps import DeathsReader, NotificationsWriter, ReferralsReader
from app.auth.routing import AuthFirstRoute
from app.db import DatabaseDep
from app.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from app.fhir import ingest, service
from app.fhir.capability import capability_statement
from app.fhir.mapping import FHIR_JSON
from app.fhir.outcome import NotAcceptable, outcome_responses
from app.fhir.resources import bundle, weak_etag
from app.fhir.search import Params, patient_search, task_search
from app.kit.etag import not_modified
from app.notifications.schemas import Channel
from app.notifications.submit import CORRECTION_HEADER, notify_once

ACCEPTABLE = frozenset(
    {"*/*", "application/*", "application/json", FHIR_JSON, "application/json+fhir"}
)
FORMATS = frozenset({"json", "application/json", FHIR_JSON, "application/json+fhir"})


def negotiate(
    request: Request, accept: Annotated[str | None, Header(include_in_schema=False)] = None
) -> None:
    """JSON only: 406 for a client that accepts neither FHIR JSON nor JSON (e.g. FHIR XML)."""
    requested = request.query_params.get("_format")
    if requested is not None and requested.strip().lower() not in FORMATS:
        raise NotAcceptable("This server speaks FHIR JSON only (_format=json).")
    if accept is None or not accept.strip() or requested is not None:
        return
    media = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if not media & ACCEPTABLE:
        raise NotAcceptable("This server answers with application/fhir+json only.")


router = APIRouter(
    route_class=AuthFirstRoute, prefix="/fhir/r4", tags=["fhir"], dependencies=[Depends(negotiate)]
)
AUTH = (Unauthorized, Forbidden, NotAcceptable)
IfNoneMatch = Annotated[
    str | None,
    Header(description="An ETag from an earlier read: 304 Not Modified while it is current."),
]
FHIR_200: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}}
}


def fhir_response(
    content: dict[str, Any], *, etag: str | None = None, status_code: int = 200
) -> Response:
    headers = {"ETag": etag} if etag else None
    return JSONResponse(content, status_code=status_code, media_type=FHIR_JSON, headers=headers)


def _read(resource: dict[str, Any], if_none_match: str | None, pseudonymised: bool) -> Response:
    """`ETag: W/"<versionId>"`, and 304 while the client's tag is current. The pseudonymised
    representation's tag is `W/"<versionId>.pseudonymised"`, as on /v1, so that no cache
    serves one view to a client entitled to the other."""
    opaque = str(resource["meta"]["versionId"])
    if pseudonymised:
        opaque += ".pseudonymised"
    tag = weak_etag(opaque)
    if not_modified(if_none_match, f'"{opaque}"'):
        return Response(status_code=304, headers={"ETag": tag})
    return fhir_response(resource, etag=tag)


def _params(request: Request) -> Params:
    return list(request.query_params.multi_items())


def _links(request: Request, params: Params, count: int, next_cursor: str | None) -> dict[str, Any]:
    """The self link with the parameters the search used (the page size after its bound), and
    the next link, the same search from the cursor."""
    base = str(request.url.replace(query=""))
    kept = [(k, v) for k, v in params if k not in {"_count", "_cursor", "_format"}]
    cursor = [(k, v) for k, v in params if k == "_cursor"]
    self_url = f"{base}?{urlencode([*kept, ('_count', str(count)), *cursor])}"
    next_url = None
    if next_cursor is not None:
        next_url = f"{base}?{urlencode([*kept, ('_count', str(count)), ('_cursor', next_cursor)])}"
    return {"self_url": self_url, "next_url": next_url}


def _fhir_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir/r4"


def _id(raw: str, resource: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as error:
        raise NotFound(f"No {resource} with that id.") from error


@router.get(
    "/metadata",
    response_class=Response,
    responses={**FHIR_200, **outcome_responses(*AUTH)},
)
async def metadata(principal: ReferralsReader, request: Request) -> Response:
    """The CapabilityStatement: what the FHIR view supports (Task and Patient reads and
    searches, their search parameters, JSON only).

    Scope: `referrals:read` (FHIR servers usually publish this openly; here every route but
    health needs a credential).
    """
    return fhir_response(capability_statement(_fhir_base(request)))


@router.get(
    "/Task",
    response_class=Response,
    responses={**FHIR_200, **outcome_responses(*AUTH, BadRequest)},
)
async def search_tasks(
    principal: ReferralsReader, database: DatabaseDep, request: Request
) -> Response:
    """Referrals as a Bundle (searchset) of Task, in queue order: priority, due date, creation.

    Search parameters: `status` (FHIR task status: ready, accepted, in-progress, on-hold,
    completed, rejected, cancelled), `code` (the route, e.g. `sjr`), `owner` (the assignee or
    the reviewer of the live lease, by name, ignoring case), `period` (the due date, with a
    prefix eq, gt, lt, ge or le: `period=ge2026-01-01&period=lt2026-04-01`; dates are UK
    local), `patient` or `subject` (`Patient/<id>`), `_count` (1 to 200, default 50; larger
    is cut to 200). Commas OR values; repeated parameters AND. Unknown parameters are a 400.
    The next page is the `next` link. `total` is not given (counting would cost a scan).

    Scope: `referrals:read`.
    """
    search = task_search(_params(request))
    async with database.transaction() as session:
        page = await service.search_tasks(session, principal, search)
    links = _links(request, _params(request), search.count, page.next_cursor)
    return fhir_response(bundle(page.resources, base_url=_fhir_base(request), **links))


@router.get(
    "/Task/{task_id}",
    response_class=Response,
    responses={
        **FHIR_200,
        304: {"description": "Not modified"},
        **outcome_responses(*AUTH, NotFound),
    },
)
async def read_task(
    task_id: str,
    principal: ReferralsReader,
    database: DatabaseDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One referral as a Task, with `ETag: W/"<versionId>"`; `If-None-Match` gives 304 while
    it is current.

    Scope: `referrals:read`.
    """
    referral_id = _id(task_id, "Task")
    async with database.transaction() as session:
        resource = await service.read_task(session, principal, referral_id)
    return _read(resource, if_none_match, principal.pseudonymised)


@router.get(
    "/Patient",
    response_class=Response,
    responses={**FHIR_200, **outcome_responses(*AUTH, BadRequest)},
)
async def search_patients(
    principal: DeathsReader, database: DatabaseDep, request: Request
) -> Response:
    """Patients by NHS number: `identifier=https://fhir.nhs.uk/Id/nhs-number|<number>`
    (commas OR numbers). A Bundle (searchset), newest death first. Refused (400) for
    pseudonymised clients, who may not search by identifiers, names or dates of birth.

    Scope: `deaths:read`.
    """
    search = patient_search(_params(request), principal.pseudonymised)
    async with database.transaction() as session:
        page = await service.search_patients(session, principal, database.settings, search)
    links = _links(request, _params(request), search.count, page.next_cursor)
    return fhir_response(bundle(page.resources, base_url=_fhir_base(request), **links))


@router.get(
    "/Patient/{patient_id}",
    response_class=Response,
    responses={
        **FHIR_200,
        304: {"description": "Not modified"},
        **outcome_responses(*AUTH, NotFound),
    },
)
async def read_patient(
    patient_id: str,
    principal: DeathsReader,
    database: DatabaseDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The deceased patient of a death (the Patient id is the death id): NHS number with its
    verification status, name, gender, birth date, date and time of death, postcode. A
    pseudonymised client gets the pseudonym, an age band, the month of death and the postcode
    district instead, and no name, NHS number or birth date.

    Scope: `deaths:read`.
    """
    death_id = _id(patient_id, "Patient")
    async with database.transaction() as session:
        resource = await service.read_patient(session, principal, database.settings, death_id)
    return _read(resource, if_none_match, principal.pseudonymised)


_PATIENT = "urn:uuid:5d0b1c2e-7a3f-4e8d-9b6c-1f2a3b4c5d6e"
TRANSACTION_EXAMPLE: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "transaction",
    "identifier": {"system": "https://trust.example.nhs.uk/epr", "value": "ENC-2026-118842"},
    "timestamp": "2026-11-20T03:25:00+00:00",
    "entry": [
        {
            "fullUrl": _PATIENT,
            "resource": {
                "resourceType": "Patient",
                "identifier": [
                    {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"},
                    {"system": "https://trust.example.nhs.uk/Id/mrn", "value": "RX1204518"},
                ],
                "name": [{"family": "Patient", "given": ["Test"]}],
                "gender": "female",
                "birthDate": "1948-06-01",
                "address": [{"postalCode": "LS1 4AP"}],
                "deceasedDateTime": "2026-11-20T03:10:00+00:00",
            },
            "request": {"method": "POST", "url": "Patient"},
        },
        {
            "fullUrl": "urn:uuid:8e4f2a1b-3c5d-4e6f-8a9b-0c1d2e3f4a5b",
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "IMP",
                },
                "subject": {"reference": _PATIENT},
                "priority": {"coding": [{"code": "EM"}]},
                "period": {
                    "start": "2026-11-16T22:40:00+00:00",
                    "end": "2026-11-20T03:10:00+00:00",
                },
                "serviceType": {"coding": [{"code": "300"}]},
                "location": [{"location": {"display": "Ward 7"}}],
                "serviceProvider": {"display": "General Infirmary"},
            },
            "request": {"method": "POST", "url": "Encounter"},
        },
    ],
}


@router.post(
    "",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"example": TRANSACTION_EXAMPLE}}}
    },
    responses={
        **FHIR_200,
        **outcome_responses(
            *AUTH, Conflict, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
        ),
    },
)
async def post_transaction(
    principal: NotificationsWriter,
    database: DatabaseDep,
    bundle: Annotated[dict[str, Any], Body(description="A FHIR R4 transaction Bundle.")],
) -> Response:
    """A death notification as a FHIR R4 transaction `Bundle`: one `Patient` with
    `deceasedDateTime` (the NHS number as the UK Core identifier
    `https://fhir.nhs.uk/Id/nhs-number`, `birthDate`, `gender`, `name`, `address.postalCode`,
    the UK Core ethnic category extension) and, where the death ended an admission, one
    `Encounter` (`class` IMP or EMER, `period`, `priority`, `location`, `serviceProvider`,
    `serviceType`). The Bundle's `identifier` (system and value) is the sender's key.

    The Bundle is validated against FHIR R4 first (unknown elements, arrays, complex types,
    required elements, date and dateTime formats and JSON types): a 422 OperationOutcome
    naming the element (`Encounter.period.start`), nothing stored.

    Organisations by ODS code (each must be in the registry, else a 422 naming the element):
    the site of death as the identifier (`https://fhir.nhs.uk/Id/ods-site-code` or
    `https://fhir.nhs.uk/Id/ods-organization-code`) of the Encounter's `location[].location`
    or its `serviceProvider`; the registered GP practice as the identifier
    (`https://fhir.nhs.uk/Id/ods-organization-code`) of a `Patient.generalPractitioner`.

    Recorded exactly as `POST /v1/death-notifications` records one; the answer is a
    `transaction-response` Bundle whose Patient entry's `location` is `Patient/<death id>`
    (`201 Created`, or `200 OK` when the key or the patient was known). A refusal is an
    OperationOutcome naming the element (422), a match of two deaths a 409, the Bundle's
    identifier already used for another patient a 409 naming `Bundle.identifier.value`. A
    Bundle under the same identifier with other details of the same patient is a correction
    (the Patient entry's `outcome` says whether it was applied).

    Scope: `notifications:write`.
    """
    notification = ingest.notification_body(bundle)
    try:
        stored = await notify_once(
            database, principal, None, notification, Channel.fhir, "/fhir/r4"
        )
    except ValidationFailed as error:
        raise ingest.mapped(error, bundle) from None
    except Conflict as conflict:
        raise ingest.mapped_conflict(conflict) from None
    created = stored.status == 201
    correction = stored.headers.get(CORRECTION_HEADER)
    return fhir_response(
        ingest.transaction_response(bundle, str(stored.body["death_id"]), created, correction)
    )
