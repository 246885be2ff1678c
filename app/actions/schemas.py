"""Action plans and actions (DESIGN.md section 6), as sent and as returned.

Field rules live here; the rules between fields (completion, assurance, dates in order) live in
``app.actions.service.rule_errors`` so that create and update share them.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from app.actions.rag import STATUS_LABELS, ActionStatus, DuePrecision, Rag
from app.kit.etag import etag
from app.kit.ods import ODS_DESCRIPTION, is_ods_code
from app.kit.schemas import RequestModel, ResponseModel


def _ods_code(value: str) -> str:
    code = value.strip().upper()
    if not is_ods_code(code):
        raise ValueError(f"not an ODS code: {ODS_DESCRIPTION}")
    return code


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _unique(values: list[str]) -> list[str]:
    """The same name twice is one name (first spelling kept, order kept)."""
    seen: set[str] = set()
    kept = []
    for value in values:
        if value.casefold() not in seen:
            seen.add(value.casefold())
            kept.append(value)
    return kept


def _unique_ids(values: list[uuid.UUID]) -> list[uuid.UUID]:
    return list(dict.fromkeys(values))


OdsCode = Annotated[str, StringConstraints(min_length=1, max_length=6), AfterValidator(_ods_code)]
OdsCodes = Annotated[list[OdsCode], Field(max_length=50), AfterValidator(_unique)]
# An organisation as a plan or an action names it: an ODS code, or a name or alias that the
# registry resolves to its code, or a name kept as written (app.actions.organisation_refs).
OrganisationWritten = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(_one_line)
]
OrganisationsWritten = Annotated[
    list[OrganisationWritten],
    Field(
        max_length=50,
        description="Each an ODS code (RR8, 15F; lower case is accepted), or a name or alias "
        'the registry knows ("UHL"), stored as its code, or a name it does not (yet) know '
        '("Healthwatch Leicester"), kept as written. Every one is also kept as written '
        "(`organisation_names`); `organisation_refs` shows each resolved.",
    ),
    AfterValidator(_unique),
]
Title = Annotated[str, StringConstraints(min_length=1, max_length=300)]
SectionTitle = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Names = Annotated[list[Name], Field(max_length=50), AfterValidator(_unique)]
Narrative = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
ActionReference = Annotated[str, StringConstraints(min_length=1, max_length=50)]
DueNote = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Status = Annotated[
    int,
    Field(
        ge=1,
        le=5,
        strict=True,
        description="1 Not yet commenced, 2 Off track, 3 At risk, 4 On track, 5 Complete.",
    ),
]
FindingIds = Annotated[list[uuid.UUID], Field(max_length=500), AfterValidator(_unique_ids)]


# --- plans -----------------------------------------------------------------------------------


class PlanCreate(RequestModel):
    title: Title
    sponsor: Name | None = None
    organisations: OrganisationsWritten = Field(default_factory=list)
    description: Narrative | None = None
    sections: Annotated[list[SectionTitle], Field(max_length=200)] = Field(
        default_factory=list,
        description="Section (improvement area) titles, in order.",
    )


class PlanPatch(RequestModel):
    """Only the fields sent change; `null` clears an optional one."""

    title: Title | None = None
    sponsor: Name | None = None
    organisations: OrganisationsWritten | None = None
    description: Narrative | None = None


class SectionCreate(RequestModel):
    title: SectionTitle


class SectionOut(ResponseModel):
    id: uuid.UUID
    position: int = Field(description="1 for the first section of the plan.")
    title: str


class OrganisationEntry(ResponseModel):
    """One organisation a plan or an action names, resolved (app.actions.organisation_refs)."""

    code: str | None = Field(
        description="Its ODS code: sent as a code, or a name or alias the registry (or the "
        "configured alias table) knew when it was written; null for a name kept as written."
    )
    name: str | None = Field(description="The registry's name for the code; null if none.")
    written: str = Field(
        description="As written (sent or imported); a code sent as a code is its code."
    )
    organisation_id: uuid.UUID | None = Field(
        description="The organisation's id in the registry; null when the registry has no "
        "organisation with the code."
    )


_CODES = "The ODS codes of the organisations named (what `?organisation=` filters by)."
_NAMES = "Every organisation as written (names kept); the codes when written as codes."
_REFS = "Each organisation named: its code (or null), the registry's name, and as written."


class _PlanBase(ResponseModel):
    id: uuid.UUID
    title: str
    sponsor: str | None
    organisations: list[str] = Field(description=_CODES)
    organisation_names: list[str] = Field(description=_NAMES)
    organisation_refs: list[OrganisationEntry] = Field(description=_REFS)
    description: str | None
    source_filename: str | None = Field(description="The file an imported plan came from.")
    layout: str | None = Field(description="The imported file's layout.")
    version: int
    created_at: datetime
    updated_at: datetime


class PlanOut(_PlanBase):
    sections: list[SectionOut]


class StatusCount(ResponseModel):
    status: int
    status_label: str
    count: int


class PlanCounts(ResponseModel):
    total: int
    overdue: int = Field(description="Open actions past their due date (UK local today).")
    by_status: list[StatusCount] = Field(description="Every status, in scale order.")
    by_rag: dict[Rag, int] = Field(description="Every RAG colour, overdue actions as red.")


class SectionWithCount(SectionOut):
    actions: int = Field(description="How many actions the section holds.")


class PlanDetail(_PlanBase):
    sections: list[SectionWithCount]
    counts: PlanCounts
    as_of: date = Field(description="The UK local date the RAG and overdue counts are for.")


# --- actions ---------------------------------------------------------------------------------


class ActionFields(RequestModel):
    """What an action says, shared by create and update."""

    improvement_requirement: Narrative | None = None
    source: Narrative | None = Field(
        default=None, description="Where it came from: a review, a finding, a workshop, an audit."
    )
    leads: Names = Field(default_factory=list, description="Names or initials; `?` is kept.")
    organisations: OrganisationsWritten = Field(default_factory=list)
    workstream: Narrative | None = Field(
        default=None, description="The board or group the action reports to."
    )
    start_date: date | None = None
    due_date: date | None = Field(
        default=None,
        description="With `due_precision: month`, the month (stored and returned as its 1st).",
    )
    due_precision: DuePrecision = Field(
        default=DuePrecision.day,
        description="`day`: due on `due_date`; `month`: due by the end of `due_date`'s month.",
    )
    due_note: DueNote | None = Field(
        default=None,
        description='A due date in words ("TBC", "Ongoing"); alone, never makes it overdue.',
    )
    status: Status = 1
    comments: Narrative | None = None
    completed_at: date | None = Field(
        default=None, description="Only with status 5; defaults to today when status is 5."
    )
    evidence: Narrative | None = None
    assured_at: date | None = Field(
        default=None, description="When the completion was assured; needs `evidence`."
    )
    assured_by: Name | None = None


class ActionCreate(ActionFields):
    plan_id: uuid.UUID
    section_id: uuid.UUID = Field(description="A section of the plan.")
    reference: ActionReference = Field(description="Unique within its section, e.g. `1.2`.")
    action: Narrative
    finding_ids: FindingIds = Field(
        default_factory=list, description="Findings that motivated the action."
    )


class ActionPatch(RequestModel):
    """Only the fields sent change; `null` clears an optional one. A status change is kept in
    the action's history, with the author from `X-On-Behalf-Of`."""

    section_id: uuid.UUID | None = Field(default=None, description="Another section of the plan.")
    reference: ActionReference | None = None
    improvement_requirement: Narrative | None = None
    action: Narrative | None = None
    source: Narrative | None = None
    leads: Names | None = None
    organisations: OrganisationsWritten | None = None
    workstream: Narrative | None = None
    start_date: date | None = None
    due_date: date | None = None
    due_precision: DuePrecision | None = None
    due_note: DueNote | None = None
    status: Status | None = None
    comments: Narrative | None = None
    completed_at: date | None = None
    evidence: Narrative | None = None
    assured_at: date | None = None
    assured_by: Name | None = None
    finding_ids: FindingIds | None = None


class ProgressUpdateCreate(RequestModel):
    update_date: date | None = Field(
        default=None, description="The date the update is for (UK local); today if omitted."
    )
    author: Name | None = Field(
        default=None, description="Who reports it; the `X-On-Behalf-Of` person if omitted."
    )
    narrative: Narrative
    status: Status | None = Field(default=None, description="The status now, if it changed.")


class FindingLinks(RequestModel):
    finding_ids: FindingIds


class SectionRef(ResponseModel):
    id: uuid.UUID
    title: str


class ActionOut(ResponseModel):
    id: uuid.UUID
    plan_id: uuid.UUID
    section: SectionRef
    position: int = Field(description="Order within the plan.")
    reference: str
    improvement_requirement: str | None
    action: str
    source: str | None
    leads: list[str]
    organisations: list[str] = Field(description=_CODES)
    organisation_refs: list[OrganisationEntry] = Field(description=_REFS)
    workstream: str | None
    start_date: date | None
    due_date: date | None
    due_precision: DuePrecision
    due_note: str | None
    falls_due_on: date | None = Field(
        description="The last day the action is on time: the due date, or its month's end."
    )
    status: int
    status_recorded: bool = Field(description="False: imported with a blank status.")
    status_label: str
    rag: Rag = Field(description="Derived: red when overdue, else by status.")
    overdue: bool = Field(description="Past `falls_due_on` (UK local today) and not complete.")
    reported_rag: Rag | None = Field(description="A RAG written in an imported file.")
    reported_rag_on: date | None = Field(description="When that RAG was judged.")
    reported_rag_precision: DuePrecision | None = Field(
        description="`day` or `month`: how precisely the file dated that RAG."
    )
    rag_summary: str = Field(description='"reported Amber (Sep 2019); now Red: overdue".')
    recommendation: str | None = Field(description="A system review's recommendation, `A`.")
    organisation_names: list[str] = Field(description=_NAMES)
    lead_history: list[str] = Field(description="Earlier leads, oldest first.")
    links: list[dict[str, str]] = Field(description="Other actions named in the text.")
    due_text: str | None = Field(description="The words the due date was read from.")
    comments: str | None
    completed_at: date | None
    completed_precision: str | None = Field(
        description="`on_or_before`: imported complete, so completed on or before "
        "`completed_at`; null: completed on that day."
    )
    evidence: str | None
    assured_at: date | None
    assured_by: str | None
    finding_ids: list[uuid.UUID]
    version: int
    created_at: datetime
    updated_at: datetime


class HistoryEntry(ResponseModel):
    id: uuid.UUID
    update_date: date
    author: str | None
    narrative: str | None
    status_before: int | None = Field(description="Set when the entry changed the status.")
    status: int = Field(description="The status then.")
    status_label: str
    recorded_at: datetime


class ActionLinks(ResponseModel):
    action_id: uuid.UUID
    finding_ids: list[uuid.UUID]
    version: int


class ProgressRecorded(ResponseModel):
    update: HistoryEntry = Field(description="The new entry in the action's history.")
    action: ActionOut = Field(description="The action as it now stands (its ETag is returned).")


def status_label(status: int) -> str:
    return STATUS_LABELS[ActionStatus(status)]


def plan_etag(plan: PlanOut | PlanDetail) -> str:
    """The plan's tag: its version, and how many sections it has (adding a section needs no
    If-Match, so it does not bump the version, but a reader sees the plan change). A plan's
    detail also counts its actions, which change without the plan: a digest of the counts
    joins the tag, so that If-None-Match re-downloads when an action moves or falls due. The
    organisations as shown join it too (the registry renames one without a new version)."""
    state = f"s{len(plan.sections)}"
    shown = plan.model_dump_json(
        include={"sections", "counts", "organisation_refs"}
        if isinstance(plan, PlanDetail)
        else {"organisation_refs"}
    )
    state += "-" + hashlib.sha256(shown.encode()).hexdigest()[:12]
    return etag(plan.id, plan.version, state)


def action_etag(action: ActionOut) -> str:
    """The action's tag: its version, whether it is overdue (the RAG turns red when the due
    date passes, without a new version) and the organisations as shown, when it names any
    (the registry renames one without a new version)."""
    state = ["overdue"] if action.overdue else []
    if action.organisation_refs:
        shown = action.model_dump_json(include={"organisation_refs"}).encode()
        state.append(hashlib.sha256(shown).hexdigest()[:12])
    return etag(action.id, action.version, "-".join(state) or None)
