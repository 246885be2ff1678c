"""The query layer's criteria reach a table wherever a statement names it (app.scoping: only
the criteria of the tables a statement names are added, to keep its cache key cheap). Each
statement here names the deaths of two trusts in a different shape and, in one trust's
scope, must return that trust's only. On SQLite the query layer is the only guard; on
PostgreSQL the policies hold as well. And the SQL of a statement with the criteria of the
tables it names is the SQL with all of them (an UPDATE ... FROM names its subquery only
through the subquery's columns)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import delete, exists, func, literal, select, true, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from app import scoping
from app.auth.scopes import Scope
from app.db import Database
from app.models import Death, Organisation, Referral, Screening
from app.models.base import Base
from app.scoping import DataScope, criteria, scoped
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


async def test_an_update_from_a_subquery_reads_only_the_rows_in_scope(
    database: Database, two_trusts: dict[str, Any]
) -> None:
    """UPDATE ... FROM (a subquery), as app.programmes.cohort links a case to its referral:
    the statement names the subquery's table only through the subquery's columns (in its
    WHERE and SET), and that table is confined all the same: my death cannot copy a value
    from their screening."""
    mine, theirs = two_trusts["deaths"]["mine"], two_trusts["deaths"]["theirs"]
    other = (
        select(Screening.death_id, Screening.examiner_name)
        .where(Screening.death_id == theirs)
        .subquery("other")
    )
    with scoped(DataScope(False, frozenset({two_trusts["organisations"]["mine"]}))):
        async with database.transaction() as session:
            changed = await session.execute(
                update(Death)
                .where(Death.id == mine, other.c.death_id == theirs)
                .values(ward=other.c.examiner_name),
                execution_options={"synchronize_session": False},
            )
            assert getattr(changed, "rowcount", None) == 0
    async with database.transaction() as session:
        wards = set((await session.scalars(select(Death.ward).where(Death.id == mine))).all())
        examiners = set((await session.scalars(select(Screening.examiner_name))).all())
    assert not wards & examiners


def _made() -> Any:
    return select(Referral.id, Referral.death_id).where(Referral.site == "x").subquery("made")


# Statements that name a table only through a subquery's columns, and others; the SQL of each
# with the criteria of the tables it names must be that with all of them (which add nothing
# for a table the statement does not name).
COMPILED: dict[str, Callable[[], Any]] = {
    "UPDATE ... FROM a subquery": lambda: (
        update(Death).where(Death.id == _made().c.death_id).values(ward="x")
    ),
    "UPDATE ... SET from a subquery": lambda: (
        update(Organisation).where(Organisation.id == Death.id).values(name=_made().c.id)
    ),
    "UPDATE ... FROM a CTE": lambda: (
        lambda made: update(Organisation).where(Organisation.id == made.c.death_id).values(name="x")
    )(select(Referral.death_id).cte("made")),
    "UPDATE ... FROM a subquery of a subquery": lambda: (
        lambda made: update(Organisation).where(Organisation.id == made.c.death_id).values(name="x")
    )(select(_made().c.death_id).subquery("outer")),
    "DELETE ... USING a subquery": lambda: delete(Organisation).where(
        Organisation.id == _made().c.death_id
    ),
    "a lateral": lambda: (lambda made: select(Death.id, made.c.id).join(made, true()))(
        select(Referral.id).where(Referral.death_id == Death.id).limit(1).lateral()
    ),
    "a subquery's column in WHERE": lambda: select(Death.id).where(Death.id == _made().c.death_id),
}


@pytest.mark.parametrize("shape", list(COMPILED))
def test_the_named_tables_criteria_compile_as_all_of_them(shape: str) -> None:
    scope = DataScope(False, frozenset({uuid.uuid4()}), frozenset({uuid.uuid4()}))
    statement = COMPILED[shape]()
    state = SimpleNamespace(
        statement=statement,
        is_select=statement.is_select,
        is_update=statement.is_update,
        is_delete=statement.is_delete,
        execution_options={},
        is_column_load=False,
        is_relationship_load=False,
    )
    with scoped(scope):
        scoping._apply(state)  # type: ignore[arg-type]
    for dialect in (postgresql.dialect(), sqlite.dialect()):
        if shape.startswith("DELETE ... USING") and dialect.name == "sqlite":
            continue  # SQLite has no DELETE ... USING
        everything = statement.options(*criteria(scope)).compile(dialect=dialect)
        assert str(state.statement.compile(dialect=dialect)) == str(everything)


def _confined_tables() -> list[str]:
    scope = DataScope(False, frozenset({uuid.uuid4()}))
    return sorted(str(table.name) for table in scoping._criteria(scope))  # type: ignore[attr-defined]


@pytest.mark.parametrize("table", _confined_tables())
def test_an_alias_of_every_confined_model_is_confined(table: str) -> None:
    """Each model's criteria reach an alias of it too (``include_aliases``): the SQL of
    ``select(aliased(Model))`` in a limited scope is not the unscoped SQL."""
    scope = DataScope(False, frozenset({uuid.uuid4()}), frozenset({uuid.uuid4()}))
    model = next(m.class_ for m in Base.registry.mappers if m.local_table.name == table)
    statement = select(aliased(model))
    state = SimpleNamespace(
        statement=statement,
        is_select=True,
        is_update=False,
        is_delete=False,
        execution_options={},
        is_column_load=False,
        is_relationship_load=False,
    )
    with scoped(scope):
        scoping._apply(state)  # type: ignore[arg-type]
    scoped_sql = str(state.statement.compile(dialect=sqlite.dialect()))
    assert scoped_sql != str(statement.compile(dialect=sqlite.dialect()))
    assert "WHERE" in scoped_sql
