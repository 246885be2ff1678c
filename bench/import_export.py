"""Import and export of a large action plan (issue 4): time and peak memory.

    python bench/import_export.py --database-url postgresql+asyncpg://postgres@127.0.0.1/lfd_x
        [--sizes 1000,5000,20000] [--repeat 3] [--json results.json]

Migrates the database, starts the service in this process (uvicorn on a free local port, so
the export really streams over HTTP), creates an API client with ``actions:write`` and
``actions:read``, and for each size generates a plan of that many actions as a trust would
have it (100 sections, or fewer for small sizes; blocks of five actions sharing merged
organisation, requirement and source cells; "Jul-15" months, dd/mm/yyyy dates, TBC and
Ongoing; statuses as "4. On track", "G", "Complete" or blank; "?" leads; comments of one to
three lines), as CSV and as XLSX. Then, for each:

- ``POST /v1/action-plans/import`` (a real import: every action written, with its event);
- ``GET /v1/action-plans/{id}/export?format=csv`` and ``?format=xlsx``, read as a stream.

``--layout system_review`` generates a system-review plan instead (recommendations A, B, ...
with their actions numbered in the text, dates in words, a dated progress column, a RAG,
a continuation row every 20 actions) and exports it in that layout.

Each is timed ``--repeat`` times (median and worst reported; each import is a new file, since
the same file imports once); then each is run once more under ``tracemalloc`` for the peak of
Python memory it allocated (the server and this client share the process; the client reads
the export in chunks and keeps only the byte count, and the upload's bytes are counted in the
file size column). Timings are without tracemalloc, which slows Python down.
"""

from __future__ import annotations

# ruff: noqa: E402  (the path fix below must run before the other imports)
import os
import sys

# bench/queue.py would shadow the standard library's queue module (asyncio imports it) when a
# script here runs as ``python bench/<script>.py``: take this directory off the path, and put
# the checkout's root on it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import asyncio
import csv
import io
import json
import random
import re
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from openpyxl import Workbook

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.migrate import upgrade
from bench.kit import free_port

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = [
    "Organisation",
    "Action reference number",
    "Improvement Requirement",
    "Actions",
    "Source of Action",
    "Action lead within the organisation",
    "Delivery date",
    "Delivery Status",
    "Comments",
]
THEMES = [
    "Recognition of end of life",
    "Advance care planning",
    "DNACPR decisions",
    "The deteriorating patient",
    "Sepsis",
    "Handover and transfer",
    "Discharge",
    "Quality of records",
    "Communication with families",
    "Medication",
]
WORDS = [
    "review",
    "audit",
    "train",
    "staff",
    "wards",
    "agree",
    "standard",
    "escalation",
    "policy",
    "share",
    "learning",
    "board",
    "monthly",
    "report",
    "embed",
    "template",
    "pathway",
    "community",
    "hospital",
    "patients",
    "records",
]


def plan_rows(actions: int, seed: int, token: str) -> list[list[Any]]:
    """A provider-layout plan as a trust's sheet holds it (dates as datetime for XLSX)."""
    rng = random.Random(seed)
    sections = max(1, min(100, actions // 50))
    rows: list[list[Any]] = [
        [f"Benchmark improvement plan {token}"],
        ["Sponsor: Director of Nursing"],
        ["Organisations: RR8, RGD, 15F"],
        [],
        HEADER,
    ]
    per_section = [
        actions // sections + (1 if i < actions % sections else 0) for i in range(sections)
    ]
    for number, count in enumerate(per_section, start=1):
        rows.append([f"{number}. {THEMES[number % len(THEMES)]} ({number})"])
        for index in range(count):
            first_of_block = index % 5 == 0
            due_kind = rng.random()
            if due_kind < 0.4:
                due: Any = (date(2015, 1, 1) + timedelta(days=30 * rng.randrange(60))).strftime(
                    "%b-%y"
                )
            elif due_kind < 0.8:
                due = datetime(2016, 1, 1) + timedelta(days=rng.randrange(1500))
            else:
                due = rng.choice(["TBC", "Ongoing"])
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(6, 16)))
            comments = "\n".join(
                " ".join(rng.choice(WORDS) for _ in range(rng.randrange(8, 20)))
                for _ in range(rng.randrange(0, 4))
            )
            rows.append(
                [
                    rng.choice(["RR8", "RGD", "15F"]) if first_of_block else "",
                    f"{number}.{index + 1}",
                    f"Requirement {number}.{index // 5 + 1}: {text[:40]}" if first_of_block else "",
                    text.capitalize(),
                    rng.choice(["SJR themes", "Incident review", "Workshop"])
                    if first_of_block
                    else "",
                    rng.choice(["AB", "CD/EF", "Dr Jane Smith", "?", ""]),
                    due,
                    rng.choice(["4. On track", "3. At risk", "G", "A", "Complete", "", "On Track"]),
                    comments,
                ]
            )
    return rows


SYSTEM_HEADER = [
    "#",
    "CQC system wide recommendation",
    "Leeds comments and actions to be completed in 2019",
    "Alignment with a current work stream, group or Board, including Lead",
    "Progress made Sept 2019",
    "RAG",
]


def letters(index: int) -> str:
    """A, B, ... Z, AA, AB, ...: a recommendation's letters."""
    first, second = divmod(index, 26)
    return (chr(64 + first) if first else "") + chr(65 + second)


def system_rows(actions: int, seed: int, token: str) -> list[list[Any]]:
    """A system-review plan as a partnership keeps it (issue 13): recommendations A, B, ...
    with their actions numbered in the text ("12. By June ..."), dates in words, alignments
    with leads in brackets, a dated progress column and a RAG; a continuation row (a lead
    only) every 20 actions."""
    rng = random.Random(seed)
    recommendations = max(1, min(100, actions // 50))
    rows: list[list[Any]] = [
        [f"Benchmark system review plan {token}"],
        ["Progress Update September 2019"],
        [],
        SYSTEM_HEADER,
    ]
    per = [actions // recommendations + (1 if i < actions % recommendations else 0)
           for i in range(recommendations)]  # fmt: skip
    number = 0
    for index, count in enumerate(per):
        for position in range(count):
            number += 1
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(6, 16)))
            when = rng.choice(["By the end of March", "By June", "From January 2019", ""])
            rows.append(
                [
                    f"{letters(index)}." if position == 0 else "",
                    f"Recommendation {letters(index)}: {text[:60]}" if position == 0 else "",
                    f"{number}. {when} {text}".replace("  ", " "),
                    rng.choice(["People's Voices Group (Hannah Davies)", "SRAB / ORG (Tim Ryley)"]),
                    " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 20))),
                    rng.choice(["A", "G", "R", ""]),
                ]
            )
            if number % 20 == 0:
                rows.append(["", "", "", "Lead: Phil Corrigan", "", ""])
    return rows


def as_csv(rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(
            [value.strftime("%d/%m/%Y") if isinstance(value, datetime) else value for value in row]
        )
    return buffer.getvalue().encode("utf-8")


def as_xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Action plan")
    for row in rows:
        sheet.append([None if value == "" else value for value in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def measure(work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await work()
    return time.perf_counter() - started, result


async def peak_memory(work: Callable[[], Awaitable[Any]]) -> float:
    """MiB of Python memory allocated at the peak of ``work``, over what was live before."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    await work()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - before) / 2**20


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(database_url=args.database_url, log_level="WARNING", log_json=True)
    database = Database(settings)
    async with database.transaction() as session:
        created = await create_client(
            session, "bench import/export", [Scope.actions_write, Scope.actions_read]
        )
    await database.dispose()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
        await asyncio.sleep(0.05)
    headers = {"Authorization": f"Bearer {created.key}"}
    results: dict[str, Any] = {"sizes": []}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=300
    ) as http:

        async def do_import(data: bytes, media: str) -> str:
            """The report is read as a stream and dropped, but for its head (the counts and
            the plan's id come first): this process's memory is then the server's."""
            head = b""
            async with http.stream(
                "POST", "/v1/action-plans/import", content=data, headers={"Content-Type": media}
            ) as response:
                async for chunk in response.aiter_bytes():
                    if len(head) < 4096:
                        head += chunk[:4096]
                if response.status_code != 201:
                    raise SystemExit(f"import failed: {response.status_code} {head[:500]!r}")
            found = re.search(rb'"plan_id":"([0-9a-f-]+)".*?"action_count":(\d+)', head)
            assert found is not None and int(found.group(2)) == size, head[:300]
            return found.group(1).decode()

        async def do_export(plan_id: str, fmt: str) -> int:
            received = 0
            params = {"format": fmt}
            if args.layout != "provider":
                params["layout"] = args.layout
            async with http.stream(
                "GET", f"/v1/action-plans/{plan_id}/export", params=params
            ) as response:
                if response.status_code != 200:
                    raise SystemExit(f"export failed: {response.status_code}")
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
            return received

        make_rows = plan_rows if args.layout == "provider" else system_rows
        for size in args.sizes:
            entry: dict[str, Any] = {"actions": size, "layout": args.layout}
            files = {}
            for kind in ("csv", "xlsx"):
                token = uuid.uuid4().hex
                rows = make_rows(size, args.seed, token)
                files[kind] = (as_csv if kind == "csv" else as_xlsx)(rows)
                entry[f"{kind}_file_bytes"] = len(files[kind])
            plan_id = ""
            for kind, media in (("csv", CSV), ("xlsx", XLSX)):
                times = []
                for _ in range(args.repeat):
                    # A new title each time: the same file imports once.
                    rows = make_rows(size, args.seed, uuid.uuid4().hex)
                    fresh = as_csv(rows) if kind == "csv" else as_xlsx(rows)
                    elapsed, plan_id = await measure(lambda data=fresh, m=media: do_import(data, m))
                    times.append(elapsed)
                entry[f"import_{kind}_s"] = {"median": statistics.median(times), "max": max(times)}
                entry[f"import_{kind}_peak_mib"] = await peak_memory(
                    lambda m=media, d=files[kind]: do_import(d, m)
                )
            for fmt in ("csv", "xlsx"):
                times = []
                received = 0
                for _ in range(args.repeat):
                    elapsed, received = await measure(lambda f=fmt, p=plan_id: do_export(p, f))
                    times.append(elapsed)
                entry[f"export_{fmt}_s"] = {"median": statistics.median(times), "max": max(times)}
                entry[f"export_{fmt}_bytes"] = received
                entry[f"export_{fmt}_peak_mib"] = await peak_memory(
                    lambda f=fmt, p=plan_id: do_export(p, f)
                )
            results["sizes"].append(entry)
            print(json.dumps(entry), flush=True)
    server.should_exit = True
    await serving
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| actions | file (CSV / XLSX) | import CSV | import XLSX | export CSV | export XLSX |",
        "|---:|---|---|---|---|---|",
    ]
    for entry in results["sizes"]:
        cells = [
            f"{entry['actions']:,}",
            f"{entry['csv_file_bytes'] / 2**20:.1f} / {entry['xlsx_file_bytes'] / 2**20:.1f} MiB",
        ]
        for name in ("import_csv", "import_xlsx", "export_csv", "export_xlsx"):
            cells.append(
                f"{entry[name + '_s']['median']:.2f} s, {entry[name + '_peak_mib']:.1f} MiB"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument(
        "--sizes", default="1000,5000,20000", type=lambda v: [int(s) for s in v.split(",")]
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--layout",
        choices=["provider", "system_review"],
        default="provider",
        help="the plan generated, imported and exported (system_review: issue 13)",
    )
    args = parser.parse_args()
    upgrade(args.database_url)
    results = asyncio.run(main_async(args))
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
