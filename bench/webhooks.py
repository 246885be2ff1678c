"""Webhook delivery throughput to a local receiver.

    LFD_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/lfd_bench \
        .venv/bin/python bench/webhooks.py --events 2000 --endpoints 5 --concurrency 10

Migrates the database, starts a receiver (uvicorn, a bare ASGI app that answers 204, in its own
process), registers M endpoints for one event type, writes N events (500 per transaction,
like a busy intake), then runs the worker's own functions: fan-out until every event has
become M deliveries, and sending until every delivery is delivered. Prints the rates and
checks the receiver saw each (endpoint, webhook-id) exactly once. The endpoints (and their
deliveries) are deleted at the end; the events stay in the outbox.
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

# bench/queue.py would shadow the standard library's queue module: take this directory off the
# path and put the checkout's root on it (as bench/import_export.py does).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import delete, func, select

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.events.service import Change, emit
from app.migrate import upgrade
from app.models import WebhookDelivery, WebhookEndpoint
from app.webhooks.signing import new_secret
from app.webhooks.worker import fan_out, send_due
from bench.kit import Receiver, start_receiver

EVENT_TYPE = "theme.updated"

RECEIVER = """
import collections, sys
seen = collections.Counter()

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
        total, repeated = sum(seen.values()), sum(1 for n in seen.values() if n > 1)
        out = f"{total} {repeated}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": out})
        return
    headers = dict(scope["headers"])
    seen[(scope["path"], headers.get(b"webhook-id"))] += 1
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
"""


async def run(args: argparse.Namespace, receiver: Receiver) -> None:
    settings = Settings(
        database_url=os.environ["LFD_DATABASE_URL"],
        webhook_allowed_urls=[f"{receiver.base}/hooks/"],
        webhook_concurrency=args.concurrency,
        run_worker_in_serve=False,
    )
    database = Database(settings)
    try:
        await fan_out(database, max_pages=1_000_000)  # no endpoints yet: skip to the head
        async with database.transaction() as session:
            client = (
                await create_client(session, f"bench-{uuid.uuid4().hex[:6]}", [Scope.admin])
            ).client
            endpoint_ids = []
            for _ in range(args.endpoints):
                endpoint = WebhookEndpoint(
                    id=uuid.uuid4(),
                    url=f"{receiver.base}/hooks/{uuid.uuid4().hex}",
                    description="bench",
                    event_types=[EVENT_TYPE],
                    secret=new_secret(),
                    enabled=True,
                    created_by_client_id=client.id,
                    version=1,
                )
                session.add(endpoint)
                endpoint_ids.append(endpoint.id)

        @dataclass(frozen=True)
        class System:
            client_id: uuid.UUID | None = None
            request_id: str | None = None

        for start in range(0, args.events, 500):
            async with database.transaction() as session:
                changes = [
                    Change(EVENT_TYPE, "theme", uuid.uuid4(), None, ["name"])
                    for _ in range(min(500, args.events - start))
                ]
                await emit(session, System(), changes)

        expected = args.events * args.endpoints

        async def count(status: str | None = None) -> int:
            async with database.transaction() as session:
                query = select(func.count()).where(WebhookDelivery.endpoint_id.in_(endpoint_ids))
                if status:
                    query = query.where(WebhookDelivery.status == status)
                return int(await session.scalar(query) or 0)

        # Wall time includes waiting for the feed's horizon (older transactions anywhere on the
        # server must finish first); "working" counts only the fan-out passes that made rows.
        started = time.perf_counter()
        working = 0.0
        while await count() < expected:
            before = time.perf_counter()
            if await fan_out(database, max_pages=1_000_000):
                working += time.perf_counter() - before
            else:
                await asyncio.sleep(0.05)
        fanned = time.perf_counter() - started

        started, cpu = time.perf_counter(), time.process_time()
        while await count("delivered") < expected:
            if not await send_due(database, batch=args.batch, max_batches=1_000_000):
                await asyncio.sleep(0.05)
        sent, cpu = time.perf_counter() - started, time.process_time() - cpu

        async with httpx.AsyncClient() as probe:
            counts = (await probe.get(f"{receiver.base}/count")).text
        total, repeated = map(int, counts.split())
        print(
            f"{args.events} events x {args.endpoints} endpoints = {expected} deliveries "
            f"(concurrency {args.concurrency}, claim batch {args.batch}, "
            f"{settings.database_url.split(':', 1)[0]})"
        )
        print(
            f"fan-out: {fanned:.2f} s wall, {working:.2f} s working, "
            f"{expected / working:,.0f} deliveries/s while working"
        )
        print(
            f"send:    {sent:.2f} s, {expected / sent:,.0f} deliveries/s; worker CPU {cpu:.1f} s "
            f"({cpu / expected * 1000:.2f} ms per delivery)"
        )
        print(f"receiver: {total} requests, {repeated} (endpoint, webhook-id) seen twice")
    finally:
        async with database.transaction() as session:
            await session.execute(
                delete(WebhookEndpoint).where(WebhookEndpoint.description == "bench")
            )
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--endpoints", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    upgrade(os.environ["LFD_DATABASE_URL"])
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"lfd-bench-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    receiver = start_receiver(workdir, "bench_receiver", RECEIVER, "/count")
    try:
        asyncio.run(run(args, receiver))
    finally:
        receiver.process.terminate()
        receiver.process.wait()


if __name__ == "__main__":
    main()
