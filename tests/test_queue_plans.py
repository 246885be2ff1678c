"""Query plans of the referral queues on PostgreSQL: the claim and the main queue pages read an
ordered index range, so their cost follows the page size, not the number of referrals.

Twelve thousand deaths and about eight thousand referrals are loaded straight into the tables
(Core INSERTs of just the columns the queues read, shaped like a trust's: old referrals
finished, a recent open queue of a thousand or so over one big specialty and a long tail, a
tenth of the ready ones under a live lease), then ANALYZEd. The statements the service really
runs are captured with a ``before_cursor_execute`` listener and EXPLAINed (FORMAT JSON) with
the same parameters. The planner chooses on its own (no ``enable_seqscan = off``): with ORDER
BY + LIMIT over a matching index an index scan is its natural choice at this size already, and
a Seq Scan or a Sort over the queue here would be worse still at millions of rows. The rows
are deleted at the end.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.config import DEFAULT_DUE_DAYS, DEFAULT_PRIORITIES
from app.db import Database
from app.kit.enums import Route
from app.models import Death, Referral, ReferralTransition
from app.reach import default_organisation_id
from app.referrals import workflow
from tests.conftest import Api, new_client, owner_url

pytestmark = pytest.mark.postgres_only

DEATHS = 12000
# One big specialty (a general medicine), then a long tail.
SPECIALTIES = {f"Plans Specialty {n:02d}": 30 if n == 0 else 4 for n in range(18)}
ROUTE_WEIGHTS = {
    Route.sjr: 60,
    Route.coroner: 15,
    Route.mm: 8,
    Route.leder: 5,
    Route.psii: 4,
    Route.cdr: 2,
    Route.pmrt: 2,
    Route.mnsi: 1,
    Route.complaint: 2,
    Route.system_review: 1,
}


@dataclass
class Loaded:
    source_system: str
    specialty: str  # the specialty with the longest ready queue


def _status(rng: random.Random, age_days: float) -> str:
    """Old referrals are finished; the open queue is the recent work."""
    if age_days > 90:
        return rng.choices(["completed", "declined", "cancelled"], [92, 4, 4])[0]
    return rng.choices(
        ["ready", "in_progress", "on_hold", "completed", "declined", "cancelled"],
        [45, 8, 4, 37, 3, 3],
    )[0]


def _rows(source_system: str, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    moment = datetime.now(UTC)
    deaths: list[dict[str, Any]] = []
    referrals: list[dict[str, Any]] = []
    routes, weights = list(ROUTE_WEIGHTS), list(ROUTE_WEIGHTS.values())
    for n in range(DEATHS):
        died_at = moment - timedelta(days=240 * n / DEATHS, minutes=rng.randrange(600))
        death_id = uuid.uuid4()
        specialty = rng.choices(list(SPECIALTIES), list(SPECIALTIES.values()))[0]
        age = rng.randrange(40, 100)
        deaths.append(
            {
                "id": death_id,
                "source_system": source_system,
                "source_reference": f"PLAN-{n}",
                "nhs_number_status": "01",
                "date_of_birth": (died_at - timedelta(days=age * 365 + 100)).date(),
                "sex": rng.choice(["female", "male"]),
                "died_at": died_at,
                "died_on": died_at.date(),
                "place_of_death": "inpatient",
                "site": rng.choice(["North Site", "South Site", "East Site"]),
                "admitting_specialty": specialty,
                "specialty_at_death": specialty,
                "admission_method": "emergency",
                "age_at_death": age,
                "age_in_days_at_death": age * 365,
                "within_30_days_of_discharge": False,
                "status": "under_review",
                "created_at": died_at + timedelta(days=1),
                "updated_at": died_at + timedelta(days=1),
            }
        )
        # Many deaths are referred (this is the referred cohort); a few to two routes.
        if rng.random() > 0.6:
            continue
        for route in {rng.choices(routes, weights)[0] for _ in range(rng.choice([1, 1, 1, 2]))}:
            created = died_at + timedelta(days=1, minutes=rng.randrange(600))
            status = _status(rng, (moment - created).total_seconds() / 86400)
            leased = status == "ready" and rng.random() < 0.1
            referrals.append(
                {
                    "id": uuid.uuid4(),
                    "death_id": death_id,
                    "route": route.value,
                    "stage": 1 if route is Route.sjr else None,
                    "reasons": ["unexpected_death"],
                    "status": status,
                    "specialty": specialty,
                    "site": deaths[-1]["site"],
                    "died_on": deaths[-1]["died_on"],  # the death's copy (migration 0009)
                    "priority": DEFAULT_PRIORITIES[route],
                    "due_at": created + timedelta(days=DEFAULT_DUE_DAYS[route]),
                    "lease_id": uuid.uuid4() if leased else None,
                    "leased_to": "Dr Holder" if leased else None,
                    "claimed_at": moment if leased else None,
                    "lease_expires_at": moment + timedelta(minutes=30) if leased else None,
                    "completed_at": created + timedelta(days=30) if status == "completed" else None,
                    "version": 1,
                    "created_at": created,
                    "updated_at": created,
                }
            )
    return deaths, referrals


@pytest.fixture(scope="module")
async def loaded(database: Database) -> AsyncIterator[Loaded]:
    source_system = f"plans-{uuid.uuid4().hex[:10]}"
    deaths, referrals = _rows(source_system, seed=20261124)
    async with database.transaction() as session:
        organisation_id = await default_organisation_id(session)
        for row in (*deaths, *referrals):
            row["organisation_id"] = organisation_id
        for start in range(0, len(deaths), 1000):
            await session.execute(insert(Death.__table__), deaths[start : start + 1000])
        for start in range(0, len(referrals), 1000):
            await session.execute(insert(Referral.__table__), referrals[start : start + 1000])
    # ANALYZE is the tables' owner's to run (the service's role may not).
    owner = create_async_engine(owner_url(database.settings.database_url), poolclass=NullPool)
    async with owner.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("ANALYZE deaths"))
        await autocommit.execute(text("ANALYZE referrals"))
    await owner.dispose()
    ready = Counter(r["specialty"] for r in referrals if r["status"] == "ready")
    (busiest, _), *_ = ready.most_common(1)
    try:
        yield Loaded(source_system, busiest)
    finally:
        async with database.transaction() as session:
            mine = select(Referral.id).join(Death).where(Death.source_system == source_system)
            await session.execute(
                delete(ReferralTransition).where(ReferralTransition.referral_id.in_(mine))
            )
            await session.execute(
                delete(Referral).where(
                    Referral.death_id.in_(
                        select(Death.id).where(Death.source_system == source_system)
                    )
                )
            )
            await session.execute(delete(Death).where(Death.source_system == source_system))


@contextmanager
def captured(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the engine sends, with its parameters, while the block runs."""
    seen: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", listen)


def queue_select(seen: list[tuple[str, Any]]) -> tuple[str, Any]:
    """The one SELECT over referrals in queue order among the captured statements."""
    found = [
        (statement, parameters)
        for statement, parameters in seen
        if statement.lstrip().upper().startswith("SELECT")
        and "FROM referrals" in statement
        and "ORDER BY referrals.priority" in statement
    ]
    assert len(found) == 1, [statement for statement, _ in seen]
    return found[0]


async def explain(database: Database, statement: str, parameters: Any) -> dict[str, Any]:
    async with database.engine.connect() as connection:
        # The whole deployment in scope, as for the service's own work or a single trust's
        # client (app.scoping): the row-level security policies pass at their first test.
        await connection.exec_driver_sql("SELECT set_config('lfd.scope', 'all', false)")
        result = await connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
        document = result.scalar_one()
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def describe(plan: dict[str, Any], depth: int = 0) -> str:
    """The plan as indented lines, for assertion messages."""
    parts = [
        plan["Node Type"],
        plan.get("Index Name", ""),
        plan.get("Relation Name", ""),
        f"cond={plan['Index Cond']}" if "Index Cond" in plan else "",
        f"filter={plan['Filter']}" if "Filter" in plan else "",
        f"sort={plan['Sort Key']}" if "Sort Key" in plan else "",
    ]
    line = "  " * depth + " ".join(part for part in parts if part)
    return "\n".join([line, *(describe(child, depth + 1) for child in plan.get("Plans", []))])


def assert_bounded_range(plan: dict[str, Any], *indexes: str) -> None:
    """A later page: the ordered index range of ``assert_ordered_index_scan``, or else (the
    planner's choice on a small table) a bitmap over the partial index of open referrals whose
    index condition starts at the cursor, so what is sorted is bounded by the route's open
    queue, never by the table's history."""
    try:
        scan = assert_ordered_index_scan(plan, *indexes)
        assert "created_at" in scan["Index Cond"], describe(plan)
        return
    except AssertionError:
        pass
    shown = describe(plan)
    bitmaps = [n for n in nodes(plan) if n["Node Type"] == "Bitmap Index Scan"]
    ranged = [
        n
        for n in bitmaps
        if n["Index Name"] == "ix_referrals_claimable" and "created_at" in n["Index Cond"]
    ]
    assert ranged, shown
    assert not [n for n in nodes(plan) if n["Node Type"] == "Seq Scan"], shown


def assert_ordered_index_scan(plan: dict[str, Any], *indexes: str) -> dict[str, Any]:
    """The referrals are read by one forward index scan on one of ``indexes``, in its order
    (no Sort node), never a Seq Scan nor a Bitmap Heap Scan (which loses the order)."""
    shown = describe(plan)
    all_nodes = list(nodes(plan))
    on_referrals = [n for n in all_nodes if n.get("Relation Name") == "referrals"]
    assert on_referrals, shown
    assert not [n for n in on_referrals if n["Node Type"] == "Seq Scan"], shown
    assert not [n for n in all_nodes if n["Node Type"] in {"Sort", "Incremental Sort"}], shown
    scans = [n for n in on_referrals if n["Node Type"] in {"Index Scan", "Index Only Scan"}]
    assert len(scans) == 1 and scans[0]["Index Name"] in indexes, shown
    assert scans[0].get("Scan Direction", "Forward") == "Forward", shown
    return scans[0]


async def test_the_claimable_index_exists_and_is_partial(database: Database) -> None:
    async with database.transaction() as session:
        definition = await session.scalar(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_referrals_claimable'")
        )
    assert definition is not None
    assert "(route, priority, due_at, created_at, id)" in definition
    assert "WHERE" in definition and "ready" in definition and "in_progress" in definition


async def captured_claim(
    database: Database, *, specialty: str | None, count: int
) -> tuple[str, Any, list[str | None]]:
    """The claim statement the service runs, captured from ``workflow.claim`` itself inside a
    transaction that is rolled back (through the API it would lease referrals, maybe another
    test's): (statement, parameters, the specialties of what it would have claimed)."""
    principal = Principal(uuid.uuid4(), "plans", frozenset(), False, None, None)
    with captured(database.engine) as seen:
        async with database.sessionmaker() as session:
            await session.begin()
            claimed = await workflow.claim(
                session,
                principal,
                database.settings,
                Route.sjr,
                count=count,
                lease_seconds=None,
                specialty=specialty,
                stage=None,
                reviewer="Dr Plans",
            )
            specialties = [referral.specialty for referral in claimed]
            await session.rollback()
    statement, parameters = queue_select(seen)
    return statement, parameters, specialties


async def test_a_claim_over_a_route_reads_the_claimable_index_in_queue_order(
    database: Database, loaded: Loaded
) -> None:
    statement, parameters, claimed = await captured_claim(database, specialty=None, count=5)
    assert len(claimed) == 5
    assert "FOR UPDATE SKIP LOCKED" in statement

    plan = await explain(database, statement, parameters)

    assert plan["Node Type"] == "Limit", describe(plan)
    scan = assert_ordered_index_scan(plan, "ix_referrals_claimable")
    assert "route" in scan["Index Cond"], describe(plan)


async def test_a_claim_keeps_the_claimable_index_under_a_generic_plan(
    database: Database, loaded: Loaded
) -> None:
    """asyncpg prepares a statement once per connection and PostgreSQL may then plan it once
    for any parameters (a generic plan): the partial index must serve that plan too, so the
    claimable statuses must be in the statement's text, not in its parameters."""
    statement, parameters, _ = await captured_claim(database, specialty=None, count=5)
    assert "status IN ('ready', 'in_progress')" in statement
    name = f"claim_{uuid.uuid4().hex[:8]}"
    async with database.engine.connect() as connection:
        await connection.exec_driver_sql(f"PREPARE {name} AS {statement}")
        await connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        try:
            arguments = ", ".join(_literal(value) for value in parameters)
            result = await connection.exec_driver_sql(
                f"EXPLAIN (FORMAT JSON) EXECUTE {name}({arguments})"
            )
            plan: dict[str, Any] = result.scalar_one()[0]["Plan"]
        finally:
            await connection.exec_driver_sql("RESET plan_cache_mode")
            await connection.exec_driver_sql(f"DEALLOCATE {name}")
            await connection.rollback()

    assert_ordered_index_scan(plan, "ix_referrals_claimable")


def _literal(value: Any) -> str:
    """A parameter as an SQL literal (EXECUTE takes no bind parameters); only the types the
    claim binds."""
    if isinstance(value, bool) or value is None:
        raise AssertionError(f"unexpected parameter {value!r}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    text_value = str(value)
    return "'" + text_value.replace("'", "''") + "'"


async def test_a_claim_for_one_specialty_reads_only_that_specialtys_open_referrals(
    database: Database, loaded: Loaded
) -> None:
    """With a specialty the planner may prefer the specialty's queue index: then it reads that
    specialty's claimable referrals (a bitmap over specialty and the claimable statuses) and
    sorts just those, which is bounded by the specialty's open queue, never the whole table."""
    statement, parameters, claimed = await captured_claim(
        database, specialty=loaded.specialty, count=5
    )
    assert claimed and set(claimed) == {loaded.specialty}

    plan = await explain(database, statement, parameters)

    shown = describe(plan)
    on_referrals = [n for n in nodes(plan) if n.get("Relation Name") == "referrals"]
    assert on_referrals and not [n for n in on_referrals if n["Node Type"] == "Seq Scan"], shown
    # Of referrals: the row-level security policy's probe of each row's death by its key
    # (pk_deaths, in a subplan) is no read of the queue.
    index_scans = [n for n in on_referrals if "Index Name" in n]
    assert index_scans, shown
    for scan in index_scans:
        if scan["Index Name"] == "ix_referrals_claimable_specialty":
            # The ordered range of this route's and specialty's open referrals.
            assert "route" in scan["Index Cond"] and "specialty" in scan["Index Cond"], shown
        elif scan["Index Name"] == "ix_referrals_claimable":
            assert "route" in scan["Index Cond"], shown
        else:
            assert scan["Index Name"] == "ix_referrals_specialty_queue", shown
            assert "specialty" in scan["Index Cond"] and "status" in scan["Index Cond"], shown
            assert "in_progress" in scan["Index Cond"], shown


# The filters of each queue page, and the indexes that serve it in queue order. A route's
# ready queue can also be read from the claimable index (partial on ready and in progress,
# ordered the same way after the route): the planner picks either, by their sizes.
QUEUES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "sjr ready": (
        {"route": "sjr", "status": "ready"},
        ("ix_referrals_queue", "ix_referrals_claimable"),
    ),
    "all ready": ({"status": "ready"}, ("ix_referrals_status_queue",)),
    "one specialty ready": ({"status": "ready"}, ("ix_referrals_specialty_queue",)),
}


@pytest.mark.parametrize("name", list(QUEUES))
async def test_a_queue_page_reads_its_index_in_queue_order(
    app_factory: Any, database: Database, loaded: Loaded, name: str
) -> None:
    app, http = await app_factory()
    key, client_id = await new_client(database, [Scope.referrals_read])
    api = Api(http, key, client_id)
    filters, indexes = QUEUES[name]
    params: dict[str, Any] = {**filters, "limit": 50}
    if "specialty" in name:
        params["specialty"] = loaded.specialty

    with captured(app.state.database.engine) as seen:
        response = await api.get("/v1/referrals", params=params)
    assert response.status_code == 200, response.text
    page = response.json()
    assert len(page["items"]) == 50 and page["next_cursor"], "the data should fill two pages"
    plan = await explain(database, *queue_select(seen))
    assert_ordered_index_scan(plan, *indexes)

    # The next page: the cursor's key must start the index range (an Index Cond), not be a
    # filter over everything before it, nor a bitmap that has to be sorted.
    with captured(app.state.database.engine) as seen:
        response = await api.get("/v1/referrals", params={**params, "cursor": page["next_cursor"]})
    assert response.status_code == 200, response.text
    assert response.json()["items"]
    plan = await explain(database, *queue_select(seen))
    assert_bounded_range(plan, *indexes)
