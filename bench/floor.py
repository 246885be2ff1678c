"""The floor: a bare FastAPI + asyncpg app doing the least each hot operation can do against the
service's own tables, so that the service's figures can be read as a ratio to it (issue 19).

    FLOOR_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/<db> \
        .venv/bin/uvicorn bench.floor:app --port 8078 --workers 1 --no-access-log

No credentials, no validation beyond reading the JSON, no rules, no idempotency check, no
row-level security (it connects as the tables' owner), no logging, no Pydantic: each route runs
the same statements' worth of work as the service's route, on the same tables and rows, in as
few round trips as a plain asyncpg program would, with its statements prepared (asyncpg's
statement cache), and writes the rows straight to JSON with orjson. bench/floor_compare.py
runs it beside the service and prints the ratios.

- ``POST /v1/screenings``: one transaction of one INSERT per table the service writes for a
  screening: the death, the screening, its referrals (an SJR for an unexpected death or a
  learning disability, a LeDeR for a learning disability, as the national criteria's rules
  do), the outbox events (death.created, screening.recorded, referral.created per referral),
  the audit rows (death.create, screening.create, referral.create per referral) and the
  idempotency record with the stored answer. 201 with the ids.
- ``GET /v1/referrals?route=&status=ready&limit=``: the service's queue page query (the
  ready referrals of a route without a live lease, in queue order), the rows as JSON.
- ``POST /v1/referrals/claim`` (``{"route": "sjr", "count": 1}``): one UPDATE of the next
  claimable referrals (``FOR UPDATE SKIP LOCKED`` in a subquery, the same predicate and index
  as the service's claim), RETURNING the rows.
- ``GET /v1/deaths/{id}``: the rows the service's whole case reads: the death, its screening,
  its route overrides, referrals, reviews and possible-duplicate links, one SELECT each on one
  connection.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response

DSN = os.environ.get("FLOOR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/lfd")
POOL_SIZE = int(os.environ.get("FLOOR_POOL_SIZE", "10"))

REFERRAL_COLUMNS = (
    "id, death_id, route, stage, reasons, status, status_reason, specialty, site, priority, "
    "due_at, assigned_to, lease_id, leased_by, lease_expires_at, leased_to, claimed_at, "
    "excluded_reviewer, external_reference, completed_at, version, created_at, updated_at"
)
QUEUE_PAGE = (
    f"SELECT {REFERRAL_COLUMNS} FROM referrals"
    " WHERE route = $1 AND status = 'ready'"
    " AND NOT (lease_expires_at IS NOT NULL AND lease_expires_at > $2)"
    " ORDER BY priority, due_at, created_at, id LIMIT $3"
)
CLAIM = (
    "UPDATE referrals SET lease_id = gen_random_uuid(), lease_expires_at = $2, claimed_at = $3"
    f" WHERE id IN (SELECT id FROM referrals WHERE route = $1"
    " AND status IN ('in_progress', 'ready')"
    " AND (lease_expires_at IS NULL OR lease_expires_at <= $3)"
    " AND assigned_to IS NULL AND excluded_reviewer IS NULL"
    " ORDER BY priority, due_at, created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)"
    f" RETURNING {REFERRAL_COLUMNS}"
)
DEATH_COLUMNS = (
    "id, case_number, source_system, source_reference, nhs_number, nhs_number_status,"
    " given_name, family_name, date_of_birth, sex, postcode, died_at, died_on, place_of_death,"
    " site, admitting_specialty, specialty_at_death, admission_method, admitted_at,"
    " learning_disability, autism, serious_mental_illness, pregnant_or_recently_pregnant,"
    " age_at_death, status, version, created_at, updated_at"
)
CASE_READS = (
    f"SELECT {DEATH_COLUMNS} FROM deaths WHERE id = $1",
    "SELECT * FROM screenings WHERE death_id = $1",
    "SELECT * FROM route_overrides WHERE death_id = $1 ORDER BY route",
    f"SELECT {REFERRAL_COLUMNS} FROM referrals WHERE death_id = $1 ORDER BY created_at, route",
    "SELECT * FROM reviews WHERE death_id = $1 ORDER BY created_at",
    "SELECT * FROM possible_duplicates WHERE death_id = $1 OR other_death_id = $1",
)


class Floor:
    pool: asyncpg.Pool
    organisation_id: uuid.UUID
    # Columns a later migration may add as NOT NULL (organisation_id on child tables): filled
    # when the table has them, so the floor keeps working across the schema's changes.
    child_organisation: dict[str, bool]


floor = Floor()


def _json(conn: asyncpg.Connection) -> Any:
    return conn.set_type_codec(
        "jsonb",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    floor.pool = await asyncpg.create_pool(DSN, min_size=POOL_SIZE, max_size=POOL_SIZE, init=_json)
    async with floor.pool.acquire() as conn:
        floor.organisation_id = await conn.fetchval("SELECT id FROM organisations WHERE is_default")
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.columns WHERE column_name ="
            " 'organisation_id' AND table_schema = 'public'"
        )
        floor.child_organisation = {row["table_name"]: True for row in rows}
    yield
    await floor.pool.close()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


def _reply(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body, default=str), status_code=status, media_type="application/json"
    )


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _insert(table: str, columns: list[str], rows: int) -> str:
    width = len(columns)
    values = ", ".join(
        "(" + ", ".join(f"${row * width + col + 1}" for col in range(width)) + ")"
        for row in range(rows)
    )
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}"


def _with_organisation(table: str, columns: list[str], values: list[Any]) -> None:
    if floor.child_organisation.get(table) and "organisation_id" not in columns:
        columns.append("organisation_id")
        values.append(floor.organisation_id)


@app.post("/v1/screenings")
async def screening(request: Request) -> Response:
    payload = orjson.loads(await request.body())
    death, screen = payload["death"], payload["screening"]
    key = request.headers.get("idempotency-key") or uuid.uuid4().hex
    now = datetime.now(UTC)
    died_at = _moment(death["died_at"])
    born = date.fromisoformat(death["date_of_birth"])
    death_id, screening_id = uuid.uuid4(), uuid.uuid4()
    ld = bool(death.get("learning_disability"))
    routes = (["sjr"] if ld or not screen["death_expected"] else []) + (["leder"] if ld else [])
    referral_ids = [uuid.uuid4() for _ in routes]
    death_columns = [
        "id", "source_system", "source_reference", "nhs_number", "nhs_number_status",
        "given_name", "family_name", "date_of_birth", "sex", "postcode", "died_at", "died_on",
        "place_of_death", "site", "admitting_specialty", "specialty_at_death",
        "admission_method", "admitted_at", "learning_disability", "autism",
        "serious_mental_illness", "pregnant_or_recently_pregnant", "age_at_death",
        "age_in_days_at_death", "within_30_days_of_discharge", "status", "version",
        "created_at", "updated_at", "organisation_id", "created_by_client_id",
    ]  # fmt: skip
    death_values = [
        death_id, death["source_system"], death["source_reference"], death.get("nhs_number"),
        death.get("nhs_number_status", "01"), death.get("given_name"), death.get("family_name"),
        born, death["sex"], death.get("postcode"), died_at, died_at.date(),
        death["place_of_death"], death.get("site"), death.get("admitting_specialty"),
        death.get("specialty_at_death"), death["admission_method"],
        _moment(death["admitted_at"]) if death.get("admitted_at") else None, ld, False, False,
        False, (died_at.date() - born).days // 365, (died_at.date() - born).days, False,
        "under_review" if routes else "screened", 1, now, now, floor.organisation_id, None,
    ]  # fmt: skip
    examiner = screen["examiner"]
    screening_columns = [
        "id", "death_id", "examiner_name", "examiner_gmc_number", "screened_at",
        "records_reviewed", "qap_discussed", "bereaved_contacted", "coroner_notified",
        "death_expected", "routes_requested", "version", "created_at", "updated_at", "died_on",
    ]  # fmt: skip
    screening_values = [
        screening_id, death_id, examiner["name"], examiner["gmc_number"],
        _moment(screen["screened_at"]), screen["records_reviewed"], screen["qap_discussed"],
        screen["bereaved_contacted"], screen["coroner_notified"], screen["death_expected"], [],
        1, now, now, died_at.date(),
    ]  # fmt: skip
    _with_organisation("screenings", screening_columns, screening_values)
    referral_columns = [
        "id", "death_id", "route", "reasons", "status", "specialty", "site", "priority",
        "due_at", "version", "created_at", "updated_at", "died_on",
    ]  # fmt: skip
    referral_rows: list[Any] = []
    for referral_id, route in zip(referral_ids, routes, strict=True):
        row = [
            referral_id, death_id, route, ["unexpected_death"], "ready",
            death.get("specialty_at_death"), death.get("site"), 2, now + timedelta(days=56),
            1, now, now, died_at.date(),
        ]  # fmt: skip
        columns = list(referral_columns)
        _with_organisation("referrals", columns, row)
        referral_rows.append(row)
    if floor.child_organisation.get("referrals"):
        referral_columns = [*referral_columns, "organisation_id"]
    changes = [
        ("death.created", "death", death_id),
        ("screening.recorded", "screening", screening_id),
    ]
    changes += [("referral.created", "referral", rid) for rid in referral_ids]
    event_columns = [
        "id", "type", "resource_type", "resource_id", "death_id", "organisation_id", "changed",
        "occurred_at",
    ]  # fmt: skip
    event_values: list[Any] = []
    for kind, resource, rid in changes:
        event_values += [uuid.uuid4(), kind, resource, rid, death_id, floor.organisation_id]
        event_values += [[], now]
    audit_columns = [
        "id", "occurred_at", "action", "resource_type", "resource_id", "death_ids", "outcome",
        "organisation_id", "row_hash",
    ]  # fmt: skip
    audit_values: list[Any] = []
    for kind, resource, rid in changes:
        action = kind.split(".")[0] + ".create"
        digest = hashlib.sha256(f"{action}{rid}".encode()).hexdigest()
        audit_values += [
            uuid.uuid4(), now, action, resource, rid, [death_id], "success", floor.organisation_id,
            digest,
        ]  # fmt: skip
    answer = {"id": str(screening_id), "death_id": str(death_id), "version": 1}
    async with floor.pool.acquire() as conn, conn.transaction():
        await conn.execute(_insert("deaths", death_columns, 1), *death_values)
        await conn.execute(_insert("screenings", screening_columns, 1), *screening_values)
        if referral_rows:
            flat = [value for row in referral_rows for value in row]
            await conn.execute(_insert("referrals", referral_columns, len(referral_rows)), *flat)
        await conn.execute(_insert("outbox_events", event_columns, len(changes)), *event_values)
        await conn.execute(_insert("audit_events", audit_columns, len(changes)), *audit_values)
        await conn.execute(
            "INSERT INTO idempotency_records (id, client_id, key, fingerprint, state,"
            " locked_until, created_at, expires_at, response_status, response_body)"
            " VALUES ($1, $2, $3, $4, 'completed', $5, $5, $6, 201, $7)",
            uuid.uuid4(), FLOOR_CLIENT, key, "0" * 64, now, now + timedelta(hours=24), answer,
        )  # fmt: skip
    return _reply(answer, 201)


# The idempotency records' client: a fixed id (the column has no foreign key).
FLOOR_CLIENT = uuid.UUID("00000000-0000-4000-8000-00000000f100")


@app.get("/v1/referrals")
async def queue_page(route: str = "sjr", limit: int = 50) -> Response:
    async with floor.pool.acquire() as conn:
        rows = await conn.fetch(QUEUE_PAGE, route, datetime.now(UTC), limit + 1)
    items = [dict(row) for row in rows[:limit]]
    more = str(rows[-1]["id"]) if len(rows) > limit else None
    return _reply({"items": items, "next_cursor": more})


@app.post("/v1/referrals/claim")
async def claim(request: Request) -> Response:
    payload = orjson.loads(await request.body())
    now = datetime.now(UTC)
    async with floor.pool.acquire() as conn:
        rows = await conn.fetch(
            CLAIM, payload["route"], now + timedelta(hours=72), now, payload.get("count", 1)
        )
    return _reply({"items": [dict(row) for row in rows]})


@app.get("/v1/deaths/{death_id}")
async def whole_case(death_id: uuid.UUID) -> Response:
    async with floor.pool.acquire() as conn:
        death, screen, overrides, referrals, reviews, duplicates = [
            await conn.fetch(query, death_id) for query in CASE_READS
        ]
    if not death:
        return _reply({"detail": "not found"}, 404)
    body = dict(death[0])
    body["screening"] = dict(screen[0]) if screen else None
    if body["screening"] is not None:
        body["screening"]["overrides"] = [dict(row) for row in overrides]
    body["referrals"] = [dict(row) for row in referrals]
    body["reviews"] = [dict(row) for row in reviews]
    body["possible_duplicate_of"] = [dict(row) for row in duplicates]
    return _reply(body)


@app.get("/healthz")
async def healthz() -> Response:
    return _reply({"status": "ok"})
