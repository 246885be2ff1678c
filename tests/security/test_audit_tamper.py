"""Issue 11, defect 7: the audit table could be edited by the service's own role and nothing
would tell. Now every row carries a keyed hash of its content, the background sealer chains
the rows, and `lfd audit verify` reports an edited, deleted or inserted row by id, place and
day (exit status 1). On PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE from the
service's connection; the tests that tamper anyway play an attacker who can switch triggers
off (a superuser: `session_replication_role = replica`).

Each test has a scratch database of its own (SQLite, and PostgreSQL when the run has it), so
that its tampering stays there."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.audit.chain import Verification, seal_audit, verify_audit
from app.auth.scopes import Scope
from app.db import Database
from app.migrate import upgrade
from app.models import AuditEvent
from tests.conftest import Api, MakeApp, new_client, run_sync
from tests.factories import idem, screening_body


@pytest.fixture
async def audited(scratch_url: str, app_factory: MakeApp) -> AsyncIterator[tuple[Database, Api]]:
    """A migrated scratch database with some audit rows in it (screenings and reads through
    the real app), and an admin client on it."""
    await run_sync(upgrade, scratch_url)
    app, http = await app_factory(database_url=scratch_url)
    database: Database = app.state.database
    key, client_id = await new_client(database, [Scope.admin])
    api = Api(http, key, client_id)
    for _ in range(3):
        body = screening_body(screening={"death_expected": False})
        created = await api.post("/v1/screenings", json=body, headers=idem())
        assert created.status_code == 201, created.text
        read = await api.get(f"/v1/deaths/{created.json()['death_id']}")
        assert read.status_code == 200
    yield database, api


async def audit_rows(database: Database) -> list[AuditEvent]:
    async with database.transaction() as session:
        found = await session.scalars(
            select(AuditEvent).order_by(AuditEvent.chain_seq, AuditEvent.occurred_at)
        )
        return list(found.all())


async def tamper(database: Database, statement: str, **params: Any) -> None:
    """Run SQL on the audit table as an attacker who can switch triggers off."""
    async with database.transaction() as session:
        if database.dialect == "postgresql":
            await session.execute(text("SET LOCAL session_replication_role = replica"))
        await session.execute(text(statement), params)


def postgresql_only(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("the triggers and row locks are PostgreSQL's (SQLite has neither)")


def where(report: Verification) -> list[tuple[str, str | None, int | None]]:
    return [(f.problem, f.row_id, f.seq) for f in report.findings]


async def test_an_untouched_log_verifies_and_sealing_chains_every_row(
    audited: tuple[Database, Api],
) -> None:
    database, api = audited
    before = await verify_audit(database)
    assert before.intact and before.sealed == 0 and before.unsealed > 0
    sealed = await seal_audit(database)
    assert sealed == before.unsealed
    after = await verify_audit(database)
    assert after.intact, after.findings
    assert (after.sealed, after.unsealed) == (sealed, 0)
    assert (after.first_seq, after.last_seq, after.head_seq) == (1, sealed, sealed)
    # More rows later continue the same chain.
    assert (await api.get("/v1/deaths")).status_code == 200
    more = await seal_audit(database)
    assert more >= 1
    final = await verify_audit(database)
    assert final.intact and final.last_seq == sealed + more


async def test_an_edited_row_is_reported_sealed_or_not(audited: tuple[Database, Api]) -> None:
    database, api = audited
    await seal_audit(database)
    rows = await audit_rows(database)
    target = rows[len(rows) // 2]
    await tamper(
        database,
        "UPDATE audit_events SET client_name = 'someone else' WHERE id = :id",
        id=target.id if database.dialect == "postgresql" else target.id.hex,
    )
    # And a row not yet sealed, edited before the sealer got to it.
    assert (await api.get("/v1/deaths")).status_code == 200
    fresh = [row for row in await audit_rows(database) if row.chain_seq is None]
    await tamper(
        database,
        "UPDATE audit_events SET outcome = 'success', action = 'death.list', "
        "request_id = NULL WHERE id = :id",
        id=fresh[0].id if database.dialect == "postgresql" else fresh[0].id.hex,
    )
    report = await verify_audit(database)
    assert ("row altered", str(target.id), target.chain_seq) in where(report)
    assert ("row altered", str(fresh[0].id), None) in where(report)
    assert len(report.findings) == 2
    assert report.findings[0].day == target.occurred_at.date().isoformat()


async def test_a_deleted_row_is_reported(audited: tuple[Database, Api]) -> None:
    database, _ = audited
    await seal_audit(database)
    rows = await audit_rows(database)
    middle, last = rows[3], rows[-1]
    for row in (middle, last):
        await tamper(
            database,
            "DELETE FROM audit_events WHERE id = :id",
            id=row.id if database.dialect == "postgresql" else row.id.hex,
        )
    report = await verify_audit(database)
    assert not report.intact
    after_middle = rows[4]
    assert ("rows missing", str(after_middle.id), after_middle.chain_seq) in where(report)
    assert ("rows missing", None, last.chain_seq) in where(report)  # the newest, at the end
    assert len(report.findings) == 2
    assert f"places {middle.chain_seq}..{middle.chain_seq}" in report.findings[0].detail


async def test_an_inserted_row_is_reported(audited: tuple[Database, Api]) -> None:
    database, api = audited
    await seal_audit(database)
    rows = await audit_rows(database)
    genuine = rows[0]
    forged = [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()]
    native = database.dialect == "postgresql"
    insert = (
        "INSERT INTO audit_events (id, occurred_at, client_id, client_name, action,"
        " resource_type, resource_id, death_ids, outcome, row_hash, chain_seq, chain_hash)"
        " VALUES (:id, :at, :client, 'ward system', 'death.read', 'death', :death, :deaths,"
        " 'success', :hash, :seq, :chain)"
    )

    def values(row_id: uuid.UUID, row_hash: str, seq: int | None, chain: str | None) -> Any:
        death = genuine.death_id
        deaths = [death] if death is not None else []
        return {
            "id": row_id if native else row_id.hex,
            "at": datetime.now(UTC) if native else datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "client": genuine.client_id if native else genuine.client_id.hex,
            "death": death if native or death is None else death.hex,
            "deaths": deaths if native else json.dumps([d.hex for d in deaths]),
            "hash": row_hash,
            "seq": seq,
            "chain": chain,
        }

    # Made up; a copy of a genuine row's hashes (under a new id); placed after the chain's end.
    await tamper(database, insert, **values(forged[0], "f" * 64, None, None))
    await tamper(database, insert, **values(forged[1], genuine.row_hash, None, None))
    head = rows[-1].chain_seq or 0
    await tamper(
        database, insert, **values(forged[2], genuine.row_hash, head + 1, genuine.chain_hash)
    )
    report = await verify_audit(database)
    found = where(report)
    assert ("row altered", str(forged[0]), None) in found
    assert ("row altered", str(forged[1]), None) in found
    assert ("row altered", str(forged[2]), head + 1) in found
    assert ("beyond the head", str(forged[2]), head + 1) in found
    assert {row_id for _, row_id, _ in found} == {str(row_id) for row_id in forged}
    # The sealer seals a forged row like any other, and verify still names it.
    assert (await api.get("/v1/deaths")).status_code == 200
    await seal_audit(database)
    assert str(forged[0]) in {row_id for _, row_id, _ in where(await verify_audit(database))}


async def test_lfd_audit_verify_says_where_and_exits_non_zero(
    audited: tuple[Database, Api], scratch_url: str
) -> None:
    database, _ = audited
    await seal_audit(database)

    async def verify() -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "audit",
            "verify",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "LFD_DATABASE_URL": scratch_url},
        )
        out, err = await process.communicate()
        return process.returncode or 0, out.decode(), err.decode()

    status, out, _ = await verify()
    assert status == 0 and "intact" in out, out
    rows = await audit_rows(database)
    target = rows[2]
    await tamper(
        database,
        "UPDATE audit_events SET on_behalf_of = 'nobody' WHERE id = :id",
        id=target.id if database.dialect == "postgresql" else target.id.hex,
    )
    status, out, err = await verify()
    assert status == 1
    assert "1 problem" in out
    assert str(target.id) in err and f"seq {target.chain_seq}" in err
    assert f"day {target.occurred_at.date().isoformat()}" in err
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "audit",
        "verify",
        "--json",
        stdout=subprocess.PIPE,
        env={**os.environ, "LFD_DATABASE_URL": scratch_url},
    )
    out_json, _ = await process.communicate()
    assert process.returncode == 1
    parsed = json.loads(out_json)
    assert parsed["intact"] is False
    assert parsed["findings"][0]["row_id"] == str(target.id)


@pytest.mark.postgres_only
async def test_the_services_connection_cannot_change_or_remove_audit_rows(
    audited: tuple[Database, Api],
) -> None:
    database, _ = audited
    postgresql_only(database)
    await seal_audit(database)
    [first, *_] = await audit_rows(database)
    statements = [
        "UPDATE audit_events SET client_name = 'someone else'",
        "UPDATE audit_events SET chain_seq = chain_seq + 1000",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE audit_chain_heads SET last_seq = 0",
        "DELETE FROM audit_chain_heads",
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match=r"append-only|only moves forward"):
            async with database.transaction() as session:
                await session.execute(text(statement))
    # Even the sealer's kind of UPDATE is refused once a row is sealed.
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.transaction() as session:
            await session.execute(
                text("UPDATE audit_events SET chain_hash = :h WHERE id = :id"),
                {"h": "0" * 64, "id": first.id},
            )
    assert (await verify_audit(database)).intact


@pytest.mark.postgres_only
async def test_sealers_running_at_once_take_turns(
    audited: tuple[Database, Api], scratch_url: str, app_factory: MakeApp
) -> None:
    database, api = audited
    postgresql_only(database)
    other_app, _ = await app_factory(database_url=scratch_url)
    other: Database = other_app.state.database

    async def reads() -> None:
        for _ in range(5):
            assert (await api.get("/v1/deaths")).status_code == 200

    results = await asyncio.gather(reads(), seal_audit(database), seal_audit(other), reads())
    await seal_audit(database)
    report = await verify_audit(database)
    assert report.intact, report.findings
    assert report.unsealed == 0 and report.sealed == report.head_seq
    assert results[1] + results[2] <= report.sealed


async def test_rows_written_before_the_migration_are_hashed_by_it(
    scratch_url: str, app_factory: MakeApp
) -> None:
    """Migration 0012 hashes the rows already there (with its frozen copy of the hash), so
    they verify, then seal, like rows written since; an edit of one of them is found too."""
    await run_sync(upgrade, scratch_url, "0009")
    old = [uuid.uuid4() for _ in range(3)]
    app, _ = await app_factory(database_url=scratch_url)
    database: Database = app.state.database
    native = database.dialect == "postgresql"
    async with database.transaction() as session:
        for number, row_id in enumerate(old):
            await session.execute(
                text(
                    "INSERT INTO audit_events (id, occurred_at, client_id, client_name,"
                    " on_behalf_of, action, resource_type, resource_id, death_id, request_id,"
                    " outcome) VALUES (:id, :at, :client, 'ward system', :who, 'death.read',"
                    " 'death', :death, :death, :rid, 'success')"
                ),
                {
                    "id": row_id if native else row_id.hex,
                    "at": datetime(2026, 11, 30, 9, 15, 1, 123456 + number, tzinfo=UTC)
                    if native
                    else f"2026-11-30 09:15:01.{123456 + number}",
                    "client": uuid.uuid4() if native else uuid.uuid4().hex,
                    "who": None if number else "Dr Before",
                    "death": uuid.uuid4() if native else uuid.uuid4().hex,
                    "rid": f"before-{number}",
                },
            )
    await database.dispose()
    await run_sync(upgrade, scratch_url)
    report = await verify_audit(database)
    assert report.intact, report.findings
    assert report.unsealed == 3
    assert await seal_audit(database) == 3
    await tamper(
        database,
        "UPDATE audit_events SET request_id = 'after' WHERE id = :id",
        id=old[1] if native else old[1].hex,
    )
    report = await verify_audit(database)
    assert where(report) == [("row altered", str(old[1]), 2)]


async def test_who_a_request_was_for_is_covered_by_the_hash(audited: tuple[Database, Api]) -> None:
    """The verified-user columns (issue 18) are part of what a row's hash covers: marking an
    unverified on-behalf-of as verified, or giving a verified one another role, is found
    (review of issue 18); rows without them keep the hash they were written with."""
    database, api = audited
    named = await api.get("/v1/deaths", headers={"X-On-Behalf-Of": "Dr A Reader"})
    assert named.status_code == 200
    await seal_audit(database)
    rows = await audit_rows(database)
    unverified = next(row for row in rows if row.on_behalf_of_verified is False)
    assert (await verify_audit(database)).intact
    await tamper(
        database,
        "UPDATE audit_events SET on_behalf_of_verified = :yes, on_behalf_of_role = 'R8000' "
        "WHERE id = :id",
        yes=True,
        id=unverified.id if database.dialect == "postgresql" else unverified.id.hex,
    )
    report = await verify_audit(database)
    assert where(report) == [("row altered", str(unverified.id), unverified.chain_seq)]
