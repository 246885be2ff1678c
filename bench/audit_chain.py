"""The audit log's tamper evidence: what it costs a writer, the sealer and `lfd audit verify`.

    python bench/audit_chain.py --database-url postgresql+asyncpg://... [--rows 100000]

On a migrated database (it migrates it first): times the row hash a writer computes for each
audit row (in-process, no database), writes ``--rows`` audit rows the way requests do (batches
of 3 rows per transaction through app.audit.service.write_audit), seals them all
(app.audit.chain.seal_audit) and verifies the whole chain (verify_audit), and prints rows per
second for each. Use an empty database of its own: the rows stay (they cannot be deleted on
PostgreSQL).
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

# bench/queue.py shadows the standard library's queue module: take this directory off the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import asyncio
import time
import timeit
import uuid

from app.audit.chain import seal_audit, verify_audit
from app.audit.integrity import derive_keys, row_hash
from app.audit.service import AuditEntry, write_audit
from app.auth.deps import Principal
from app.config import Settings
from app.db import Database
from app.migrate import upgrade
from app.models.base import utcnow


def hash_cost() -> float:
    """Microseconds per row hash."""
    keys = derive_keys("x" * 64)
    row = {
        "id": uuid.uuid4(),
        "occurred_at": utcnow(),
        "client_id": uuid.uuid4(),
        "client_name": "ME office",
        "on_behalf_of": "Dr Examiner",
        "action": "referral.create",
        "resource_type": "referral",
        "resource_id": uuid.uuid4(),
        "death_id": uuid.uuid4(),
        "request_id": uuid.uuid4().hex,
        "outcome": "success",
        "query_hash": None,
    }
    runs = 20_000
    return timeit.timeit(lambda: row_hash(keys, row), number=runs) / runs * 1e6


async def run(url: str, rows: int, writers: int) -> None:
    database = Database(Settings(database_url=url, run_worker_in_serve=False))
    principal = Principal(uuid.uuid4(), "bench", frozenset(), False, "Dr Bench", None)
    per_writer = rows // writers // 3

    async def writer() -> None:
        for _ in range(per_writer):
            async with database.transaction() as session:
                await write_audit(
                    session,
                    principal,
                    [AuditEntry("death.read", "death", uuid.uuid4(), uuid.uuid4())] * 3,
                )

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    written = per_writer * writers * 3
    wrote = time.perf_counter() - started
    rate = written / wrote
    print(f"write: {written} rows in {wrote:.1f} s ({rate:,.0f} rows/s, {writers} writers)")
    started = time.perf_counter()
    sealed = await seal_audit(database)
    took = time.perf_counter() - started
    print(f"seal: {sealed} rows in {took:.1f} s ({sealed / took:,.0f} rows/s)")
    started = time.perf_counter()
    report = await verify_audit(database)
    took = time.perf_counter() - started
    checked = report.sealed + report.unsealed
    print(
        f"verify: {checked} rows in {took:.1f} s ({checked / took:,.0f} rows/s), "
        f"intact={report.intact}"
    )
    await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()
    print(f"row hash: {hash_cost():.1f} µs per row")
    upgrade(args.database_url)
    asyncio.run(run(args.database_url, args.rows, args.writers))


if __name__ == "__main__":
    main()
