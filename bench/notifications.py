"""Death notifications per second on PostgreSQL: JSON (POST /v1/death-notifications), HL7 v2
over HTTP (POST /v1/hl7v2/adt) and HL7 v2 over MLLP (`lfd mllp`).

    psql -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE lfd_bench_notifications"
    LFD_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/lfd_bench_notifications \
        .venv/bin/python bench/notifications.py --seconds 20 --concurrency 16 --workers 2

Migrates the database, creates an API client with `notifications:write`, starts `lfd serve`
(``--workers`` uvicorn workers) and `lfd mllp` (one process) as subprocesses, and for each
channel in turn keeps ``--concurrency`` senders busy for ``--seconds`` seconds (HTTP: one
httpx connection each; MLLP: one TCP connection each, message after message, each waiting for
its ACK), every message a new patient's death. Prints notifications per second and latency
percentiles per channel, and counts the errors (anything but 201 / ACK AA). Each sender runs
in this process (one core's worth of asyncio), on the same machine as the service.
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
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.hl7v2.mllp import END, START
from app.migrate import upgrade
from tests.kit.hl7 import adt
from tests.kit.notifications import notification_body

ROOT = Path(__file__).resolve().parent.parent
LFD = str(ROOT / ".venv" / "bin" / "lfd")


async def make_key(url: str) -> str:
    database = Database(Settings(database_url=url, run_worker_in_serve=False))
    try:
        async with database.transaction() as session:
            made = await create_client(session, "bench notifications", [Scope.notifications_write])
        return made.key
    finally:
        await database.dispose()


async def drive(
    seconds: float, concurrency: int, send: Callable[[int], Awaitable[bool]]
) -> tuple[int, int, list[float]]:
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = 0

    async def sender(index: int) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            ok = await send(index)
            latencies.append(time.perf_counter() - started)
            errors += 0 if ok else 1

    await asyncio.gather(*(sender(i) for i in range(concurrency)))
    return len(latencies), errors, latencies


def report(name: str, seconds: float, done: int, errors: int, latencies: list[float]) -> None:
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    print(
        f"{name:22s} {done / seconds:8.1f}/s  p50 {cuts[49] * 1000:6.1f} ms  "
        f"p90 {cuts[89] * 1000:6.1f} ms  p99 {cuts[98] * 1000:6.1f} ms  "
        f"n={done} errors={errors}"
    )


async def http_channel(
    port: int, key: str, seconds: float, concurrency: int, hl7: bool
) -> tuple[int, int, list[float]]:
    clients = [
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        for _ in range(concurrency)
    ]

    async def send(index: int) -> bool:
        if hl7:
            response = await clients[index].post(
                "/v1/hl7v2/adt",
                content=adt().encode(),
                headers={"Content-Type": "application/hl7-v2"},
            )
            return response.status_code == 200
        response = await clients[index].post("/v1/death-notifications", json=notification_body())
        return response.status_code == 201

    try:
        return await drive(seconds, concurrency, send)
    finally:
        for client in clients:
            await client.aclose()


async def mllp_channel(port: int, seconds: float, concurrency: int) -> tuple[int, int, list[float]]:
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(concurrency)]

    async def send(index: int) -> bool:
        reader, writer = connections[index]
        writer.write(START + adt().encode() + END)
        await writer.drain()
        answer = await reader.readuntil(END)
        return b"MSA|AA|" in answer

    try:
        return await drive(seconds, concurrency, send)
    finally:
        for _, writer in connections:
            writer.close()


async def wait_for_port(port: int) -> None:
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8078)
    parser.add_argument("--mllp-port", type=int, default=2576)
    args = parser.parse_args()
    url = os.environ["LFD_DATABASE_URL"]
    key = await make_key(url)
    env = {**os.environ, "LFD_LOG_LEVEL": "INFO", "LFD_RUN_WORKER_IN_SERVE": "false"}
    server = subprocess.Popen(  # noqa: ASYNC220
        [LFD, "serve", "--no-migrate", "--port", str(args.port), "--workers", str(args.workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    mllp = subprocess.Popen(  # noqa: ASYNC220
        [LFD, "mllp", "--port", str(args.mllp_port)],
        env={**env, "LFD_MLLP_API_KEY": key},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_for_port(args.port)
        await wait_for_port(args.mllp_port)
        print(
            f"loadavg {os.getloadavg()}, {args.concurrency} senders, {args.seconds:g} s each, "
            f"{args.workers} uvicorn workers, 1 MLLP process"
        )
        await http_channel(args.port, key, 3, args.concurrency, hl7=False)  # warm-up
        runs = [
            ("JSON over HTTP", http_channel(args.port, key, args.seconds, args.concurrency, False)),
            (
                "HL7 v2 over HTTP",
                http_channel(args.port, key, args.seconds, args.concurrency, True),
            ),
            ("HL7 v2 over MLLP", mllp_channel(args.mllp_port, args.seconds, args.concurrency)),
        ]
        for name, run in runs:
            done, errors, latencies = await run
            report(name, args.seconds, done, errors, latencies)
    finally:
        for process in (server, mllp):
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    # Before the event loop: Alembic's env runs its own asyncio.run.
    upgrade(os.environ["LFD_DATABASE_URL"])
    asyncio.run(main())
