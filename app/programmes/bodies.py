"""What a programme's body names, checked and turned into what is stored: the cohort rules'
organisations (each within the caller's reach), the theme vocabulary, the action plan, the
questions and their codes, the sampling (and how it may change once the cohort is built)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, ValidationFailed, field_error
from app.findings.themes import code_from_name, find_theme
from app.models import (
    ActionPlan,
    Programme,
    ProgrammeAnswer,
    ProgrammeQuestion,
    ProgrammeRecommendation,
    ProgrammeRecommendationAction,
)
from app.organisations.lookup import resolve_organisations
from app.programmes.schemas import CohortRules, QuestionIn, Sampling
from app.scoping import current_scope


class CohortBuilt(Conflict):
    slug, title = "cohort-built", "The programme's cohort is built"


async def stored_rules(session: AsyncSession, rules: CohortRules) -> dict[str, Any]:
    """The rules as stored: the organisations resolved to registry ids, each within the
    caller's reach (a programme cannot audit deaths its organisation could not see)."""
    stored = rules.model_dump(mode="json")
    if rules.organisations is None:
        return stored
    found = await resolve_organisations(session, rules.organisations)
    scope = current_scope()
    errors = [
        field_error(
            f"/cohort/organisations/{index}",
            "not an organisation of the registry within this client's reach",
            "unknown_organisation",
        )
        for index, reference in enumerate(rules.organisations)
        if reference not in found or not scope.sees_organisation(found[reference].id)
    ]
    if errors:
        raise ValidationFailed("The cohort names an organisation it cannot audit.", errors=errors)
    stored["organisations"] = sorted(
        {str(found[reference].id) for reference in rules.organisations}
    )
    return stored


async def vocabulary_ids(session: AsyncSession, references: list[str] | None) -> list[str] | None:
    if references is None:
        return None
    ids: list[str] = []
    errors = []
    for index, reference in enumerate(references):
        theme = await find_theme(session, reference)
        if theme is None:
            errors.append(field_error(f"/themes/{index}", "no such theme", "unknown_theme"))
        elif str(theme.id) not in ids:
            ids.append(str(theme.id))
    if errors:
        raise ValidationFailed(
            "The theme vocabulary names a theme that does not exist.", errors=errors
        )
    return ids


async def check_plan(session: AsyncSession, plan_id: uuid.UUID | None) -> None:
    if plan_id is not None and await session.get(ActionPlan, plan_id) is None:
        raise ValidationFailed(
            "No action plan with that id (within this client's reach).",
            errors=[field_error("/plan_id", "no such action plan", "unknown_plan")],
        )


def question_rows(programme_id: uuid.UUID, questions: list[QuestionIn]) -> list[ProgrammeQuestion]:
    rows: list[ProgrammeQuestion] = []
    codes: set[str] = set()
    errors = []
    for position, question in enumerate(questions, start=1):
        code = question.code or code_from_name(question.text)[:56].rstrip("_")
        if not code:
            errors.append(
                field_error(
                    f"/questions/{position - 1}/code",
                    "required when the text has no letters a-z or digits",
                    "no_code",
                )
            )
            continue
        if question.code is None:
            base, number = code, 2
            while code in codes:
                code, number = f"{base}_{number}", number + 1
        if code in codes:
            errors.append(field_error(f"/questions/{position - 1}/code", "used twice", "duplicate"))
        codes.add(code)
        rows.append(
            ProgrammeQuestion(
                id=uuid.uuid4(),
                programme_id=programme_id,
                position=position,
                code=code,
                text=question.text,
                kind=question.kind.value,
                required=question.required,
            )
        )
    if errors:
        raise ValidationFailed(
            "The questions' codes are not possible as given; see errors.", errors=errors
        )
    return rows


def sampling_columns(sampling: Sampling) -> dict[str, Any]:
    return {
        "sampling": sampling.mode.value,
        "sample_size": sampling.size,
        "sample_percent": sampling.percent,
        "seed": sampling.seed if sampling.seed is not None else secrets.randbelow(2_147_483_646),
    }


def check_sampling(programme: Programme, sampling: Sampling) -> None:
    """Once built, the sample may only grow: the same mode and seed, a size or a share no
    smaller (a chosen death stays chosen; its review may have begun)."""
    same = sampling.mode.value == programme.sampling and (
        sampling.seed is None or sampling.seed == programme.seed
    )
    grows = (sampling.size or 0) >= (programme.sample_size or 0) and (sampling.percent or 0) >= (
        programme.sample_percent or 0
    )
    if not (same and grows):
        raise CohortBuilt(
            "The cohort is built: the sample may grow (a larger size or share), but its mode "
            "and seed are fixed and it cannot shrink.",
            errors=[field_error("/sampling", "fixed once the cohort is built", "cohort_built")],
        )


async def answered(session: AsyncSession, programme_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(exists().where(ProgrammeAnswer.programme_id == programme_id))
    )
    return bool(found)


async def no_actions_named(session: AsyncSession, programme_id: uuid.UUID) -> None:
    """The plan may change only while no recommendation names one of its actions (the report
    would count another plan's actions)."""
    named = await session.scalar(
        select(
            exists()
            .where(ProgrammeRecommendationAction.recommendation_id == ProgrammeRecommendation.id)
            .where(ProgrammeRecommendation.programme_id == programme_id)
        )
    )
    if named:
        raise Conflict(
            "The recommendations name actions of the programme's action plan: replace them "
            "(PUT .../recommendations) before changing the plan.",
            errors=[field_error("/plan_id", "recommendations name its actions", "actions_named")],
        )
