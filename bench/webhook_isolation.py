"""A healthy webhook endpoint's delivery latency, with and without a hanging endpoint beside it.

    LFD_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/lfd_bench \
        .venv/bin/python bench/webhook_isolation.py --seconds 40 --rate 5

Migrates the database, starts a receiver (uvicorn, a bare ASGI app in its own process) that
answers the healthy endpoint at once and records when each message arrived, and never answers
the hanging endpoint (the worker's timeout ends each attempt: LFD_WEBHOOK_TIMEOUT_SECONDS, 10 s
by default). Registers the healthy endpoint (and, in the second run, a hanging one subscribed to
the same events), starts the service's own webhook loop (app.webhooks.worker.webhook_worker:
fan-out and sending every second, default settings), commits ``--rate`` events a second for
``--seconds`` seconds, each in its own transaction, and reports the healthy endpoint's latency
from an event's commit to its arrival at the receiver: median, p95, max, and how many arrived.
Runs against whatever checkout it sits in (the worker's API it uses is the same before and after
issue 11's defect 6). The endpoints are deleted at the end; the events stay in the outbox.
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import delete

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.events.service import Change, emit
from app.migrate import upgrade
from app.models import WebhookEndpoint
from app.webhooks.signing import new_secret
from app.webhooks.worker import fan_out, webhook_worker
from bench.kit import Receiver, start_receiver

EVENT_TYPE = "theme.updated"

RECEIVER = """
import asyncio, json, time
arrived = {}

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "GET":
        body = json.dumps(arrived).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    if scope["path"].startswith("/hooks/hang-"):
        await asyncio.sleep(3600)  # never answers: the worker's timeout ends the attempt
    arrived.setdefault(json.loads(body)["data"]["resource_id"], time.time())
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
"""


@dataclass(frozen=True)
class System:
    client_id: uuid.UUID | None = None
    request_id: str | None = None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def run_case(args: argparse.Namespace, receiver: Receiver, hanging: bool) -> str:
    settings = Settings(
        database_url=os.environ["LFD_DATABASE_URL"],
        webhook_allowed_urls=[f"{receiver.base}/hooks/"],
        run_worker_in_serve=False,
    )
    database = Database(settings)
    worker = webhook_worker(database)
    try:
        await fan_out(database, max_pages=1_000_000)  # skip what earlier runs left
        async with database.transaction() as session:
            client = (
                await create_client(session, f"bench-{uuid.uuid4().hex[:6]}", [Scope.admin])
            ).client
            names = ["healthy-"] + (["hang-"] if hanging else [])
            for name in names:
                session.add(
                    WebhookEndpoint(
                        id=uuid.uuid4(),
                        url=f"{receiver.base}/hooks/{name}{uuid.uuid4().hex}",
                        description="bench-isolation",
                        event_types=[EVENT_TYPE],
                        secret=new_secret(),
                        enabled=True,
                        created_by_client_id=client.id,
                        version=1,
                    )
                )
        worker.start()
        committed: dict[str, float] = {}
        started = time.monotonic()
        for n in range(int(args.seconds * args.rate)):
            await asyncio.sleep(max(0.0, started + n / args.rate - time.monotonic()))
            resource = uuid.uuid4()
            async with database.transaction() as session:
                change = Change(EVENT_TYPE, "theme", resource, None, ["name"])
                await emit(session, System(), [change])
            committed[str(resource)] = time.time()
        # Let the last ones arrive (or not): at most a minute.
        async with httpx.AsyncClient() as probe:
            for _ in range(600):
                arrived: dict[str, float] = (await probe.get(f"{receiver.base}/arrived")).json()
                if all(resource in arrived for resource in committed):
                    break
                await asyncio.sleep(0.1)
        latencies = [arrived[i] - at for i, at in committed.items() if i in arrived]
        label = "with one hanging endpoint" if hanging else "healthy endpoint alone   "
        return (
            f"{label}: {len(latencies)}/{len(committed)} arrived; latency median "
            f"{statistics.median(latencies):.2f} s, p95 {percentile(latencies, 0.95):.2f} s, "
            f"max {max(latencies):.2f} s"
        )
    finally:
        await worker.close(grace_seconds=2)
        async with database.transaction() as session:
            await session.execute(
                delete(WebhookEndpoint).where(WebhookEndpoint.description == "bench-isolation")
            )
        await database.dispose()


async def run(args: argparse.Namespace, workdir: Path) -> None:
    print(
        f"{args.rate} events/s for {args.seconds} s, {os.environ['LFD_DATABASE_URL'].split(':')[0]}"
    )
    for hanging in (False, True):
        receiver = start_receiver(
            workdir, "isolation_receiver", RECEIVER, "/arrived", "--timeout-graceful-shutdown", "1"
        )
        try:
            print(await run_case(args, receiver, hanging), flush=True)
        finally:
            receiver.process.terminate()
            receiver.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--rate", type=float, default=5)
    args = parser.parse_args()
    upgrade(os.environ["LFD_DATABASE_URL"])
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"lfd-bench-isolation-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}")
    asyncio.run(run(args, workdir))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
