"""A chunk of bundle lines made ready to write: each parsed, checked and planned into its rows,
without the database. Pure, so that a large import does it in worker processes while the
importing process writes the previous chunk (the checks and the plan are most of an import's
Python time). What crosses back is plain rows, never a validated model."""

from __future__ import annotations

import multiprocessing
import uuid
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import datetime

import orjson

from app.config import Settings
from app.history.plan import Planned, plan_record
from app.history.validation import Checked, parse_line
from app.referrals.service import rule_config

Lines = list[tuple[int, bytes]]


# The JSON columns of a new record's rows, serialised in the worker for PostgreSQL's COPY.
JSON_COLUMNS = (
    ("screening", "routes_requested"),
    ("overrides", "reason_codes"),
    ("referrals", "reasons"),
    ("reviews", "detail"),
)


def _serialise(planned: Planned) -> None:
    dumps = orjson.dumps
    planned.screening["routes_requested"] = dumps(planned.screening["routes_requested"]).decode()
    for part, column in JSON_COLUMNS[1:]:
        for row in getattr(planned, part):
            row[column] = dumps(row[column]).decode()


def prepare(
    lines: Lines,
    moment: datetime,
    settings: Settings,
    client: uuid.UUID,
    json_text: bool = False,
) -> list[Checked]:
    """Each line checked; a valid one planned as a new death's rows (a correction is planned
    again by the writer, with the ids the earlier import gave its rows). ``json_text``: the
    JSON columns as text, as PostgreSQL's COPY takes them."""
    config = rule_config(settings)
    prepared = []
    for number, raw in lines:
        checked = parse_line(raw, number, moment)
        if checked.record is not None:
            record = checked.record
            checked.key = (record.death.source_system, record.death.source_reference)
            checked.planned = plan_record(
                record, settings, config, client, death_fields=checked.death
            )
            checked.death = {}
            if json_text:
                _serialise(checked.planned)
            checked.raw = raw
            checked.record = None  # kept out of what crosses between processes
        prepared.append(checked)
    return prepared


def worker_pool(workers: int) -> Executor:
    """Processes started afresh (spawn): the importing process holds an event loop, database
    connections and threads that a forked child must not inherit."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
