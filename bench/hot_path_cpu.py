"""CPU per request of the hot paths in the service's own process: POST /v1/screenings and a
referral queue page (GET /v1/referrals), through the real app in-process (httpx over ASGI,
no network, no uvicorn) against a real database.

    python bench/hot_path_cpu.py --database-url postgresql+asyncpg://... \
        [--screenings 300] [--pages 300]

CPU time (``time.process_time``) rather than throughput, because it is what a change to the
request's own work moves, and it is much less disturbed than wall time by other processes on a
shared machine (wall time is printed too). PostgreSQL's own CPU is not counted. Runs under any
version of the service (it uses only create_app, Settings and create_client), so that two
checkouts can be compared on the same database server one after the other.
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
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.main import create_app
from app.migrate import upgrade

NHS = ["9992914173", "9997763173", "9990669074", "9990080631", "9996083772", "9998353378"]


def screening(counter: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "death": {
            "source_system": "bench",
            "source_reference": f"CPU-{uuid.uuid4().hex}",
            "nhs_number": NHS[counter % len(NHS)],
            "nhs_number_status": "01",
            "given_name": "Bench",
            "family_name": "Synthetic",
            "date_of_birth": "1941-05-17",
            "sex": "female",
            "postcode": "LS1 4AP",
            "died_at": (now - timedelta(days=3)).isoformat(),
            "place_of_death": "inpatient",
            "site": "Bench General",
            "admitting_specialty": "General Medicine",
            "specialty_at_death": "General Medicine",
            "admission_method": "emergency",
            "admitted_at": (now - timedelta(days=9)).isoformat(),
            "learning_disability": counter % 50 == 0,
        },
        "screening": {
            "examiner": {"name": "Dr Bench", "gmc_number": "1234567"},
            "screened_at": (now - timedelta(days=2)).isoformat(),
            "records_reviewed": True,
            "qap_discussed": True,
            "bereaved_contacted": True,
            "coroner_notified": False,
            "death_expected": counter % 5 != 0,
        },
    }


async def measure(label: str, count: int, call: Any) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    for counter in range(count):
        await call(counter)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    per_cpu, per_wall = cpu / count * 1000, wall / count * 1000
    print(
        f"{label}: {count} requests, CPU {per_cpu:.2f} ms/request, wall {per_wall:.2f} ms/request"
    )


async def run(url: str, screenings: int, pages: int) -> None:
    settings = Settings(database_url=url, run_worker_in_serve=False, log_level="WARNING")
    app = create_app(settings)
    database = app.state.database
    async with database.transaction() as session:
        created = await create_client(
            session, "cpu bench", [Scope.screenings_write, Scope.referrals_read]
        )
    headers = {"Authorization": f"Bearer {created.key}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:

        async def post(counter: int) -> None:
            response = await http.post(
                "/v1/screenings",
                json=screening(counter),
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            assert response.status_code == 201, response.text

        async def page(counter: int) -> None:
            response = await http.get(
                "/v1/referrals", params={"route": "sjr", "limit": "50"}, headers=headers
            )
            assert response.status_code == 200, response.text

        await measure("warm-up", 50, post)
        await measure("POST /v1/screenings", screenings, post)
        await measure("GET /v1/referrals?route=sjr&limit=50", pages, page)
    await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--screenings", type=int, default=300)
    parser.add_argument("--pages", type=int, default=300)
    args = parser.parse_args()
    upgrade(args.database_url)
    asyncio.run(run(args.database_url, args.screenings, args.pages))


if __name__ == "__main__":
    main()
