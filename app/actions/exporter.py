"""Exporting a plan in the provider layout (DESIGN.md section 6), as CSV or XLSX.

The file has the plan's title, sponsor, organisations and description above the header row,
then each section as a header row followed by its actions. Every action row is written out in
full (no merged cells), and an empty value is written as "-", so that the importer does not
take it for a merged blank meaning "same as above": import, export and import again gives the
same plan.

Actions are read with one streaming query (in the section's order, then the plan's), in
batches: CSV is sent as it is made; XLSX is written to a temporary file by openpyxl's
write-only mode and sent from there. Neither holds the whole plan in memory.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from typing import IO

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions import rag
from app.actions.cells import status_text
from app.actions.rag import DuePrecision
from app.actions.spreadsheets import CsvPlanWriter, ExportRow, XlsxPlanWriter, YearMonth
from app.db import Database, Work
from app.errors import NotFound
from app.kit.time import local_date, now
from app.models import Action, ActionPlan, ActionPlanSection

BATCH = 500
CHUNK = 64 * 1024
NONE = "-"

Entry = str | ExportRow  # a section's title, or an action


@dataclass(frozen=True)
class ExportPlan:
    id: uuid.UUID
    title: str
    sponsor: str | None
    organisations: list[str]
    description: str | None
    sections: list[tuple[uuid.UUID, str]]  # in order

    @property
    def filename_stem(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.title).strip("-")[:80] or "action-plan"

    def preamble(self) -> list[str]:
        lines = [self.title]
        if self.sponsor:
            lines.append(f"Sponsor: {self.sponsor}")
        lines.append(f"Organisations: {', '.join(self.organisations) or NONE}")
        if self.description:
            lines.append(f"Description: {self.description}")
        return lines


async def load_plan(session: AsyncSession, plan_id: uuid.UUID) -> ExportPlan:
    plan = await session.scalar(select(ActionPlan).where(ActionPlan.id == plan_id))
    if plan is None:
        raise NotFound("No action plan with that id.")
    sections = (
        await session.execute(
            select(ActionPlanSection.id, ActionPlanSection.title)
            .where(ActionPlanSection.plan_id == plan_id)
            .order_by(ActionPlanSection.position)
        )
    ).all()
    return ExportPlan(
        plan.id,
        plan.title,
        plan.sponsor,
        list(plan.organisations),
        plan.description,
        [(section_id, title) for section_id, title in sections],
    )


_COLUMNS = (
    Action.section_id,
    Action.organisations,
    Action.reference,
    Action.improvement_requirement,
    Action.action,
    Action.source,
    Action.leads,
    Action.due_date,
    Action.due_precision,
    Action.due_note,
    Action.status,
    Action.comments,
)


async def entries(
    session: AsyncSession, plan: ExportPlan, today: date
) -> AsyncIterator[list[Entry]]:
    """The rows after the header, in batches: each section's title, then its actions."""
    query = (
        select(*_COLUMNS)
        .join(ActionPlanSection, ActionPlanSection.id == Action.section_id)
        .where(Action.plan_id == plan.id)
        .order_by(ActionPlanSection.position, Action.position)
        .execution_options(yield_per=BATCH)
    )
    sections: Iterator[tuple[uuid.UUID, str]] = iter(plan.sections)
    current: uuid.UUID | None = None
    result = await session.stream(query)
    async for partition in result.partitions(BATCH):
        batch: list[Entry] = []
        for row in partition:
            while current != row.section_id:
                # Sections before this one that have no actions still get their header row.
                current, title = next(sections)
                batch.append(title)
            batch.append(_export_row(row, today))
        yield batch
    yield [title for _, title in sections]


def _export_row(row: Sequence[object], today: date) -> ExportRow:
    (_, organisations, reference, requirement, action, source, leads) = row[:7]
    due_date, precision, due_note, status, comments = row[7:]
    assert isinstance(status, int)
    assert due_date is None or isinstance(due_date, date)
    precision_text = str(precision or DuePrecision.day.value)
    if due_date is None:
        due: date | YearMonth | str = str(due_note) if due_note else NONE
    elif precision_text == DuePrecision.month:
        due = YearMonth(due_date.year, due_date.month)
    else:
        due = due_date
    return ExportRow(
        organisation=", ".join(_strings(organisations)) or NONE,
        reference=str(reference),
        improvement_requirement=str(requirement) if requirement else NONE,
        action=str(action),
        source=str(source) if source else NONE,
        leads=", ".join(_strings(leads)) or NONE,
        due=due,
        status=status_text(status),
        comments=str(comments) if comments else "",
        rag=rag.rag(status, due_date, precision_text, today),
    )


def _strings(values: object) -> list[str]:
    return [str(value) for value in values] if isinstance(values, list) else []


def _write(writer: CsvPlanWriter | XlsxPlanWriter, batch: list[Entry]) -> None:
    for entry in batch:
        if isinstance(entry, str):
            writer.section(entry)
        else:
            writer.action(entry)


async def csv_stream(database: Database, plan_id: uuid.UUID) -> AsyncIterator[bytes]:
    """The plan as CSV, sent batch by batch as the query streams. The plan's existence is
    checked by the caller first (a 404 must be sent before the stream starts)."""
    today = local_date(now())
    async with database.transaction(Work.report) as session:
        plan = await load_plan(session, plan_id)
        writer = CsvPlanWriter()
        writer.preamble(plan.preamble())
        writer.header()
        yield writer.drain()
        async for batch in entries(session, plan, today):
            _write(writer, batch)
            yield writer.drain()


async def build_xlsx(database: Database, plan_id: uuid.UUID) -> tuple[ExportPlan, IO[bytes]]:
    """The plan as an XLSX workbook in a temporary file (positioned at its start; the caller
    closes it). openpyxl runs in a worker thread, so the event loop stays free."""
    today = local_date(now())
    target = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller or on failure)
    try:
        async with database.transaction(Work.report) as session:
            plan = await load_plan(session, plan_id)
            writer = XlsxPlanWriter()
            writer.preamble(plan.preamble())
            writer.header()
            async for batch in entries(session, plan, today):
                await anyio.to_thread.run_sync(_write, writer, batch)
        await anyio.to_thread.run_sync(writer.save, target)
        target.seek(0)
    except BaseException:
        target.close()
        raise
    return plan, target


async def file_chunks(source: IO[bytes]) -> AsyncIterator[bytes]:
    """A temporary file's bytes, read off the event loop, then the file closed."""
    try:
        while chunk := await anyio.to_thread.run_sync(source.read, CHUNK):
            yield chunk
    finally:
        with suppress(OSError):
            source.close()
