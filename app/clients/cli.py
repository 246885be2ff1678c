"""`lfd clients create | list | revoke | rotate-key | expire | add-key` and `lfd signing-keys
rotate`: the service code the admin API uses (app.clients.service), from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.scopes import Scope
from app.clients import service
from app.config import get_settings
from app.db import Database
from app.models import Organisation
from app.organisations.cli import find_any


def _client_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise SystemExit("give the client's id (a UUID), as `lfd clients list` shows it") from None


async def _run(change: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    database = Database(get_settings())
    try:
        async with database.transaction() as session:
            return await change(session)
    except service.ClientNotFound:
        raise SystemExit("no such client") from None
    except ValueError as error:
        raise SystemExit(f"lfd clients: {error}") from None
    finally:
        await database.dispose()


async def _rotate(args: argparse.Namespace) -> int:
    client_id = _client_id(args.client_id)
    rotated = await _run(lambda s: service.rotate_key(s, client_id, args.grace_seconds))
    print(f"key:    {rotated.key}")
    print(f"the old key works until {rotated.client.previous_key_expires_at.isoformat()}")
    print("The key is shown once and stored only as a hash: keep it now.", file=sys.stderr)
    return 0


async def _expire(args: argparse.Namespace) -> int:
    client_id = _client_id(args.client_id)
    at = None
    if args.at != "never":
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            raise SystemExit("give the expiry as an ISO 8601 time with its offset") from None
    client = await _run(lambda s: service.expire_client(s, client_id, at))
    print(f"{client.id} expires {client.expires_at.isoformat() if client.expires_at else 'never'}")
    return 0


def _add_key(args: argparse.Namespace) -> int:
    client_id = _client_id(args.client_id)
    pem = Path(args.pem).read_text(encoding="utf-8") if args.pem else None
    jwks_url, kid = args.jwks_url, args.kid
    key = asyncio.run(
        _run(lambda s: service.add_public_key(s, client_id, pem=pem, jwks_url=jwks_url, kid=kid))
    )
    print(json.dumps({"id": str(key.id), "kid": key.kid, "jwks_url": key.jwks_url}))
    return 0


async def _rotate_signing(args: argparse.Namespace) -> int:
    from app.auth.oauth.signing import rotate_signing_key

    kid = await _run(rotate_signing_key)
    print(f"new signing key {kid}; the old one verifies tokens until they expire")
    return 0


def parse_scopes(raw: Sequence[str]) -> list[Scope]:
    scopes: list[Scope] = []
    for item in raw:
        for name in item.split(","):
            name = name.strip()
            if not name:
                continue
            try:
                scopes.append(Scope(name))
            except ValueError:
                known = ", ".join(scope.value for scope in Scope)
                raise SystemExit(f"unknown scope {name!r}; known scopes: {known}") from None
    return scopes


async def clients_create(args: argparse.Namespace) -> int:
    from app.auth.service import create_client

    database = Database(get_settings())
    try:
        async with database.transaction() as session:
            created = await create_client(
                session,
                args.name,
                parse_scopes(args.scope),
                pseudonymised=args.pseudonymised,
                organisation_id=await client_organisation(session, args),
                deployment_level=args.deployment,
            )
            labels = await organisation_labels(session)
    except ValueError as error:
        raise SystemExit(f"lfd clients create: {error}") from None
    finally:
        await database.dispose()
    organisation = created.client.organisation_id
    if args.json:
        print(
            json.dumps(
                {
                    "id": str(created.client.id),
                    "name": created.client.name,
                    "scopes": created.client.scopes,
                    "pseudonymised": created.client.pseudonymised,
                    "organisation_id": str(organisation) if organisation else None,
                    "key": created.key,
                }
            )
        )
    else:
        print(f"client {created.client.id} ({created.client.name})")
        print(f"scopes: {' '.join(created.client.scopes)}")
        if created.client.pseudonymised:
            print("pseudonymised: sees pseudonyms, age bands and months, never identifiers")
        print(
            f"organisation: {labels[organisation]}"
            if organisation
            else "deployment level: manages organisations (with admin), sees no patient data"
        )
        print(f"key:    {created.key}")
        print("The key is shown once and stored only as a hash: keep it now.", file=sys.stderr)
    return 0


async def clients_list(args: argparse.Namespace) -> int:
    from app.auth.service import list_clients

    database = Database(get_settings())
    try:
        async with database.transaction() as session:
            clients = await list_clients(session, include_revoked=args.all)
            labels = await organisation_labels(session)
    finally:
        await database.dispose()
    rows: list[dict[str, Any]] = [
        {
            "id": str(c.id),
            "name": c.name,
            "key_prefix": c.key_prefix,
            "scopes": c.scopes,
            "pseudonymised": c.pseudonymised,
            "organisation_id": str(c.organisation_id) if c.organisation_id else None,
            "organisation": labels.get(c.organisation_id) if c.organisation_id else None,
            "created_at": c.created_at.isoformat(),
            "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
        }
        for c in clients
    ]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
            whose = row["organisation"] or "(deployment)"
            print(
                f"{row['id']}  {row['name']:<30} {state:<10} {whose:<12} {' '.join(row['scopes'])}"
            )
    return 0


async def clients_revoke(args: argparse.Namespace) -> int:
    from app.auth.service import revoke_client

    try:
        client_id = uuid.UUID(args.client_id)
    except ValueError:
        raise SystemExit("give the client's id (a UUID), as `lfd clients list` shows it") from None
    database = Database(get_settings())
    try:
        async with database.transaction() as session:
            client = await revoke_client(session, client_id)
    finally:
        await database.dispose()
    if client is None:
        print(f"no client {client_id}", file=sys.stderr)
        return 1
    print(f"revoked {client.id} ({client.name})")
    return 0


def add_organisation_options(create: Any) -> None:
    """`lfd clients create`'s choice of organisation (docs/organisations.md)."""
    whose = create.add_mutually_exclusive_group()
    whose.add_argument(
        "--organisation",
        metavar="ODS_CODE_OR_ID",
        help="the organisation the client belongs to (its ODS code, id or alias); default: "
        "the default organisation",
    )
    whose.add_argument(
        "--deployment",
        action="store_true",
        help="a deployment-level client: of no organisation, it manages organisations (with "
        "admin) and sees no patient data",
    )


async def client_organisation(session: AsyncSession, args: argparse.Namespace) -> uuid.UUID | None:
    """The organisation `--organisation` names (None: the default, or none with
    `--deployment`); a closed or unknown one stops the command."""
    if not getattr(args, "organisation", None):
        return None
    organisation = await find_any(session, args.organisation)
    if organisation is None:
        raise SystemExit(
            f"no organisation {args.organisation!r}: `lfd organisations list` shows the registry"
        )
    if organisation.closed_at is not None:
        raise SystemExit(f"{organisation.ods_code or organisation.name} is closed")
    return organisation.id


async def organisation_labels(session: AsyncSession) -> dict[uuid.UUID, str]:
    """Each organisation's ODS code (its name when it has none), for `lfd clients list`."""
    rows = await session.execute(select(Organisation.id, Organisation.ods_code, Organisation.name))
    return {row_id: code or name for row_id, code, name in rows}


def add_client_commands(clients: Any) -> None:
    rotate = clients.add_parser("rotate-key", help="a new API key; the old one works a while")
    rotate.add_argument("client_id")
    rotate.add_argument("--grace-seconds", type=int, default=86400)
    rotate.set_defaults(func=lambda a: asyncio.run(_rotate(a)))
    expire = clients.add_parser("expire", help="set when a client's credentials stop working")
    expire.add_argument("client_id")
    expire.add_argument("at", help="an ISO 8601 time with offset, or 'never'")
    expire.set_defaults(func=lambda a: asyncio.run(_expire(a)))
    add_key = clients.add_parser(
        "add-key", help="register a public key for signed-JWT client credentials"
    )
    add_key.add_argument("client_id")
    source = add_key.add_mutually_exclusive_group(required=True)
    source.add_argument("--pem", metavar="FILE", help="a PEM public key file (RSA or P-256)")
    source.add_argument("--jwks-url", help="an https URL serving the client's JWKS")
    add_key.add_argument("--kid", help="the kid the client's assertions name")
    add_key.set_defaults(func=_add_key)


def add_signing_key_commands(sub: Any) -> None:
    keys = sub.add_parser("signing-keys", help="the service's access-token signing keys")
    actions = keys.add_subparsers(dest="action", required=True)
    rotate = actions.add_parser("rotate", help="sign with a new key from now on")
    rotate.set_defaults(func=lambda a: asyncio.run(_rotate_signing(a)))
