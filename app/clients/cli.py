"""`lfd clients rotate-key | expire | add-key` and `lfd signing-keys rotate`: the service code
the admin API uses (app.clients.service), from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clients import service
from app.config import get_settings
from app.db import Database


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
