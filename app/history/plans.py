"""Action plans in the history bundle (docs/history.md, "Action plans"): a line holding
``action_plan`` instead of ``death`` is a plan with its sections, its actions (every field,
their progress updates with their own dates, the findings they answer) and the organisations
it names, so that a trust leaving takes its plans with its deaths, and a bundle re-imports
whole. An action is held to the rules of live actions (app.actions.action_rules), with the
import's start as "today"; what needs the database (the findings an action answers) is the
writer's (app.history.plan_writer)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError

from app.actions.action_rules import normalise, rule_errors
from app.actions.rag import DuePrecision, Rag
from app.actions.schemas import (
    ActionFields,
    ActionReference,
    Name,
    Narrative,
    OdsCodes,
    SectionTitle,
    Status,
    Title,
)
from app.deaths.schemas import Reference
from app.errors import field_error, validation_errors
from app.history.bundle import FORMAT, LocalReference
from app.kit.schemas import RequestModel, Timestamp
from app.kit.time import LONDON

# The key an export gives a plan made through the API or from a spreadsheet (its id), and
# its sections and actions theirs: a bundle line naming it in the database it came from is
# that plan, which history does not overwrite.
LIVE_SYSTEM = "lfd"

Short = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class HistoricUpdate(RequestModel):
    """A progress note or a status change, as the action's history holds it."""

    update_date: date
    author: Name | None = None
    narrative: Narrative | None = None
    status_before: Status | None = Field(
        default=None, description="The status before, when the entry changed it."
    )
    status: Status
    recorded_at: Timestamp


class FindingRef(RequestModel):
    """A finding the action answers: its death's key and its reference in that record."""

    source_system: Reference
    source_reference: Reference
    finding: LocalReference


class ActionLinkIn(RequestModel):
    """Another action of the plan that this one's text names."""

    action: LocalReference = Field(description="The other action's key in this plan.")
    reference: Annotated[str, StringConstraints(max_length=50)] | None = None
    kind: Annotated[str, StringConstraints(max_length=50)] | None = None


class SourceFile(RequestModel):
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    layout: Annotated[str, StringConstraints(min_length=1, max_length=20)]


class HistoricSection(RequestModel):
    key: LocalReference
    title: SectionTitle


class HistoricAction(ActionFields):
    key: LocalReference = Field(description="The source's id for it, unique within the plan.")
    section: LocalReference = Field(description="The key of its section.")
    reference: ActionReference
    action: Narrative
    recommendation: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = None
    organisation_names: list[Short] | None = None
    lead_history: list[Name] | None = None
    links: list[ActionLinkIn] = Field(default_factory=list, max_length=50)
    due_text: Short | None = None
    status_recorded: bool = True
    reported_rag: Rag | None = None
    reported_rag_on: date | None = None
    reported_rag_precision: DuePrecision | None = None
    completed_precision: Literal["on_or_before"] | None = None
    findings: list[FindingRef] = Field(default_factory=list, max_length=500)
    updates: list[HistoricUpdate] = Field(default_factory=list, max_length=1000)
    created_at: Timestamp
    updated_at: Timestamp | None = None


class HistoricPlan(RequestModel):
    source_system: Reference
    source_reference: Reference
    title: Title
    sponsor: Name | None = None
    organisations: OdsCodes = Field(default_factory=list)
    organisation_names: list[Short] | None = None
    description: Narrative | None = None
    source_file: SourceFile | None = None
    created_at: Timestamp
    updated_at: Timestamp | None = None
    sections: list[HistoricSection] = Field(default_factory=list, max_length=200)
    actions: list[HistoricAction] = Field(default_factory=list, max_length=5000)


class PlanRecordIn(RequestModel):
    """A bundle line holding an action plan."""

    format: Literal["lfd-history/1"] = "lfd-history/1"
    action_plan: HistoricPlan


def is_plan_line(document: Any) -> bool:
    return isinstance(document, dict) and "action_plan" in document and "death" not in document


def plan_reference(document: Any) -> str | None:
    plan = document.get("action_plan") if isinstance(document, dict) else None
    reference = plan.get("source_reference") if isinstance(plan, dict) else None
    return reference[:100] if isinstance(reference, str) else None


def action_values(action: HistoricAction) -> dict[str, Any]:
    """The action's own columns as a live action stores them (normalised: a month-precision
    due date is its month's 1st)."""
    values = action.model_dump(
        exclude={"key", "section", "links", "findings", "updates", "created_at", "updated_at"}
    )
    for name in ("reported_rag", "reported_rag_precision"):
        if values[name] is not None:
            values[name] = str(values[name])
    return normalise(values)


def parse_plan(
    document: dict[str, Any], moment: datetime, context: dict[str, Any] | None
) -> tuple[PlanRecordIn | None, list[dict[str, Any]], str]:
    """The plan line validated and checked: the record (None when refused), its problems
    (pointers into the line) and its fingerprint."""
    try:
        record = PlanRecordIn.model_validate(document, context=context)
    except ValidationError as error:
        return None, validation_errors(error.errors(), document), ""
    errors = check_plan(record.action_plan, moment)
    if errors:
        return None, errors, ""
    return record, [], hashlib.sha256(record.model_dump_json().encode()).hexdigest()


def check_plan(plan: HistoricPlan, moment: datetime) -> list[dict[str, Any]]:
    """The rules between a plan's parts, and each action's as live (app.actions.action_rules),
    with the import's start as now: nothing after it."""
    errors: list[dict[str, Any]] = []
    today = moment.astimezone(LONDON).date()

    def fail(pointer: str, detail: str, code: str = "value_error") -> None:
        errors.append(field_error(f"/action_plan{pointer}", detail, code))

    if plan.created_at > moment:
        fail("/created_at", "the plan is created after the import")
    sections = [section.key for section in plan.sections]
    if len(set(sections)) != len(sections):
        fail("/sections", "two sections share a key")
    keys = [action.key for action in plan.actions]
    if len(set(keys)) != len(keys):
        fail("/actions", "two actions share a key")
    placed: set[tuple[str, str]] = set()
    for index, action in enumerate(plan.actions):
        at = f"/actions/{index}"
        if action.section not in sections:
            fail(f"{at}/section", "no section of the plan has this key")
        if (action.section, action.reference) in placed:
            fail(f"{at}/reference", "another action of the section has this reference")
        placed.add((action.section, action.reference))
        for error in rule_errors(action_values(action), today):
            fail(f"{at}{error['pointer']}", error["detail"], error["code"])
        if action.created_at > moment:
            fail(f"{at}/created_at", "the action is created after the import")
        for number, link in enumerate(action.links):
            if link.action not in keys:
                fail(f"{at}/links/{number}/action", "no action of the plan has this key")
        for number, update in enumerate(action.updates):
            if update.update_date > today:
                fail(f"{at}/updates/{number}/update_date", "the update is after the import")
            if update.recorded_at > moment:
                fail(f"{at}/updates/{number}/recorded_at", "the update is after the import")
    return errors


def plan_line(document: dict[str, Any]) -> dict[str, Any]:
    """A plan as a bundle line (the export's)."""
    return {"format": FORMAT, "action_plan": document}
