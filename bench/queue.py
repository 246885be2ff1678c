"""Queue pages under load: GET /v1/referrals against a running server.

    python bench/queue.py [--url http://127.0.0.1:8077] [--key KEY] [--concurrency 1,16]
        [--seconds 10] [--explain] [--database-url postgresql+asyncpg://...]
        [--server-pid PID] [--json results.json]

The key (``--key`` or LFD_BENCH_KEY) needs ``referrals:read``. For each scenario and each
concurrency level, that many clients (one asyncio task each, keep-alive connections) ask for
pages as fast as the server answers for ``--seconds``, after a short warm-up, and the script
reports throughput and latency percentiles. Scenarios, all with limit=50:

- ``sjr ready``: route=sjr&status=ready, the first page (the reviewers' queue);
- ``+ specialty`` / ``+ site``: the same, filtered to the specialty / site with the most work;
- ``sjr ready, deep``: pages far into the same queue, by the cursors of a walk through it
  (the last ten pages reached, up to ``--max-pages``);
- ``overdue``: overdue=true over every route; ``sjr overdue``: route=sjr&overdue=true;
- ``all ready``: status=ready over every route.

With ``--server-pid`` (the ``lfd serve`` process; its workers are its children) the script also
reports the CPU time spent per request by the server, by PostgreSQL (the backends connected to
the database named in ``--database-url``) and by this client, from /proc.

With ``--explain`` (needs ``--database-url`` or LFD_DATABASE_URL) it first runs the service's
own ``list_referrals`` in process for each scenario, captures the SELECT it sends, and prints
``EXPLAIN (ANALYZE, BUFFERS)`` of it on the same connection (the transaction is rolled back),
twice: as a custom plan (for these parameter values, what PostgreSQL does for the first five
executions of a prepared statement) and as a generic plan (blind to the values, which it may
switch to afterwards when it estimates that no dearer); then it says whether any plan scans
referrals or deaths sequentially.
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

# bench/queue.py shadows the standard library's queue module (which asyncio and
# concurrent.futures import) when a script here runs as ``python bench/<script>.py``, since
# Python puts the script's directory first on the path: take that directory off the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import asyncio
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

PAGE = 50


@dataclass
class Scenario:
    name: str
    params: list[dict[str, str]]  # one query string per request, used in turn

    def paths(self) -> list[str]:
        return [f"/v1/referrals?{urlencode(p)}" for p in self.params]


@dataclass
class Result:
    scenario: str
    concurrency: int
    requests: int
    seconds: float
    throughput: float
    p50: float
    p90: float
    p99: float
    max: float
    rows_per_page: float
    errors: dict[str, int] = field(default_factory=dict)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU per request, by process group
    connections: str = ""  # client connections per server worker, e.g. "8/8"


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


# -- CPU accounting from /proc ----------------------------------------------------------------
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) == pid:
            child = int(entry.name)
            found.append(child)
            found.extend(_children(child))
    return found


def _backends(database: str) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cmdline.startswith("postgres:") and f" {database} " in cmdline:
            found.append(int(entry.name))
    return found


def connections_by_process(pids: list[int], port: int) -> dict[int, int]:
    """Established TCP connections on local ``port``, by the process holding them."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(fields[9])
    found: dict[int, int] = {}
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        found[pid] = sum(1 for link in links if link[8:-1] in inodes)
    return found


class CpuMeter:
    """CPU seconds used by the server (a pid and its descendants), the PostgreSQL backends of
    one database, and this process, between ``start`` and ``stop``."""

    def __init__(self, server_pid: int | None, database: str | None) -> None:
        self.server_pid = server_pid
        self.database = database
        self.before: dict[str, dict[int, float]] = {}

    def _sample(self) -> dict[str, dict[int, float]]:
        groups: dict[str, dict[int, float]] = {"client": {os.getpid(): _cpu_seconds(os.getpid())}}
        if self.server_pid:
            pids = [self.server_pid, *_children(self.server_pid)]
            groups["server"] = {pid: _cpu_seconds(pid) for pid in pids}
        if self.database:
            groups["postgres"] = {pid: _cpu_seconds(pid) for pid in _backends(self.database)}
        return groups

    def start(self) -> None:
        self.before = self._sample()

    def spread(self, port: int) -> str:
        """How the client connections are spread over the server's processes."""
        if not self.server_pid:
            return ""
        found = connections_by_process([self.server_pid, *_children(self.server_pid)], port)
        return "/".join(str(n) for n in found.values() if n) or "0"

    def stop(self) -> dict[str, float]:
        after = self._sample()
        used: dict[str, float] = {}
        for group, pids in after.items():
            earlier = self.before.get(group, {})
            used[group] = sum(max(0.0, t - earlier.get(pid, 0.0)) for pid, t in pids.items())
        return used


# -- load -------------------------------------------------------------------------------------
async def run(
    client: httpx.AsyncClient,
    scenario: Scenario,
    concurrency: int,
    seconds: float,
    meter: CpuMeter | None,
    port: int = 0,
) -> Result:
    paths = scenario.paths()
    latencies: list[float] = []
    rows: list[int] = []
    errors = Counter[str]()
    counter = 0

    async def worker(deadline: float, record: bool, delay: float = 0.0) -> None:
        nonlocal counter
        await asyncio.sleep(delay)
        while time.perf_counter() < deadline:
            path = paths[counter % len(paths)]
            counter += 1
            started = time.perf_counter()
            try:
                response = await client.get(path)
            except httpx.HTTPError as error:
                errors[type(error).__name__] += 1
                continue
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                errors[str(response.status_code)] += 1
                continue
            if record:
                latencies.append(elapsed)
                rows.append(len(response.json()["items"]))

    # Warm-up. The clients start 20 ms apart so that their connections spread over the
    # server's workers: a burst of connections is accepted in one go by whichever worker wakes
    # first, and a keep-alive connection stays with the worker that accepted it.
    warm = time.perf_counter() + max(2.0, 0.02 * concurrency + 1.0)
    await asyncio.gather(*(worker(warm, False, 0.02 * n) for n in range(concurrency)))
    spread = meter.spread(port) if meter else ""
    if meter:
        meter.start()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(worker(deadline, True) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu = meter.stop() if meter else {}
    latencies.sort()
    n = len(latencies)
    return Result(
        scenario=scenario.name,
        concurrency=concurrency,
        requests=n,
        seconds=round(elapsed, 2),
        throughput=round(n / elapsed, 1),
        p50=round(percentile(latencies, 0.50) * 1000, 1),
        p90=round(percentile(latencies, 0.90) * 1000, 1),
        p99=round(percentile(latencies, 0.99) * 1000, 1),
        max=round((latencies[-1] if latencies else float("nan")) * 1000, 1),
        rows_per_page=round(sum(rows) / n, 1) if n else 0.0,
        errors=dict(errors),
        cpu_ms={group: round(1000 * used / max(n, 1), 2) for group, used in cpu.items()},
        connections=spread,
    )


async def walk(
    client: httpx.AsyncClient, params: dict[str, str], max_pages: int
) -> list[str | None]:
    """The cursor of every page of a queue, from the first (None), up to ``max_pages``."""
    cursors: list[str | None] = [None]
    while len(cursors) < max_pages:
        query = dict(params)
        if cursors[-1] is not None:
            query["cursor"] = cursors[-1]
        response = await client.get(f"/v1/referrals?{urlencode(query)}")
        response.raise_for_status()
        following = response.json()["next_cursor"]
        if following is None:
            break
        cursors.append(following)
    return cursors


async def scenarios(client: httpx.AsyncClient, max_pages: int) -> tuple[list[Scenario], str]:
    sjr = {"route": "sjr", "status": "ready", "limit": str(PAGE)}
    first = await client.get(f"/v1/referrals?{urlencode({**sjr, 'limit': '200'})}")
    first.raise_for_status()
    items = first.json()["items"]
    if not items:
        raise SystemExit("the sjr queue is empty: load data first (bench/load_referrals.py)")
    specialty = Counter(i["specialty"] for i in items if i["specialty"]).most_common(1)[0][0]
    site = Counter(i["site"] for i in items if i["site"]).most_common(1)[0][0]
    cursors = await walk(client, sjr, max_pages)
    deep = cursors[max(1, len(cursors) - 10) :] or cursors  # past the first page if there is one
    deep_pages = f"pages {len(cursors) - len(deep) + 1}-{len(cursors)} of {len(cursors)}"
    if len(cursors) >= max_pages:
        deep_pages += "+"
    found = [
        Scenario("sjr ready", [sjr]),
        Scenario("sjr ready + specialty", [{**sjr, "specialty": specialty}]),
        Scenario("sjr ready + site", [{**sjr, "site": site}]),
        Scenario(
            f"sjr ready, deep ({deep_pages})",
            [{**sjr, "cursor": c} if c else sjr for c in deep],
        ),
        Scenario("overdue", [{"overdue": "true", "limit": str(PAGE)}]),
        Scenario("sjr overdue", [{"route": "sjr", "overdue": "true", "limit": str(PAGE)}]),
        Scenario("all ready", [{"status": "ready", "limit": str(PAGE)}]),
    ]
    note = f"specialty={specialty!r}, site={site!r}, sjr ready queue: {deep_pages}"
    return found, note


# -- EXPLAIN of the service's own query -------------------------------------------------------
def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


async def explain(database_url: str, found: list[Scenario]) -> bool:
    """Run the service's list_referrals in process for each scenario, capture its SELECT and
    EXPLAIN (ANALYZE, BUFFERS) it. Returns True when no plan scans referrals or deaths
    sequentially."""
    import uuid
    from datetime import date

    from sqlalchemy import event

    from app.auth.deps import Principal
    from app.config import Settings
    from app.db import Database
    from app.kit.enums import ReferralStatus, Route

    try:
        from app.referrals.queue import ReferralFilters, list_referrals
    except ImportError:  # before the queue moved out of the service module
        from app.referrals.service import (  # type: ignore[no-redef,attr-defined]
            ReferralFilters,
            list_referrals,
        )

    database = Database(Settings(database_url=database_url))
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM referrals" in statement:
            captured.append((statement, parameters))

    event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
    principal = Principal(
        client_id=uuid.uuid4(),
        client_name="bench explain",
        scopes=frozenset({"referrals:read"}),
        pseudonymised=False,
        on_behalf_of=None,
        request_id=None,
    )
    clean = True
    scans: list[str] = []
    try:
        for scenario in found:
            params = dict(scenario.params[-1])
            cursor = params.pop("cursor", None)
            limit = int(params.pop("limit", PAGE))
            kwargs: dict[str, Any] = {}
            for name, value in params.items():
                if name == "route":
                    kwargs[name] = Route(value)
                elif name == "status":
                    kwargs[name] = ReferralStatus(value)
                elif name == "overdue":
                    kwargs[name] = value == "true"
                elif name == "due_before":
                    kwargs[name] = date.fromisoformat(value)
                else:
                    kwargs[name] = value
            filters = ReferralFilters(**kwargs)
            async with database.sessionmaker() as session, session.begin():
                for attempt in range(2):  # the second is the one shown: caches warm
                    captured.clear()
                    await list_referrals(session, principal, filters, cursor, limit)
                    statement, parameters = captured[-1]
                    connection = await session.connection()
                    raw = await connection.get_raw_connection()
                    driver = raw.driver_connection
                    assert driver is not None
                    args = list(parameters) if isinstance(parameters, (list, tuple)) else []
                    # The service's statements are prepared (asyncpg), and PostgreSQL may switch
                    # a prepared statement to a generic plan, blind to the parameter values,
                    # after five executions: show both plans.
                    plans = {}
                    await driver.execute(f"PREPARE bench_queue_page AS {statement}")
                    # EXECUTE takes values, not protocol parameters: quote each (the prepared
                    # statement's casts give them their types).
                    values = ", ".join(_literal(value) for value in args)
                    for mode in ("force_custom_plan", "force_generic_plan"):
                        await driver.execute(f"SET LOCAL plan_cache_mode = {mode}")
                        rows = await driver.fetch(
                            f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_queue_page({values})"
                        )
                        plans[mode] = "\n".join(row[0] for row in rows)
                    await driver.execute("SET LOCAL plan_cache_mode = auto")
                    await driver.execute("DEALLOCATE bench_queue_page")
                    if attempt == 1:
                        print(f"\n-- {scenario.name}: {json.dumps(scenario.params[-1])}")
                        print(statement.strip())
                        for mode, text in plans.items():
                            print(f"-- {mode.split('_')[1]} plan:")
                            print(text)
                            for table in ("referrals", "deaths"):
                                if f"Seq Scan on {table}" in text:
                                    clean = False
                                    kind = mode.split("_")[1]
                                    scans.append(f"{scenario.name} ({kind} plan) on {table}")
                                    print(f"!! sequential scan on {table} ({kind} plan)")
                await session.rollback()
    finally:
        await database.dispose()
    if clean:
        print("\nno sequential scan on referrals or deaths in any plan, custom or generic")
    else:
        print("\nSEQUENTIAL SCANS: " + "; ".join(scans))
    return clean


# -- main -------------------------------------------------------------------------------------
def table(results: list[Result]) -> str:
    lines = [
        "| scenario | clients | pages/s | p50 ms | p90 ms | p99 ms | max ms | rows/page | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        errors = ", ".join(f"{k}: {v}" for k, v in r.errors.items()) or "0"
        lines.append(
            f"| {r.scenario} | {r.concurrency} | {r.throughput} | {r.p50} | {r.p90} | {r.p99} "
            f"| {r.max} | {r.rows_per_page} | {errors} |"
        )
    return "\n".join(lines)


def cpu_table(results: list[Result]) -> str:
    groups = sorted({g for r in results for g in r.cpu_ms})
    if not groups:
        return ""
    lines = [
        "| scenario | clients | " + " | ".join(f"{g} CPU ms/page" for g in groups) + " |",
        "|---|---|" + "---|" * len(groups),
    ]
    for r in results:
        cells = " | ".join(str(r.cpu_ms.get(g, "")) for g in groups)
        lines.append(f"| {r.scenario} | {r.concurrency} | {cells} |")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get("LFD_BENCH_KEY")
    if not key:
        raise SystemExit("give --key or LFD_BENCH_KEY (a client with referrals:read)")
    levels = [int(c) for c in args.concurrency.split(",")]
    database_url = args.database_url or os.environ.get("LFD_DATABASE_URL")
    database_name = database_url.rsplit("/", 1)[-1].split("?")[0] if database_url else None
    limits = httpx.Limits(max_connections=max(levels), max_keepalive_connections=max(levels))
    async with httpx.AsyncClient(
        base_url=args.url,
        headers={"Authorization": f"Bearer {key}"},
        limits=limits,
        timeout=30.0,
    ) as client:
        found, note = await scenarios(client, args.max_pages)
        print(f"queue: {note}")
        clean = True
        if args.explain:
            if not database_url:
                raise SystemExit("--explain needs --database-url or LFD_DATABASE_URL")
            clean = await explain(database_url, found)
            if args.explain_only:
                return 0 if clean else 1
        selected = [s for s in found if not args.only or any(o in s.name for o in args.only)]
        meter = CpuMeter(args.server_pid, database_name) if args.server_pid else None
        results: list[Result] = []
        for concurrency in levels:
            for scenario in selected:
                result = await run(
                    client,
                    scenario,
                    concurrency,
                    args.seconds,
                    meter,
                    urlsplit(args.url).port or 80,
                )
                results.append(result)
                print(
                    f"{scenario.name:<40} c={concurrency:<3} {result.throughput:>7}/s "
                    f"p50 {result.p50:>6} ms  p99 {result.p99:>6} ms  "
                    f"rows {result.rows_per_page}  errors {result.errors or 0}"
                    + (f"  cpu ms/page {result.cpu_ms}" if result.cpu_ms else "")
                    + (f"  connections {result.connections}" if result.connections else ""),
                    flush=True,
                )
    print()
    print(table(results))
    if meter:
        print()
        print(cpu_table(results))
    if args.json:
        report = {"note": note, "results": [asdict(r) for r in results]}
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(report, indent=2))
    failed = any(r.errors for r in results)
    return 1 if failed or not clean else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("LFD_BENCH_URL", "http://127.0.0.1:8077"))
    parser.add_argument("--key", default=None)
    parser.add_argument("--concurrency", default="1,16", help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario and level")
    parser.add_argument("--max-pages", type=int, default=100, help="how deep to walk the queue")
    parser.add_argument("--only", action="append", help="run scenarios whose name contains this")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--explain-only", action="store_true")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    if args.explain_only:
        args.explain = True
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
