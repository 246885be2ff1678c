"""CPU time of a plan's CSV export (the review of issue 13): the query and the writing, in
one process, without HTTP.

    python bench/export_cpu.py --database-url postgresql+asyncpg://postgres@127.0.0.1/lfd_x
        [--layout provider|system_review] [--export-layout provider|system_review]
        [--actions 5000] [--runs 9] [--profile]

Imports a plan made by bench/import_export.py's generator (``--layout``: the plan's own
layout) straight through the importer, then exports it as CSV ``--runs`` times
(``app.actions.exporter.csv_stream``, read to the end) in ``--export-layout`` (default: the
plan's own), each timed with ``time.process_time``: the CPU this process spent, which a busy
machine disturbs far less than the wall clock (the database's own work is not counted).
Before the runs the plan's import is let go and the heap frozen (``gc.freeze``), so that a
collection of the importer's leftovers is not timed. Prints every run, the median and the
minimum; ``--profile`` then runs cProfile over one more export and prints the top 30
functions by their own time.
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
import cProfile
import gc
import importlib.util
import pstats
import statistics
import time
import uuid
from typing import Any

from app.actions import exporter
from app.actions.importer import read_options, write_plan
from app.actions.plan_reader import interpret
from app.actions.spreadsheets import Layout
from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.auth.service import create_client
from app.config import Settings
from app.db import Database
from app.kit.time import local_date, now
from app.migrate import upgrade


def _generator() -> Any:
    """bench/import_export.py, loaded from its file (this directory is kept off the path:
    bench/queue.py would shadow the standard library's queue)."""
    spec = importlib.util.spec_from_file_location(
        "import_export", os.path.join(_HERE, "import_export.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def export_once(database: Database, plan_id: uuid.UUID, layout: Layout) -> int:
    size = 0
    async for chunk in exporter.csv_stream(database, plan_id, layout):
        size += len(chunk)
    return size


async def main_async(args: argparse.Namespace) -> None:
    settings = Settings(database_url=args.database_url, log_level="WARNING")
    database = Database(settings)
    layout = Layout(args.layout)
    import_export = _generator()
    make = import_export.plan_rows if layout is Layout.provider else import_export.system_rows
    plan = interpret(
        import_export.as_csv(make(args.actions, 15, uuid.uuid4().hex)),
        layout=None,
        title=None,
        filename=None,
        today=local_date(now()),
        options=read_options(settings),
    )
    async with database.transaction() as session:
        created = await create_client(session, "bench export cpu", [Scope.actions_write])
        # Its organisation too (the default one, as create_client gives it): a principal of
        # none may record no plan.
        principal = Principal.of_client(created.client)
    async with database.transaction() as session:
        await write_plan(session, principal, plan)
    assert plan.id is not None
    plan_id = plan.id
    del plan
    gc.collect()
    gc.freeze()
    target = Layout(args.export_layout or args.layout)
    times = []
    size = 0
    for _ in range(args.runs):
        started = time.process_time()
        size = await export_once(database, plan_id, target)
        times.append(time.process_time() - started)
    print(
        f"{args.actions} actions, {layout.value} plan as {target.value}: {size:,} bytes; "
        f"CPU s {[round(t, 3) for t in times]}; median {statistics.median(times):.3f}, "
        f"min {min(times):.3f}"
    )
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        await export_once(database, plan_id, target)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)
    await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--layout", choices=[v.value for v in Layout], default="provider")
    parser.add_argument("--export-layout", choices=[v.value for v in Layout])
    parser.add_argument("--actions", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    upgrade(args.database_url)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
