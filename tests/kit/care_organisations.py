"""Organisations of the registry made straight through the ORM for a test (the registry's own
API is tested elsewhere), each with an ODS code no other row of the test database holds, and
clients that belong to one of them."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.db import Database
from app.models import Organisation
from tests.conftest import Api

ALNUM = string.ascii_uppercase + string.digits
_rng = random.Random()


def trust_code() -> str:
    return "R" + "".join(_rng.choices(ALNUM, k=2))


def site_code() -> str:
    return "R" + "".join(_rng.choices(ALNUM, k=4))


def practice_code() -> str:
    return _rng.choice("ABCDEFGHJKLMNP") + "".join(_rng.choices(string.digits, k=5))


def icb_code() -> str:
    return "Q" + "".join(_rng.choices(ALNUM, k=2))


@dataclass(frozen=True)
class Org:
    id: uuid.UUID
    ods_code: str | None
    name: str
    kind: str

    def ref(self) -> dict[str, Any]:
        """The organisation as a death or review shows it."""
        return {"id": str(self.id), "ods_code": self.ods_code, "name": self.name, "kind": self.kind}


async def _taken(session: Any, code: str) -> bool:
    found = await session.scalar(
        select(func.count()).where(func.upper(Organisation.ods_code) == code.upper())
    )
    return bool(found)


async def absent(database: Database, code: Callable[[], str] = site_code) -> str:
    """A code of the right form that no organisation of the test database holds (the
    database may outlive one run: a fixed code could have been added by an earlier one)."""
    async with database.transaction() as session:
        while await _taken(session, candidate := code()):
            pass
    return candidate


async def add(
    database: Database,
    kind: str,
    name: str,
    code: Callable[[], str] | str | None,
    parent: Org | None = None,
) -> Org:
    """A new organisation; ``code`` a maker of codes (tried until one is free), a code, or None."""
    async with database.transaction() as session:
        ods_code = code if isinstance(code, str) or code is None else None
        while ods_code is None and callable(code):
            candidate = code()
            ods_code = None if await _taken(session, candidate) else candidate
        row = Organisation(
            ods_code=ods_code,
            name=f"{name} {uuid.uuid4().hex[:6]}",
            kind=kind,
            parent_id=parent.id if parent else None,
        )
        session.add(row)
        await session.flush()
        return Org(row.id, row.ods_code, row.name, row.kind)


async def site_of(database: Database, trust: Org, name: str = "Site") -> Org:
    """A site of ``trust``: its code the trust's and two more characters."""
    assert trust.ods_code is not None
    prefix = trust.ods_code
    return await add(
        database, "site", name, lambda: prefix + "".join(_rng.choices(ALNUM, k=2)), trust
    )


async def client_of(
    database: Database, http: Any, organisation: Org, *scopes: Scope, pseudonymised: bool = False
) -> Api:
    async with database.transaction() as session:
        created = await create_client(
            session,
            f"client of {organisation.name}",
            list(scopes) or [Scope.admin],
            pseudonymised=pseudonymised,
            organisation_id=organisation.id,
        )
    return Api(http, created.key, created.client.id)
