"""A forgotten filter fails closed (issue 16): the query layer confines every ORM statement to
the data scope, and on PostgreSQL the row-level security policies alone refuse what a query
that names no organisation at all would otherwise read or write."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.db import Database
from app.models import Death, Organisation, Referral
from app.scoping import DataScope, criteria, scoped
from tests.conftest import SERVICE_ROLE, MakeApi
from tests.factories import record_unexpected


async def _two_trusts(database: Database, make_api: MakeApi) -> dict[str, Any]:
    ids = {}
    async with database.transaction() as session:
        for name in ("RLS trust A", "RLS trust B"):
            made = Organisation(id=uuid.uuid4(), name=name, kind="trust", aliases=[], settings={})
            session.add(made)
            ids[name] = made.id
    a = await make_api(organisation_id=ids["RLS trust A"])
    b = await make_api(organisation_id=ids["RLS trust B"])
    in_a = await record_unexpected(a)
    in_b = await record_unexpected(b)
    return {
        "a": ids["RLS trust A"],
        "b": ids["RLS trust B"],
        "death_a": uuid.UUID(in_a["death"]["id"]),
        "death_b": uuid.UUID(in_b["death"]["id"]),
    }


async def test_the_query_layer_confines_a_statement_that_names_no_organisation(
    database: Database, make_api: MakeApi
) -> None:
    made = await _two_trusts(database, make_api)
    pair = [made["death_a"], made["death_b"]]
    only_a = DataScope(False, frozenset({made["a"]}))
    with scoped(only_a):
        async with database.transaction() as session:
            deaths = (await session.scalars(select(Death.id).where(Death.id.in_(pair)))).all()
            referrals = (
                await session.scalars(select(Referral.death_id).where(Referral.death_id.in_(pair)))
            ).all()
            # An UPDATE that forgets its filter touches only the scope's rows.
            from sqlalchemy import update

            touched = await session.execute(
                update(Death).where(Death.id.in_(pair)).values(version=Death.version)
            )
    assert deaths == [made["death_a"]]
    assert set(referrals) == {made["death_a"]}
    assert touched.rowcount == 1  # type: ignore[attr-defined]
    with scoped(DataScope(False, frozenset({made["a"]}), frozenset({made["death_b"]}))):
        async with database.transaction() as session:
            shared = set((await session.scalars(select(Death.id).where(Death.id.in_(pair)))).all())
    assert shared == set(pair)


@pytest.mark.postgres_only
async def test_the_policies_alone_refuse_what_a_query_without_a_filter_would_read(
    database: Database, make_api: MakeApi, database_url: str
) -> None:
    made = await _two_trusts(database, make_api)
    pair = {"a": str(made["death_a"]), "b": str(made["death_b"])}
    # A raw connection as the service's role: no ORM, no criteria, only the policies.
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            role = (
                await connection.execute(
                    text(
                        "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles"
                        " WHERE rolname = current_user"
                    )
                )
            ).one()
            assert tuple(role) == (SERVICE_ROLE, False, False)
            owner = await connection.scalar(
                text("SELECT tableowner FROM pg_tables WHERE tablename = 'deaths'")
            )
            assert owner != SERVICE_ROLE
            await connection.commit()
            ids = "SELECT id::text FROM deaths WHERE id IN (:a, :b) ORDER BY id"
            referrals = "SELECT DISTINCT death_id::text FROM referrals WHERE death_id IN (:a, :b)"

            async def seen(settings: dict[str, str]) -> tuple[set[str], set[str]]:
                async with connection.begin():
                    for name, value in settings.items():
                        await connection.execute(
                            text("SELECT set_config(:name, :value, true)"),
                            {"name": name, "value": value},
                        )
                    deaths = set((await connection.scalars(text(ids), pair)).all())
                    referred = set((await connection.scalars(text(referrals), pair)).all())
                    return deaths, referred

            # No scope at all (a transaction that forgot to set one): nothing.
            assert await seen({}) == (set(), set())
            only_a = {"lfd.scope": "some", "lfd.organisations": "{" + str(made["a"]) + "}"}
            assert await seen(only_a) == ({pair["a"]}, {pair["a"]})
            shared_b = {**only_a, "lfd.shared_deaths": "{" + pair["b"] + "}"}
            assert await seen(shared_b) == ({pair["a"], pair["b"]}, {pair["a"], pair["b"]})
            assert await seen({"lfd.scope": "all"}) == (set(pair.values()),) * 2

            # Writing into another organisation's death is refused by the policies' check.
            with pytest.raises(DBAPIError, match="row-level security"):
                async with connection.begin():
                    for name, value in only_a.items():
                        await connection.execute(
                            text("SELECT set_config(:name, :value, true)"),
                            {"name": name, "value": value},
                        )
                    await connection.execute(
                        text("UPDATE deaths SET organisation_id = :b WHERE id = :a"),
                        {"a": pair["a"], "b": str(made["b"])},
                    )
    finally:
        await engine.dispose()


# Tables that hold no patient data or plans of their own (reached through another table, or
# the deployment's): row-level security is not theirs. Any other table naming a death, a
# review, a screening, a judgement, a plan or an action must FORCE row-level security.
NOT_SCOPED_BY_POLICY = {
    "case_shares",  # read by the guard before any scope exists; the query layer confines it
    "history_import_problems",  # read through its import (scoped); references, never values
    "action_findings",  # a link table of ids
    "history_imports",  # the query layer confines them (docs/organisations.md)
    "api_clients",  # clients: no patient data; the clients' API confines them
}
KEYS = {
    "death_id",
    "death_ids",
    "review_id",
    "screening_id",
    "judgement_id",
    "plan_id",
    "action_id",
    "organisation_id",  # a record of an organisation's (a programme, a theme mapping)
    "programme_id",
    "recommendation_id",
}


@pytest.mark.postgres_only
async def test_every_table_of_patient_data_forces_row_level_security(
    database_url: str,
) -> None:
    from app.models import Base

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            forced = set(
                (
                    await connection.scalars(
                        text(
                            # 'p': a table partitioned by month (migration 0025), whose
                            # policies hold for every partition read through it.
                            "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p')"
                            " AND relrowsecurity AND relforcerowsecurity"
                            # and a policy that says who reads it (none: nobody reads it,
                            # which fails closed but is a table the service cannot use)
                            " AND EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = pg_class.oid"
                            " AND polcmd IN ('*', 'r'))"
                        )
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    needing = {
        name
        for name, table in Base.metadata.tables.items()
        if KEYS & set(table.columns.keys()) or name in {"deaths", "action_plans"}
    } - NOT_SCOPED_BY_POLICY
    assert needing - forced == set()


def test_each_scopes_criteria_are_built_once_and_kept_apart() -> None:
    """Building a scope's ~25 loader criteria cost about a millisecond for every ORM
    statement (docs/benchmarks.md, issue 16): they are built once per scope. An equal scope
    (the next request of the same client) reuses them; a scope that differs by as little as one
    shared death gets its own."""
    trust, death = uuid.uuid4(), uuid.uuid4()
    first = criteria(DataScope(False, frozenset({trust})))
    again = criteria(DataScope(False, frozenset({trust})))
    shared = criteria(DataScope(False, frozenset({trust}), frozenset({death})))
    assert first and len(first) == len(again)
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert not any(a is b for a, b in zip(first, shared, strict=True))
    assert criteria(DataScope(True)) == []


# The policies' cost (migration 0021): these EXPLAIN what the service's role runs, with the
# settings a transaction of the service sets, and look at the plan PostgreSQL chose.

POLICY_TABLES = [
    "deaths",
    "screenings",
    "route_overrides",
    "referral_judgements",
    "referrals",
    "referral_transitions",
    "reviews",
    "findings",
    "death_notifications",
    "worklist_claims",
    "history_records",
    "possible_duplicates",
    "review_phase_ratings",
    "review_problems",
    "review_versions",
    "screening_versions",
    "action_plans",
    "action_plan_sections",
    "actions",
    "action_updates",
    "outbox_events",
    "audit_events",
    "programmes",
    "programme_questions",
    "programme_recommendations",
    "programme_recommendation_actions",
    "programme_cases",
    "programme_opinions",
    "programme_answers",
    "theme_mappings",
]


async def _plans(
    database_url: str, settings: dict[str, str], statements: list[str], *local: str
) -> list[str]:
    """EXPLAIN of each statement, as the service's role, in a transaction with ``settings``
    (set as app.db sets them) and the ``local`` planner settings (SET LOCAL ...)."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    plans = []
    try:
        async with engine.connect() as connection, connection.begin():
            for name, value in settings.items():
                await connection.execute(
                    text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
                )
            for setting in local:
                await connection.execute(text(f"SET LOCAL {setting}"))
            for statement in statements:
                rows = (await connection.execute(text(f"EXPLAIN {statement}"))).scalars().all()
                plans.append("\n".join(rows))
    finally:
        await engine.dispose()
    return plans


@pytest.mark.postgres_only
async def test_the_policies_read_the_scope_once_per_statement_not_per_row(
    database: Database, make_api: MakeApi, database_url: str
) -> None:
    """Each scope function is an InitPlan, run once when the statement starts: not inlined
    into every row's test, where it ran current_setting() and parsed the organisations from
    text for each row (0019)."""
    made = await _two_trusts(database, make_api)
    only_a = {"lfd.scope": "some", "lfd.organisations": "{" + str(made["a"]) + "}"}
    statements = [f"SELECT * FROM {table}" for table in POLICY_TABLES]
    for scope in (only_a, {"lfd.scope": "all"}):
        for table, plan in zip(
            POLICY_TABLES, await _plans(database_url, scope, statements), strict=True
        ):
            assert "current_setting" not in plan, (table, plan)
            assert "InitPlan" in plan, (table, plan)


@pytest.mark.postgres_only
async def test_a_rows_parent_is_probed_by_its_key_never_hashed_whole(
    database: Database, make_api: MakeApi, database_url: str
) -> None:
    """A row that defers to its parent (a transition to its death) is checked by one probe of
    the parent's key. PostgreSQL could instead hash every visible parent row once, and chose
    that by the rows it expected to test, blind to a LIMIT: a claim or a queue page in a
    region then read every death of the deployment (migration 0021). Here the probes are
    made ten times dearer than by default (random_page_cost), which makes the planner hash
    whenever it can."""
    made = await _two_trusts(database, make_api)
    only_a = {"lfd.scope": "some", "lfd.organisations": "{" + str(made["a"]) + "}"}
    claim_like = (
        "SELECT id FROM referrals WHERE route = 'sjr' AND status IN ('ready', 'in_progress')"
        " ORDER BY priority, due_at, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
    )
    probing = "SELECT id FROM referral_transitions ORDER BY id LIMIT 1"
    statements = [
        claim_like,
        probing,
        *(f"SELECT * FROM {table}" for table in POLICY_TABLES),
    ]
    # Sequential scans off too: in a small test database a scan of all deaths would beat any
    # probe anyway, and the question is whether the probe is by key or by hash.
    plans = await _plans(
        database_url, only_a, statements, "random_page_cost = 40", "enable_seqscan = off"
    )
    for statement, plan in zip(statements, plans, strict=True):
        assert "hashed SubPlan" not in plan, (statement, plan)
    # A referral carries its death's organisation (migration 0022): no probe at all.
    assert "SubPlan" not in plans[0] and "organisation_id = ANY" in plans[0], plans[0]
    # A transition names only its death: one probe of the death's key per row.
    # (by its primary key, or by the key and organisation the children reference)
    assert "SubPlan" in plans[1], plans[1]
    assert "pk_deaths" in plans[1] or "uq_deaths_id_organisation_id" in plans[1], plans[1]


@pytest.mark.postgres_only
async def test_the_reports_read_a_periods_deaths_from_the_index_alone(
    database: Database, make_api: MakeApi, database_url: str
) -> None:
    """The reports' cohort index carries the organisation the deaths' policy reads, so a
    period's deaths are still read from the index alone under the policy (migration 0021);
    without it, every death of the period was read from the table."""
    made = await _two_trusts(database, make_api)
    cohort = (
        "SELECT count(*), count(DISTINCT site) FROM deaths"
        " WHERE died_on BETWEEN '2025-04-01' AND '2026-03-31'"
        " AND place_of_death IN ('inpatient', 'emergency_department')"
    )
    only_a = {"lfd.scope": "some", "lfd.organisations": "{" + str(made["a"]) + "}"}
    for scope in ({"lfd.scope": "all"}, only_a):
        (plan,) = await _plans(
            database_url, scope, [cohort], "enable_seqscan = off", "enable_bitmapscan = off"
        )
        assert "Index Only Scan using ix_deaths_died_on_report" in plan, plan
