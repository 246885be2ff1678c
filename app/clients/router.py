"""Client administration over the API (scope `admin`): the same service code as
`lfd clients`, and every change audited (resource type `api_client`), in the log of the
organisation the client belongs to.

A deployment-level administrator (a client of no organisation) reads no patient data, so it
makes or re-keys (a new API key, a public key for signed assertions) a client of an
organisation only when that client's scopes reach no patient data
(app.auth.scopes.ADMINISTRATIVE_SCOPES): otherwise it could read through the client it made.
An organisation's own administrator makes its patient-data clients, or the operator does on
the command line (`lfd clients create --organisation`), which needs the database itself."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import REFUSED, AuditEntry, write_audit
from app.auth.deps import Administrator
from app.auth.principal import Principal
from app.auth.routing import AuthFirstRoute
from app.auth.scopes import ADMINISTRATIVE_SCOPES, patient_data_scopes
from app.auth.service import create_client, list_clients, revoke_client
from app.clients import service
from app.clients.schemas import (
    ClientCreate,
    ClientList,
    ClientOut,
    ClientWithKey,
    Expiry,
    PublicKeyCreate,
    PublicKeyList,
    PublicKeyOut,
    Rotation,
    UsersPolicy,
)
from app.clients.service import administered, administers, administers_organisation
from app.db import Database, DatabaseDep
from app.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    field_error,
    problem_responses,
)
from app.kit.etag import NOT_MODIFIED, not_modified
from app.models import ApiClient, Organisation
from app.reach import default_organisation_id

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/clients", tags=["clients"])
AUTH = (Unauthorized, Forbidden)
BODY = (PayloadTooLarge, UnsupportedMediaType, ValidationFailed)


class PatientDataClientRefused(Forbidden):
    """A deployment-level client making or re-keying a client of an organisation whose scopes
    reach patient data. Audited in that organisation's log too."""

    slug = "patient-data-client-refused"
    title = "A deployment-level client makes no client that reaches patient data"

    def __init__(self, detail: str, scopes: list[str], organisation_id: uuid.UUID) -> None:
        super().__init__(detail, extra={"patient_data_scopes": scopes})
        self.organisation_id = organisation_id


def check_minting(
    principal: Principal, scopes: list[str], organisation_id: uuid.UUID, what: str
) -> None:
    """Refuse a deployment-level client a client of an organisation that reaches patient data
    (``what``: what it was doing, for the message)."""
    if principal.organisation_id is not None:
        return
    reaching = patient_data_scopes(scopes)
    if not reaching:
        return
    allowed = ", ".join(sorted(scope.value for scope in ADMINISTRATIVE_SCOPES))
    raise PatientDataClientRefused(
        f"A deployment-level client reads no patient data, so it {what} a client of an "
        f"organisation only when that client's scopes reach none ({allowed}); these do: "
        f"{', '.join(reaching)}. The organisation's own administrator client makes such "
        "clients (POST /v1/clients with its key), or the operator on the command line "
        "(`lfd clients create --organisation CODE`).",
        reaching,
        organisation_id,
    )


@asynccontextmanager
async def _change(
    database: Database, principal: Principal, action: str, client_id: uuid.UUID | None
) -> AsyncIterator[AsyncSession]:
    """One transaction for the change and its audit row; the service's refusals as problems."""
    try:
        async with database.transaction() as session:
            if client_id is not None:
                await administered(session, principal, client_id)
            yield session
            if client_id is not None:
                # Filed under the client's organisation, so that its own audit log shows what a
                # deployment-level administrator did to its clients.
                owner = await session.scalar(
                    select(ApiClient.organisation_id).where(ApiClient.id == client_id)
                )
                entry = AuditEntry(
                    f"client.{action}", "api_client", client_id, None, organisation_id=owner
                )
                await write_audit(session, principal, [entry])
    except PatientDataClientRefused as refused:
        # Rolled back; kept in the organisation's own log as well as the deployment's.
        async with database.transaction() as session:
            entry = AuditEntry(
                f"client.{action}",
                "api_client",
                client_id,
                None,
                outcome=REFUSED,
                organisation_id=refused.organisation_id,
            )
            await write_audit(session, principal, [entry])
        raise
    except service.ClientNotFound:
        raise NotFound("No such client (or key).") from None
    except service.ClientRevoked:
        raise Conflict("The client is revoked.") from None
    except ValueError as error:
        raise ValidationFailed(str(error)) from None


async def _check_credentials(
    session: AsyncSession, principal: Principal, client_id: uuid.UUID
) -> None:
    """A new credential (API key, public key) for an organisation's client is its holder's to
    use: refused to a deployment-level client when the client reaches patient data."""
    client = await session.get(ApiClient, client_id)
    if client is not None and client.organisation_id is not None:
        check_minting(principal, client.scopes, client.organisation_id, "issues credentials to")


def _out(client: ApiClient, key: str | None = None) -> ClientOut:
    out = ClientOut.model_validate(client)
    return ClientWithKey(**out.model_dump(), key=key) if key is not None else out


@router.post(
    "",
    response_model=ClientWithKey,
    status_code=201,
    responses=problem_responses(*AUTH, *BODY),
)
async def create(body: ClientCreate, principal: Administrator, database: DatabaseDep) -> ClientOut:
    """Create a client; the answer holds its API key, shown this once. Register public keys
    for signed-JWT client credentials with `POST /v1/clients/{id}/public-keys`.

    An organisation's administrator creates clients of the organisations it reaches. A
    deployment-level administrator (a client of no organisation) reads no patient data, and
    creates clients of an organisation with scopes that reach none only (`events:read`,
    `metrics:read`, `webhooks:manage`): any other scope is a 403
    `patient-data-client-refused`, audited in the organisation's log. The organisation's own
    administrator, or the operator (`lfd clients create --organisation`), makes the others.

    Scope: `admin`."""
    async with _change(database, principal, "create", None) as session:
        organisation_id = body.organisation_id or principal.organisation_id
        if organisation_id is not None and not administers_organisation(principal, organisation_id):
            raise ValidationFailed(
                "An organisation's administrator creates clients of the organisations it "
                "reaches only.",
                errors=[field_error("/organisation_id", "Not an organisation you administer.")],
            )
        if organisation_id is not None and await session.get(Organisation, organisation_id) is None:
            raise ValidationFailed(
                "No such organisation.",
                errors=[field_error("/organisation_id", "No organisation with that id.")],
            )
        owner = organisation_id or await default_organisation_id(session)
        check_minting(principal, [scope.value for scope in body.scopes], owner, "creates")
        created = await create_client(
            session, body.name, body.scopes, body.pseudonymised, organisation_id=organisation_id
        )
        created.client.expires_at = body.expires_at
        await session.flush()
        entry = AuditEntry(
            "client.create",
            "api_client",
            created.client.id,
            None,
            organisation_id=created.client.organisation_id,
        )
        await write_audit(session, principal, [entry])
    return _out(created.client, created.key)


@router.get("", response_model=ClientList, responses=problem_responses(*AUTH))
async def list_all(
    principal: Administrator,
    database: DatabaseDep,
    include_revoked: bool = Query(default=False, description="Include revoked clients."),
) -> ClientList:
    """The clients (never their keys).

    Scope: `admin`."""
    async with database.transaction() as session:
        clients = await list_clients(session, include_revoked=include_revoked)
    shown = [client for client in clients if administers(principal, client)]
    return ClientList(items=[ClientOut.model_validate(client) for client in shown])


def client_etag(out: ClientOut) -> str:
    """A client row has no version column: its tag is a digest of what the API shows of it,
    so any change (rotation, expiry, revocation, users) changes the tag."""
    digest = hashlib.sha256(out.model_dump_json().encode()).hexdigest()[:20]
    return f'"{out.id.hex}.{digest}"'


@router.get(
    "/{client_id}",
    response_model=ClientOut,
    responses={**NOT_MODIFIED, **problem_responses(*AUTH, NotFound)},
)
async def read(
    client_id: uuid.UUID,
    principal: Administrator,
    database: DatabaseDep,
    response: Response,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> ClientOut | Response:
    """One client, with its `ETag` (`If-None-Match` answers 304 while it is unchanged).

    Scope: `admin`."""
    async with database.transaction() as session:
        client = await session.get(ApiClient, client_id)
    if client is None or not administers(principal, client):
        raise NotFound("No such client.")
    out = _out(client)
    tag = client_etag(out)
    if not_modified(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return out


@router.post(
    "/{client_id}/revoke",
    response_model=ClientOut,
    responses=problem_responses(*AUTH, NotFound),
)
async def revoke(
    client_id: uuid.UUID, principal: Administrator, database: DatabaseDep
) -> ClientOut:
    """Revoke the client: its API keys and access tokens stop working at once.

    Scope: `admin`."""
    async with _change(database, principal, "revoke", client_id) as session:
        client = await revoke_client(session, client_id)
        if client is None:
            raise service.ClientNotFound(str(client_id))
    return _out(client)


@router.post(
    "/{client_id}/expire",
    response_model=ClientOut,
    responses=problem_responses(*AUTH, NotFound, Conflict, *BODY),
)
async def expire(
    client_id: uuid.UUID, body: Expiry, principal: Administrator, database: DatabaseDep
) -> ClientOut:
    """Set when the client's credentials stop working (null: never).

    Scope: `admin`."""
    async with _change(database, principal, "expire", client_id) as session:
        client = await service.expire_client(session, client_id, body.expires_at)
    return _out(client)


@router.post(
    "/{client_id}/rotate-key",
    response_model=ClientWithKey,
    responses=problem_responses(*AUTH, NotFound, Conflict, *BODY),
)
async def rotate_key(
    client_id: uuid.UUID, body: Rotation, principal: Administrator, database: DatabaseDep
) -> ClientOut:
    """A new API key, shown this once; the old key keeps working for `grace_seconds`.

    A deployment-level administrator re-keys only clients whose scopes reach no patient data
    (else a 403 `patient-data-client-refused`, as for `POST /v1/clients`).

    Scope: `admin`."""
    async with _change(database, principal, "rotate_key", client_id) as session:
        await _check_credentials(session, principal, client_id)
        rotated = await service.rotate_key(session, client_id, body.grace_seconds)
    return _out(rotated.client, rotated.key)


@router.get(
    "/{client_id}/public-keys",
    response_model=PublicKeyList,
    responses=problem_responses(*AUTH, NotFound),
)
async def public_keys(
    client_id: uuid.UUID, principal: Administrator, database: DatabaseDep
) -> PublicKeyList:
    """The public keys that verify the client's assertions, retired ones included.

    Scope: `admin`."""
    try:
        async with database.transaction() as session:
            keys = await service.list_public_keys(session, client_id)
    except service.ClientNotFound:
        raise NotFound("No such client.") from None
    return PublicKeyList(items=[PublicKeyOut.model_validate(key) for key in keys])


@router.post(
    "/{client_id}/public-keys",
    response_model=PublicKeyOut,
    status_code=201,
    responses=problem_responses(*AUTH, NotFound, Conflict, *BODY),
)
async def add_public_key(
    client_id: uuid.UUID, body: PublicKeyCreate, principal: Administrator, database: DatabaseDep
) -> PublicKeyOut:
    """Register a public key (PEM) or a JWKS URL for the client's signed assertions at
    `POST /oauth2/token`. Several may be current at once, for rotation.

    A deployment-level administrator registers keys only for clients whose scopes reach no
    patient data (else a 403 `patient-data-client-refused`, as for `POST /v1/clients`).

    Scope: `admin`."""
    async with _change(database, principal, "add_public_key", client_id) as session:
        await _check_credentials(session, principal, client_id)
        key = await service.add_public_key(
            session, client_id, pem=body.pem, jwks_url=body.jwks_url, kid=body.kid
        )
    return PublicKeyOut.model_validate(key)


@router.post(
    "/{client_id}/public-keys/{key_id}/retire",
    response_model=PublicKeyOut,
    responses=problem_responses(*AUTH, NotFound, *BODY),
)
async def retire_public_key(
    client_id: uuid.UUID,
    key_id: uuid.UUID,
    body: Rotation,
    principal: Administrator,
    database: DatabaseDep,
) -> PublicKeyOut:
    """The key stops verifying assertions after `grace_seconds`.

    Scope: `admin`."""
    async with _change(database, principal, "retire_public_key", client_id) as session:
        key = await service.retire_public_key(session, client_id, key_id, body.grace_seconds)
    return PublicKeyOut.model_validate(key)


@router.post(
    "/{client_id}/users",
    response_model=ClientOut,
    responses=problem_responses(*AUTH, NotFound, Conflict, *BODY),
)
async def users(
    client_id: uuid.UUID, body: UsersPolicy, principal: Administrator, database: DatabaseDep
) -> ClientOut:
    """How the client names the people it acts for: the identity provider whose signed
    `X-User-Assertion` it sends (verified users, recorded with their role in the audit), and
    whether free-text `X-On-Behalf-Of` is still accepted (recorded as unverified).

    Scope: `admin`."""
    provider = body.identity_provider
    async with _change(database, principal, "configure_users", client_id) as session:
        config = (
            service.user_assertion_config(
                provider.issuer,
                provider.audience,
                jwks_url=provider.jwks_url,
                pem=provider.pem,
                user_claim=provider.user_claim,
                role_claim=provider.role_claim,
                required=provider.required,
            )
            if provider is not None
            else None
        )
        client = await service.configure_users(
            session, client_id, config, body.allow_unverified_on_behalf_of
        )
    return _out(client)
