"""The service against the floor (bench/floor.py), side by side in one run (issue 19).

    .venv/bin/python bench/floor_compare.py [--seconds 15] [--rounds 3] [--connections 32]
        [--ops screening,queue,claim,case] [--deaths 100000] [--loader auto|wrk|python]
        [--database lfd_bench_floor] [--reuse] [--keep] [--json results.json]

What it does, so that anyone can repeat it:

1. Makes a fresh PostgreSQL database (``--database``, on PGHOST/PGPORT/PGUSER, default
   127.0.0.1:5432 postgres; ``--reuse`` keeps one made before), migrates it, makes the service
   role (app.migrate.grant_service_role: no owner, no BYPASSRLS, so row-level security is in
   force for the service as in production), loads ``--deaths`` synthetic deaths with their
   screenings and referrals (bench/load_referrals.py), and turns the finished SJRs back into
   ready ones so that 32 claimers have enough to claim for every round (the claim pool). It
   creates one API client (screenings:write, deaths:read, referrals:read, referrals:claim)
   and picks 1,000 deaths with referrals for the whole-case reads.
2. Starts both apps, each one uvicorn worker on its own port: the service (``lfd serve
   --workers 1``, INFO logging as in production, the background runner off (it is its own
   ``lfd worker`` process in a deployment of several workers), rate limits raised out of the
   way but still checked) connected as the service role; the floor (``uvicorn bench.floor:app``)
   connected as the owner.
3. For each operation, warms both up (3 s each), then runs ``--rounds`` rounds of ``--seconds``
   each, floor and service alternately (the order flips every round, so that a change in the
   machine's load falls on both alike), ``--connections`` keep-alive connections each. Before
   every claim round the claim pool's leases are cleared.
4. Measures per round: requests/s, p50/p99/max latency, non-2xx answers, the load average, and
   CPU time per request of the app's process and of PostgreSQL (the backends of that app's
   role and database, from /proc), and for claims: referrals leased per second and double
   claims (a referral handed out twice in the round; leases are long, none is released).
5. Prints a table per round and the ratios service/floor of the medians of the rounds.

The load generator: ``wrk`` (C, cheap: what the issue measured with) when it is installed
(Debian: ``apt-get install wrk``), with the Lua scripts written next to the results; otherwise
(or ``--loader python``) a minimal HTTP/1.1 keep-alive client on asyncio in this process (no
httpx: it would cost the shared cores more than the apps it measures). Both share the two
cores with the apps and PostgreSQL, as the issue's measurements did.
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
import json
import random
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

ROOT = Path(_HERE).parent
VENV_BIN = Path(sys.executable).parent
ROLE = "lfd_bench_service"
OPS = ("screening", "queue", "claim", "case")
QUEUE_PATH = "/v1/referrals?route=sjr&status=ready&limit=50"
TICK = os.sysconf("SC_CLK_TCK")


# -- CPU from /proc ------------------------------------------------------------------------------


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _backends(user: str, database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend of ``user`` on ``database`` (its process title is
    ``postgres: <user> <database> <client> <state>``)."""
    found: dict[int, float] = {}
    # "postgres: <user> <database> ..." or, with a cluster name, "postgres: 15/main: <user> ..."
    marker = f" {user} {database} ".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
            if title.startswith(b"postgres: ") and marker in title:
                found[int(entry.name)] = _cpu(int(entry.name))
        except OSError:
            continue
    return found


@dataclass
class Meter:
    pid: int
    user: str
    database: str
    app: float = 0.0
    backends: dict[int, float] = field(default_factory=dict)

    def start(self) -> None:
        self.app, self.backends = _cpu(self.pid), _backends(self.user, self.database)

    def stop(self) -> tuple[float, float]:
        now = _backends(self.user, self.database)
        pg = sum(cpu - self.backends.get(pid, 0.0) for pid, cpu in now.items())
        return _cpu(self.pid) - self.app, pg


# -- the load generators -------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    errors: int
    claimed: list[str] = field(default_factory=list)


def _body_for(op: str, counter: int, tag: str) -> bytes:
    if op == "claim":
        return b'{"route":"sjr","count":1}'
    now = datetime.now(UTC)
    ref = f"FLOOR-{tag}-{counter}-{uuid.uuid4().hex[:8]}"
    ld = counter % 50 == 0
    specialties = ("General Medicine", "Care of the Elderly", "Cardiology", "Respiratory")
    body = {
        "death": {
            "source_system": "bench",
            "source_reference": ref,
            "nhs_number": nhs_number(),
            "nhs_number_status": "01",
            "given_name": "Bench",
            "family_name": "Synthetic",
            "date_of_birth": "1941-05-17",
            "sex": "female",
            "postcode": "LS1 4AP",
            "died_at": (now - timedelta(days=3)).isoformat(),
            "place_of_death": "inpatient",
            "site": "Bench General",
            "admitting_specialty": specialties[counter % 4],
            "specialty_at_death": specialties[counter % 4],
            "admission_method": "emergency",
            "admitted_at": (now - timedelta(days=9)).isoformat(),
            "learning_disability": ld,
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
    return json.dumps(body).encode()


def nhs_number() -> str:
    """A new patient's: a random number in the reserved 999 range with a valid Modulus 11 check
    digit (a repeated one would flag each death as a possible duplicate of all before it)."""
    while True:
        digits = "999" + f"{random.randrange(1_000_000):06d}"
        check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11
        if check != 10:
            return digits + str(check % 11)


def _request(op: str, key: str, counter: int, tag: str, case_ids: list[str]) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n"
    if op == "queue":
        return f"GET {QUEUE_PATH} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode()
    if op == "case":
        death = case_ids[counter % len(case_ids)]
        return f"GET /v1/deaths/{death} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode()
    body = _body_for(op, counter, tag)
    path = "/v1/screenings" if op == "screening" else "/v1/referrals/claim"
    idem = f"Idempotency-Key: {tag}-{counter}-{uuid.uuid4().hex}\r\n" if op == "screening" else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\n{auth}{idem}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def python_load(
    port: int, op: str, key: str, seconds: float, connections: int, case_ids: list[str]
) -> Load:
    """``connections`` keep-alive HTTP/1.1 connections, each sending its next request when the
    last is answered, for ``seconds``."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    claimed: list[str] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def client(index: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        counter = 0
        try:
            while time.perf_counter() < deadline:
                counter += 1
                request = _request(op, key, counter, f"{index}", case_ids)
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - sent)
                status = head[9:12].decode()
                statuses[status] += 1
                if op == "claim" and status == "200":
                    claimed.extend(item["id"] for item in json.loads(body)["items"])
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(client(i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return Load(
        len(latencies), elapsed, pct(0.5), pct(0.9), pct(0.99), latencies[-1] * 1000,
        dict(statuses), errors, claimed,
    )  # fmt: skip


WRK_COMMON = r"""
local statuses = {}
local claimed = {}
local threads = {}
function setup(thread)
  thread:set("thread_tag", tostring(math.random(1, 1e9)))
  table.insert(threads, thread)
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if CLAIM then
    for id in string.gmatch(body, '{"id":"([%x%-]+)"') do claimed[#claimed + 1] = id end
  end
end
function done(summary, latency, requests)
  local out = io.open(os.getenv("WRK_OUT"), "w")
  local all = {}
  local st = {}
  for _, t in ipairs(threads) do
    local c = t:get("claimed_text") or ""
    all[#all + 1] = c
    local s = t:get("statuses_text") or ""
    st[#st + 1] = s
  end
  out:write(string.format('{"requests":%d,"seconds":%f,"p50":%f,"p90":%f,"p99":%f,"max":%f,',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  out:write(string.format('"errors":%d,', summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
  out:write('"statuses":"' .. table.concat(st, " ") .. '",')
  out:write('"claimed":"' .. table.concat(all, " ") .. '"}')
  out:close()
end
"""

# Each thread keeps its own tallies; summarised as text (wrk copies only strings and numbers
# between a thread and done()), refreshed every response.
WRK_PER_THREAD = r"""
local function summarise()
  local parts = {}
  for s, n in pairs(statuses) do parts[#parts + 1] = s .. "=" .. n end
  statuses_text = table.concat(parts, ",")
  if CLAIM then claimed_text = table.concat(claimed, " ") end
end
local inner = response
response = function(status, headers, body)
  inner(status, headers, body)
  summarise()
end
"""


def wrk_script(op: str, key: str, case_file: Path) -> str:
    lua = [f"CLAIM = {'true' if op == 'claim' else 'false'}", WRK_COMMON, WRK_PER_THREAD]
    auth = f'["Authorization"] = "Bearer {key}"'
    if op == "queue":
        lua.append(f'request = function() return wrk.format("GET", "{QUEUE_PATH}", {{{auth}}}) end')
    elif op == "claim":
        lua.append(
            'request = function() return wrk.format("POST", "/v1/referrals/claim", '
            f'{{{auth}, ["Content-Type"] = "application/json"}}, '
            '\'{"route":"sjr","count":1}\') end'
        )
    elif op == "case":
        lua.append(
            f'local ids = {{}}\nfor line in io.lines("{case_file}") do ids[#ids + 1] = line end\n'
            "local n = 0\nrequest = function()\n  n = n + 1\n"
            f'  return wrk.format("GET", "/v1/deaths/" .. ids[(n % #ids) + 1], {{{auth}}})\nend'
        )
    else:
        screening = (ROOT / "bench" / "screenings.lua").read_text()
        # bench/screenings.lua's request(), without its own response() and done().
        lua.append(
            screening.split("response = function")[0]
            .replace('os.getenv("LFD_BENCH_KEY") or error("set LFD_BENCH_KEY")', f'"{key}"')
            .replace("function setup(thread)", "local function _setup(thread)")
        )
    return "\n".join(lua)


async def wrk_load(
    port: int, op: str, key: str, seconds: float, connections: int, workdir: Path
) -> Load:
    script = workdir / f"{op}.lua"
    script.write_text(wrk_script(op, key, workdir / "case_ids.txt"))
    out = workdir / "wrk.json"
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s",
        str(script), f"http://127.0.0.1:{port}",
        env={**os.environ, "WRK_OUT": str(out)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed: {stderr.decode()[-500:]}")
    data = json.loads(out.read_text())
    statuses: Counter[str] = Counter()
    for part in data["statuses"].replace(" ", ",").split(","):
        if part:
            status, count = part.split("=")
            statuses[status] += int(count)
    return Load(
        data["requests"], data["seconds"], data["p50"], data["p90"], data["p99"], data["max"],
        dict(statuses), data["errors"], data["claimed"].split(),
    )  # fmt: skip


# -- setting up ----------------------------------------------------------------------------------


@dataclass
class Setup:
    owner_dsn: str
    service_url: str
    database: str
    key: str
    case_ids: list[str]


def _dsn(database: str, user: str) -> str:
    host, port = os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "5432")
    return f"postgresql://{user}@{host}:{port}/{database}"


def _run(command: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n{done.stderr[-2000:]}")
    return done.stdout


async def prepare(args: argparse.Namespace, workdir: Path) -> Setup:
    owner = os.environ.get("PGUSER", "postgres")
    owner_dsn = _dsn(args.database, owner)
    owner_url = owner_dsn.replace("postgresql://", "postgresql+asyncpg://")
    service_url = _dsn(args.database, ROLE).replace("postgresql://", "postgresql+asyncpg://")
    admin = await asyncpg.connect(_dsn("postgres", owner))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", args.database)
        fresh = not (exists and args.reuse)
        if fresh:
            await admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{args.database}"')
    finally:
        await admin.close()
    env = {"LFD_DATABASE_URL": owner_url}
    if fresh:
        print(f"migrating and loading {args.deaths} deaths into {args.database} ...", flush=True)
        _run([str(VENV_BIN / "lfd"), "migrate"], env)
        from app.migrate import grant_service_role

        await asyncio.to_thread(grant_service_role, owner_url, ROLE)
        _run(
            [sys.executable, "bench/load_referrals.py", "--deaths", str(args.deaths),
             "--database-url", owner_url],
        )  # fmt: skip
        conn = await asyncpg.connect(owner_dsn)
        try:
            pool = await conn.execute(
                "UPDATE referrals SET status = 'ready', status_reason = NULL, completed_at = NULL,"
                " assigned_to = NULL, excluded_reviewer = NULL WHERE route = 'sjr'"
                " AND status IN ('completed', 'declined', 'cancelled')"
            )
            print(f"claim pool: {pool}", flush=True)
            await conn.execute("VACUUM ANALYZE referrals")
        finally:
            await conn.close()
    else:
        from app.migrate import grant_service_role

        await asyncio.to_thread(grant_service_role, owner_url, ROLE)
    created = _run(
        [str(VENV_BIN / "lfd"), "clients", "create", "--name", f"floor-{uuid.uuid4().hex[:6]}",
         "--scope", "screenings:write", "--scope", "deaths:read", "--scope", "referrals:read",
         "--scope", "referrals:claim", "--json"],
        env,
    )  # fmt: skip
    key = json.loads(created)["key"]
    conn = await asyncpg.connect(owner_dsn)
    try:
        rows = await conn.fetch(
            "SELECT death_id FROM (SELECT DISTINCT death_id FROM referrals) d"
            " ORDER BY md5(death_id::text) LIMIT 1000"
        )
    finally:
        await conn.close()
    case_ids = [str(row["death_id"]) for row in rows]
    (workdir / "case_ids.txt").write_text("\n".join(case_ids) + "\n")
    return Setup(owner_dsn, service_url, args.database, key, case_ids)


async def reset_claims(owner_dsn: str) -> None:
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute(
            "UPDATE referrals SET lease_id = NULL, leased_by = NULL, leased_to = NULL,"
            " claimed_at = NULL, lease_expires_at = NULL"
            " WHERE route = 'sjr' AND lease_id IS NOT NULL"
        )
    finally:
        await conn.close()


@dataclass
class App:
    name: str
    port: int
    user: str
    process: subprocess.Popen[bytes]


def start_apps(args: argparse.Namespace, setup: Setup, workdir: Path) -> list[App]:
    service_env = {
        **os.environ,
        "LFD_DATABASE_URL": setup.service_url,
        "LFD_MIGRATION_DATABASE_URL": setup.owner_dsn.replace(
            "postgresql://", "postgresql+asyncpg://"
        ),
        "LFD_LOG_LEVEL": "INFO",
        "LFD_RUN_WORKER_IN_SERVE": "false",
        "LFD_RATE_LIMIT_PER_SECOND": "1000000",
        "LFD_RATE_LIMIT_BURST": "1000000",
        "LFD_RATE_LIMIT_ROUTES": "{}",
    }
    service = subprocess.Popen(
        [str(VENV_BIN / "lfd"), "serve", "--no-migrate", "--workers", "1",
         "--port", str(args.service_port)],
        cwd=ROOT, env=service_env, stdout=(workdir / "service.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    floor = subprocess.Popen(
        [str(VENV_BIN / "uvicorn"), "bench.floor:app", "--workers", "1", "--no-access-log",
         "--log-level", "warning", "--port", str(args.floor_port)],
        cwd=ROOT, env={**os.environ, "FLOOR_DATABASE_URL": setup.owner_dsn},
        stdout=(workdir / "floor.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    owner = os.environ.get("PGUSER", "postgres")
    return [
        App("floor", args.floor_port, owner, floor),
        App("service", args.service_port, ROLE, service),
    ]


async def wait_ready(app: App) -> None:
    for _ in range(300):
        if app.process.poll() is not None:
            raise RuntimeError(f"{app.name} exited; see its log")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
            if head[9:12] == b"200":
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{app.name} did not start")


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class Round:
    op: str
    app: str
    round: int
    rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    app_cpu_ms: float
    pg_cpu_ms: float
    load_before: float
    load_after: float
    statuses: dict[str, int]
    errors: int
    claims_per_second: float | None = None
    double_claims: int | None = None


async def measure(
    args: argparse.Namespace, setup: Setup, app: App, op: str, seconds: float, workdir: Path
) -> Round:
    meter = Meter(app.process.pid, app.user, setup.database)
    load_before = os.getloadavg()[0]
    meter.start()
    if args.loader == "wrk":
        load = await wrk_load(app.port, op, setup.key, seconds, args.connections, workdir)
    else:
        load = await python_load(app.port, op, setup.key, seconds, args.connections, setup.case_ids)
    app_cpu, pg_cpu = meter.stop()
    ok = sum(n for status, n in load.statuses.items() if status.startswith("2"))
    per = 1000 / max(load.requests, 1)
    result = Round(
        op, app.name, 0, ok / load.seconds, load.p50_ms, load.p99_ms, load.max_ms,
        app_cpu * per, pg_cpu * per, load_before, os.getloadavg()[0], load.statuses,
        load.errors,
    )  # fmt: skip
    if op == "claim":
        counts = Counter(load.claimed)
        result.claims_per_second = len(load.claimed) / load.seconds
        result.double_claims = sum(n - 1 for n in counts.values() if n > 1)
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(results: list[Round]) -> str:
    lines = [
        "| operation | app | round | req/s | p50 ms | p99 ms | app CPU ms/req | PG CPU ms/req"
        " | load avg | non-2xx | claims/s | double claims |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in results:
        bad = {s: n for s, n in r.statuses.items() if not s.startswith("2")}
        lines.append(
            f"| {r.op} | {r.app} | {r.round} | {r.rate:.1f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} |"
            f" {r.app_cpu_ms:.2f} | {r.pg_cpu_ms:.2f} | {r.load_before:.1f} → {r.load_after:.1f}"
            f" | {bad or 0}{f' +{r.errors} errors' if r.errors else ''} |"
            f" {'' if r.claims_per_second is None else f'{r.claims_per_second:.1f}'} |"
            f" {'' if r.double_claims is None else r.double_claims} |"
        )
    lines += [
        "",
        "| operation | floor req/s | service req/s | ratio | floor p99 | service p99 |"
        " service CPU ms/req (app + PG) | floor CPU ms/req (app + PG) |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for op in dict.fromkeys(r.op for r in results):
        of = {
            name: [r for r in results if r.op == op and r.app == name]
            for name in ("floor", "service")
        }

        def m(name: str, attr: str, of: dict[str, list[Round]] = of) -> float:
            return median([getattr(r, attr) for r in of[name]])

        ratio = m("service", "rate") / m("floor", "rate") if m("floor", "rate") else float("nan")
        lines.append(
            f"| {op} | {m('floor', 'rate'):.1f} | {m('service', 'rate'):.1f} | {ratio:.2f}x |"
            f" {m('floor', 'p99_ms'):.1f} | {m('service', 'p99_ms'):.1f} |"
            f" {m('service', 'app_cpu_ms'):.2f} + {m('service', 'pg_cpu_ms'):.2f} |"
            f" {m('floor', 'app_cpu_ms'):.2f} + {m('floor', 'pg_cpu_ms'):.2f} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    if args.loader == "auto":
        args.loader = "wrk" if shutil.which("wrk") else "python"
    workdir = Path(tempfile.mkdtemp(prefix="lfd-floor-"))
    print(f"loader: {args.loader}; work files in {workdir}", flush=True)
    setup = await prepare(args, workdir)
    apps = start_apps(args, setup, workdir)
    results: list[Round] = []
    try:
        for app in apps:
            await wait_ready(app)
        for op in args.ops:
            for app in apps:  # warm-up: statement caches, connection pools, the JIT of nothing
                if op == "claim":
                    await reset_claims(setup.owner_dsn)
                await measure(args, setup, app, op, 3, workdir)
            for number in range(1, args.rounds + 1):
                order = apps if number % 2 else list(reversed(apps))
                for app in order:
                    if op == "claim":
                        await reset_claims(setup.owner_dsn)
                    result = await measure(args, setup, app, op, args.seconds, workdir)
                    result.round = number
                    results.append(result)
                    print(
                        f"{op} {app.name} round {number}: {result.rate:.1f}/s p99"
                        f" {result.p99_ms:.1f} ms, CPU {result.app_cpu_ms:.2f} +"
                        f" {result.pg_cpu_ms:.2f} ms/req, load {result.load_before:.1f},"
                        f" statuses {result.statuses}"
                        + (
                            f", claims/s {result.claims_per_second:.1f},"
                            f" double claims {result.double_claims}"
                            if op == "claim"
                            else ""
                        ),
                        flush=True,
                    )
    finally:
        for app in apps:
            app.process.send_signal(signal.SIGINT)
        for app in apps:
            try:
                app.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                app.process.kill()
        if not args.keep and not args.reuse:
            admin = await asyncpg.connect(_dsn("postgres", os.environ.get("PGUSER", "postgres")))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
            finally:
                await admin.close()
    print()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, loader {args.loader},"
        f" {args.connections} connections, {args.seconds:g} s rounds, one uvicorn worker each"
    )
    print(report(results))
    if args.json:
        text = json.dumps([asdict(r) for r in results], indent=1)
        await asyncio.to_thread(Path(args.json).write_text, text)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--ops", type=lambda s: s.split(","), default=list(OPS))
    parser.add_argument("--deaths", type=int, default=100_000)
    parser.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--database", default="lfd_bench_floor")
    parser.add_argument("--reuse", action="store_true", help="use the database if it exists")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--service-port", type=int, default=8077)
    parser.add_argument("--floor-port", type=int, default=8078)
    parser.add_argument("--json", help="write every round's figures here")
    args = parser.parse_args()
    unknown = set(args.ops) - set(OPS)
    if unknown:
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
