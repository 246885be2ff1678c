"""The query layer's criteria reach a table wherever a statement names it (app.scoping: only
the criteria of the tables a statement names are added, to keep its cache key cheap). Each
statement here names the deaths of two trusts in a different shape and, in one trust's
scope, must return that trust's only. On SQLite the query layer is the only guard; on
PostgreSQL the policies hold as well."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import exists, func, literal, select, union_all, update
from sqlalchemy.orm import aliased

from app.auth.scopes import Scope
from app.db import Database
from app.models import Death, Organisation, Screening
from app.scoping import DataScope, scoped
from tests.factories import idem, screening_body
from tests.kit.care_organisations import add, client_of, trust_code


@pytest.fixture
async def two_trusts(database: Database, http: Any) -> dict[str, Any]:
    deaths: dict[str, uuid.UUID] = {}
    organisations: dict[str, uuid.UUID] = {}
    for name in ("mine", "theirs"):
        trust = await add(database, "trust", f"Scoping {name} Trust", trust_code)
        client = await client_of(database, http, trust, Scope.screenings_write)
        response = await client.post("/v1/screenings", json=screening_body(), headers=idem())
        assert response.status_code == 201, response.text
        deaths[name] = uuid.UUID(response.json()["death_id"])
        organisations[name] = trust.id
    return {"deaths": deaths, "organisations": organisations}


def _ids(two: dict[str, Any]) -> list[uuid.UUID]:
    return list(two["deaths"].values())


ALIASED = aliased(Death)

SHAPES: dict[str, Callable[[list[uuid.UUID]], Any]] = {
    "the entity": lambda ids: select(Death.id).where(Death.id.in_(ids)),
    "an alias": lambda ids: select(ALIASED.id).where(ALIASED.id.in_(ids)),
    "a join": lambda ids: (
        select(Death.id)
        .select_from(Organisation)
        .join(Death, Death.organisation_id == Organisation.id)
        .where(Death.id.in_(ids))
    ),
    "a child table": lambda ids: select(Screening.death_id).where(Screening.death_id.in_(ids)),
    "an IN subquery": lambda ids: select(Organisation.id).where(
        Organisation.id.in_(select(Death.organisation_id).where(Death.id.in_(ids)))
    ),
    "an EXISTS": lambda ids: select(Organisation.id).where(
        exists().where(Death.organisation_id == Organisation.id, Death.id.in_(ids))
    ),
    "a scalar subquery": lambda ids: select(
        select(func.count()).select_from(Death).where(Death.id.in_(ids)).scalar_subquery()
    ),
    "a subquery in FROM": lambda ids: select(func.count()).select_from(
        select(Death.id).where(Death.id.in_(ids)).subquery()
    ),
    "a CTE": lambda ids: select(literal(1)).select_from(
        select(Death.id).where(Death.id.in_(ids)).cte("listed")
    ),
    "a UNION": lambda ids: union_all(
        select(Death.id).where(Death.id == ids[0]), select(Death.id).where(Death.id == ids[1])
    ),
}

# What each shape returns in the first trust's scope, from its rows and the other's.
EXPECTED = {
    "the entity": "mine",
    "an alias": "mine",
    "a join": "mine",
    "a child table": "mine",
    "an IN subquery": "my organisation",
    "an EXISTS": "my organisation",
    "a scalar subquery": 1,
    "a subquery in FROM": 1,
    "a CTE": 1,
    "a UNION": "mine",
}


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_the_criteria_reach_the_table_in(
    database: Database, two_trusts: dict[str, Any], shape: str
) -> None:
    ids = _ids(two_trusts)
    statement = SHAPES[shape](ids)
    expected = EXPECTED[shape]
    with scoped(DataScope(False, frozenset({two_trusts["organisations"]["mine"]}))):
        async with database.transaction() as session:
            rows = list((await session.execute(statement)).scalars())
    if expected == "mine":
        assert rows == [two_trusts["deaths"]["mine"]]
    elif expected == "my organisation":
        assert rows == [two_trusts["organisations"]["mine"]]
    else:
        assert rows == [expected]


async def test_an_update_changes_only_the_rows_in_scope(
    database: Database, two_trusts: dict[str, Any]
) -> None:
    ids = _ids(two_trusts)
    with scoped(DataScope(False, frozenset({two_trusts["organisations"]["mine"]}))):
        async with database.transaction() as session:
            changed = await session.execute(
                update(Death).where(Death.id.in_(ids)).values(ward="Scoped ward"),
                execution_options={"synchronize_session": False},
            )
            assert getattr(changed, "rowcount", None) == 1
    async with database.transaction() as session:
        wards = dict(
            (await session.execute(select(Death.id, Death.ward).where(Death.id.in_(ids)))).all()
        )
    assert wards[two_trusts["deaths"]["mine"]] == "Scoped ward"
    assert wards[two_trusts["deaths"]["theirs"]] != "Scoped ward"
