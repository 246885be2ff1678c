"""Organisations for tests: ODS codes no other test of the run has used, and API clients bound
to an organisation (or to none: deployment level)."""

from __future__ import annotations

import random
import string
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.db import Database
from app.models import Organisation
from tests.conftest import Api
from tests.factories import idem

_RNG = random.Random()
_USED: set[str] = set()
_ALNUM = string.ascii_uppercase + string.digits


async def remember_codes(database: Database) -> None:
    """Count the codes the database already holds as used (a PostgreSQL test database lives
    on between runs)."""
    async with database.transaction() as session:
        held = await session.scalars(select(Organisation.ods_code))
        _USED.update(code for code in held if code)


def _draw(make: Any) -> str:
    for _ in range(10_000):
        code: str = make()
        if code not in _USED:
            _USED.add(code)
            return code
    raise AssertionError("ran out of test ODS codes")


def trust_code() -> str:
    # R + 2, never one of the codes the ODS file fixtures hold (tests/fixtures/ods).
    return _draw(lambda: "R" + _RNG.choice("0123456789") + _RNG.choice(_ALNUM))


def letters_code() -> str:
    """R + 2 letters: a code of letters only (one an alias could also be), not held by any
    organisation the database had when remember_codes last ran, nor drawn before."""
    return _draw(lambda: "R" + "".join(_RNG.choices(string.ascii_uppercase, k=2)))


def icb_code() -> str:
    return _draw(lambda: "Q" + _RNG.choice("0123456789") + _RNG.choice(_ALNUM))


def sub_icb_code() -> str:
    return _draw(lambda: f"{_RNG.randrange(100):02d}" + _RNG.choice(string.ascii_uppercase))


def practice_code() -> str:
    return _draw(lambda: _RNG.choice("WXYZ") + f"{_RNG.randrange(100_000):05d}")


def unique_name(what: str) -> str:
    return f"{what} {uuid.uuid4().hex[:10]}"


async def bound_client(
    database: Database,
    http: httpx.AsyncClient,
    *scopes: Scope,
    organisation_id: uuid.UUID | str | None = None,
    deployment: bool = False,
) -> Api:
    """A client of ``organisation_id`` (the default organisation when None), or with
    ``deployment`` of no organisation, holding ``scopes`` (admin when none)."""
    async with database.transaction() as session:
        created = await create_client(
            session,
            f"test client {uuid.uuid4().hex[:6]}",
            list(scopes) or [Scope.admin],
            organisation_id=uuid.UUID(str(organisation_id)) if organisation_id else None,
            deployment_level=deployment,
        )
    return Api(http, created.key, created.client.id)


async def register(api: Api, **body: Any) -> dict[str, Any]:
    """POST the organisation; the 201's body."""
    response = await api.post("/v1/organisations", json=body, headers=idem())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
