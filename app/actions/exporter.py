"""Exporting a plan (DESIGN.md section 6) in the provider layout or the system-review layout
(app.actions.export_layouts), as CSV or XLSX.

The file has the plan's title, sponsor, organisations and description above the header row,
then each section as a header row followed by its actions. Every action row is written out in
full (no merged cells), and an empty value is written as "-", so that the importer does not
take it for a merged blank meaning "same as above": import, export and import again gives the
same plan, in either layout, whichever layout the plan came from (what the layout has no
column for goes in the other layout's columns, after its own: ``load_plan`` finds which).

Actions are read with one streaming query (in the section's order, then the plan's), with
each action's latest dated progress update, in batches: CSV is sent as it is made; XLSX is
written to a temporary file by openpyxl's write-only mode and sent from there. Neither holds
the whole plan in memory.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from typing import IO, Any

import anyio
from sqlalchemy import Text, and_, case, cast, func, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.actions.export_layouts import (
    EXTRAS,
    NONE,
    RAG_COLUMNS,
    ExportAction,
    provider_cells,
    system_cells,
    titles,
    widths,
)
from app.actions.organisations import names_written
from app.actions.rag import DuePrecision
from app.actions.sheet_writer import CsvPlanWriter, XlsxPlanWriter
from app.actions.spreadsheets import Field, Layout
from app.db import Database, Work
from app.errors import NotFound
from app.kit.ods import written_code
from app.kit.time import local_date, now
from app.models import Action, ActionPlan, ActionPlanSection, ActionUpdate

BATCH = 500
CHUNK = 64 * 1024

Entry = str | ExportAction  # a section's title, or an action


@dataclass(frozen=True)
class ExportPlan:
    id: uuid.UUID
    title: str
    sponsor: str | None
    organisations: list[str]
    organisation_names: list[str]
    description: str | None
    sections: list[tuple[uuid.UUID, str]]  # in order
    progress_on: date | None  # the latest dated progress update
    plan_year: int | None  # the year due dates in words fall in
    holds: frozenset[Field]  # the fields some action has a value in, of those EXTRAS name

    def extras(self, layout: Layout) -> tuple[Field, ...]:
        """The other layout's columns this plan needs, after the layout's own."""
        return tuple(extra for extra in EXTRAS[layout] if extra in self.holds)

    @property
    def filename_stem(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.title).strip("-")[:80] or "action-plan"

    def preamble(self) -> list[str]:
        lines = [self.title]
        if self.sponsor:
            lines.append(f"Sponsor: {self.sponsor}")
        names = names_written(self.organisation_names, self.organisations) or [
            written_code(code) for code in self.organisations
        ]
        lines.append(f"Organisations: {', '.join(names) or NONE}")
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
    progress_on = await session.scalar(
        select(func.max(ActionUpdate.update_date))
        .join(Action, Action.id == ActionUpdate.action_id)
        .where(Action.plan_id == plan_id, ActionUpdate.narrative.is_not(None))
    )
    counts = (
        await session.execute(
            select(
                func.min(case((Action.due_text.is_not(None), Action.due_date))),
                func.count(Action.workstream),
                func.count(Action.source),
                func.count(
                    case(
                        (
                            or_(
                                Action.organisation_names.is_not(None),
                                cast(Action.organisations, Text) != "[]",
                            ),
                            1,
                        )
                    )
                ),
                func.count(
                    case(
                        (
                            and_(
                                Action.due_text.is_(None),
                                or_(Action.due_date.is_not(None), Action.due_note.is_not(None)),
                            ),
                            1,
                        )
                    )
                ),
            ).where(Action.plan_id == plan_id)
        )
    ).one()
    plan_year, *held = counts
    holds = {
        name
        for name, count in zip(
            (Field.workstream, Field.source, Field.organisation, Field.due), held, strict=True
        )
        if count
    }
    if progress_on is not None:
        holds.add(Field.progress)
    return ExportPlan(
        plan.id,
        plan.title,
        plan.sponsor,
        list(plan.organisations),
        list(plan.organisation_names or []),
        plan.description,
        [(section_id, title) for section_id, title in sections],
        progress_on,
        plan_year.year if plan_year is not None else None,
        frozenset(holds),
    )


_COLUMNS = (
    Action.section_id,
    Action.reference,
    Action.recommendation,
    Action.improvement_requirement,
    Action.action,
    Action.source,
    Action.leads,
    Action.lead_history,
    Action.organisations,
    Action.organisation_names,
    Action.workstream,
    Action.due_date,
    Action.due_precision,
    Action.due_note,
    Action.status,
    Action.status_recorded,
    Action.reported_rag,
    Action.reported_rag_on,
    Action.reported_rag_precision,
    Action.comments,
    Action.completed_at,
    Action.completed_precision,
    Action.due_text,
)


def _latest_progress(plan_id: uuid.UUID) -> Any:
    """Each of the plan's actions' latest dated progress update (narrative, date)."""
    ranked = select(
        ActionUpdate.action_id,
        ActionUpdate.narrative,
        ActionUpdate.update_date,
        func.row_number()
        .over(
            partition_by=ActionUpdate.action_id,
            order_by=(ActionUpdate.update_date.desc(), ActionUpdate.recorded_at.desc()),
        )
        .label("rank"),
    ).where(
        ActionUpdate.narrative.is_not(None),
        ActionUpdate.action_id.in_(select(Action.id).where(Action.plan_id == plan_id)),
    )
    return ranked.subquery()


async def entries(session: AsyncSession, plan: ExportPlan) -> AsyncIterator[list[Entry]]:
    """The rows after the header, in batches: each section's title, then its actions."""
    if plan.progress_on is None:  # no dated progress in the plan: no join for it
        query = select(*_COLUMNS, null(), null())
    else:
        latest = _latest_progress(plan.id)
        query = select(*_COLUMNS, latest.c.narrative, latest.c.update_date).outerjoin(
            latest, (latest.c.action_id == Action.id) & (latest.c.rank == 1)
        )
    query = (
        query.join(ActionPlanSection, ActionPlanSection.id == Action.section_id)
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
            batch.append(_export_action(row))
        yield batch
    yield [title for _, title in sections]


def _strings(values: Any) -> list[str]:
    return values if isinstance(values, list) else []  # a JSON list of names, as stored


def _export_action(row: Sequence[Any]) -> ExportAction:
    (_, reference, recommendation, requirement, action, source, leads, history) = row[:8]
    (organisations, names, workstream, due_date, precision, due_note, status) = row[8:15]
    (recorded, reported, reported_on, reported_precision, comments) = row[15:20]
    (completed_at, completed_precision, due_text, progress, progress_on) = row[20:25]
    return ExportAction(
        reference=reference,
        recommendation=recommendation,
        improvement_requirement=requirement,
        action=action,
        source=source,
        leads=_strings(leads),
        lead_history=_strings(history),
        organisations=_strings(organisations),
        organisation_names=_strings(names),
        workstream=workstream,
        due_date=due_date,
        due_precision=precision or DuePrecision.day.value,
        due_note=due_note,
        status=status,
        status_recorded=recorded,
        reported_rag=reported,
        reported_rag_on=reported_on,
        reported_rag_precision=reported_precision,
        comments=comments,
        progress=progress,
        progress_on=progress_on,
        completed_at=completed_at,
        completed_precision=completed_precision,
        due_text=due_text,
    )


Writer = CsvPlanWriter | XlsxPlanWriter


def _write(
    writer: Writer, layout: Layout, batch: list[Entry], today: date, extras: tuple[Field, ...]
) -> None:
    cells_of = provider_cells if layout is Layout.provider else system_cells
    for entry in batch:
        if isinstance(entry, str):
            writer.section(entry)
        else:
            cells, derived = cells_of(entry, today, extras)
            writer.row(cells, derived)


async def csv_stream(
    database: Database, plan_id: uuid.UUID, layout: Layout = Layout.provider
) -> AsyncIterator[bytes]:
    """The plan as CSV, sent batch by batch as the query streams. The plan's existence is
    checked by the caller first (a 404 must be sent before the stream starts); it is read
    again here, in the transaction its actions are read in."""
    today = local_date(now())
    async with database.transaction(Work.report) as session:
        plan = await load_plan(session, plan_id)
        extras = plan.extras(layout)
        writer = CsvPlanWriter(titles(layout, plan.progress_on, plan.plan_year, extras))
        writer.preamble(plan.preamble())
        writer.header()
        yield writer.drain()
        async for batch in entries(session, plan):
            _write(writer, layout, batch, today, extras)
            yield writer.drain()


async def build_xlsx(
    database: Database, plan_id: uuid.UUID, layout: Layout = Layout.provider
) -> tuple[ExportPlan, IO[bytes]]:
    """The plan as an XLSX workbook in a temporary file (positioned at its start; the caller
    closes it). openpyxl runs in a worker thread, so the event loop stays free."""
    today = local_date(now())
    target = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller or on failure)
    try:
        async with database.transaction(Work.report) as session:
            plan = await load_plan(session, plan_id)
            extras = plan.extras(layout)
            writer = XlsxPlanWriter(
                titles(layout, plan.progress_on, plan.plan_year, extras),
                widths(layout, extras),
                RAG_COLUMNS[layout],
            )
            writer.preamble(plan.preamble())
            writer.header()
            async for batch in entries(session, plan):
                await anyio.to_thread.run_sync(_write, writer, layout, batch, today, extras)
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
