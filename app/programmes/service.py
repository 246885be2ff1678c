"""Defining review programmes: create, read, list, change; their questions, recommendations
and the action plan's approval; building the cohort (app.programmes.cohort does the work)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.auth.principal import Principal
from app.config import Settings
from app.errors import BadRequest, Conflict, ValidationFailed, field_error
from app.events.service import Change
from app.findings.themes import code_from_name
from app.kit.cursor import open_cursor, sign_cursor
from app.kit.etag import Precondition
from app.kit.sql import load_one
from app.kit.time import now
from app.models import (
    Action,
    Programme,
    ProgrammeQuestion,
    ProgrammeRecommendation,
    ProgrammeRecommendationAction,
)
from app.organisations.lookup import organisation_refs
from app.organisations.service import recording_organisation
from app.programmes.bodies import (
    CohortBuilt,
    answered,
    check_plan,
    check_sampling,
    no_actions_named,
    question_rows,
    sampling_columns,
    stored_rules,
    vocabulary_ids,
)
from app.programmes.case_reviews import counts_of
from app.programmes.cohort import run_pass
from app.programmes.schemas import (
    CohortBuild,
    CohortRules,
    ProgrammeCreate,
    ProgrammeOut,
    ProgrammePatch,
    ProgrammeStatus,
    QuestionOut,
    RecommendationOut,
    Recommendations,
    Sampling,
)

FIXED_ONCE_BUILT = ("period_start", "period_end", "cohort")


async def load_programme(
    session: AsyncSession, programme_id: uuid.UUID, *, for_update: bool = False
) -> Programme:
    return await load_one(session, Programme, programme_id, "programme", for_update=for_update)


# --- create, read, list ------------------------------------------------------------------------


async def create_programme(
    session: AsyncSession, principal: Principal, body: ProgrammeCreate
) -> ProgrammeOut:
    organisation_id = await recording_organisation(session, principal)
    code = body.code or code_from_name(body.name)
    if not code:
        raise ValidationFailed(
            "No code can be made from that name; send a code.",
            errors=[
                field_error(
                    "/code", "required when the name has no letters a-z or digits", "no_code"
                )
            ],
        )
    taken = await session.scalar(
        select(Programme.id).where(
            Programme.organisation_id == organisation_id, Programme.code == code
        )
    )
    if taken is not None:
        raise Conflict(
            "The organisation has a programme with this code already.",
            errors=[field_error("/code" if body.code else "/name", "code taken", "taken")],
            extra={"programme": f"/v1/programmes/{taken}"},
        )
    await check_plan(session, body.plan_id)
    programme = Programme(
        id=uuid.uuid4(),
        organisation_id=organisation_id,
        code=code,
        name=body.name,
        purpose=body.purpose,
        owner=body.owner,
        period_start=body.period_start,
        period_end=body.period_end,
        status=ProgrammeStatus.draft.value,
        rules=await stored_rules(session, body.cohort),
        **sampling_columns(body.sampling),
        instrument=body.instrument,
        link_routine_reviews=body.link_routine_reviews,
        reviews_due_on=body.reviews_due_on,
        theme_ids=await vocabulary_ids(session, body.themes),
        plan_id=body.plan_id,
        plan_approved_by=body.plan_approved_by,
        plan_approved_on=body.plan_approved_on,
        created_by_client_id=principal.client_id,
        version=1,
    )
    session.add(programme)
    await session.flush()
    session.add_all(question_rows(programme.id, body.questions))
    await session.flush()
    journal = Journal(principal)
    journal.event(_change("programme.created", programme))
    await journal.write(session)
    return await programme_out(session, programme)


def _change(kind: str, programme: Programme, changed: list[str] | None = None) -> Change:
    return Change(
        kind,
        "programme",
        programme.id,
        None,
        changed or [],
        organisation_id=programme.organisation_id,
    )


async def read_programme(session: AsyncSession, programme_id: uuid.UUID) -> ProgrammeOut:
    return await programme_out(session, await load_programme(session, programme_id))


async def list_programmes(
    session: AsyncSession, status: ProgrammeStatus | None, cursor: str | None, limit: int
) -> tuple[list[ProgrammeOut], str | None]:
    """Latest period first (keyset on the period's start and the id)."""
    query = select(Programme)
    if status is not None:
        query = query.where(Programme.status == status.value)
    if cursor is not None:
        start_raw, id_raw = await open_cursor(session, cursor, 2)
        try:
            key = (datetime.fromisoformat(start_raw).date(), uuid.UUID(id_raw))
        except (TypeError, ValueError) as error:
            raise BadRequest("The cursor is not one this service issued.") from error
        query = query.where(tuple_(Programme.period_start, Programme.id) < key)
    order = (Programme.period_start.desc(), Programme.id.desc())
    rows = list((await session.scalars(query.order_by(*order).limit(limit + 1))).all())
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = await sign_cursor(
            session,
            [datetime.combine(last.period_start, datetime.min.time()).isoformat(), str(last.id)],
        )
    return [await programme_out(session, programme) for programme in page], next_cursor


async def programme_out(session: AsyncSession, programme: Programme) -> ProgrammeOut:
    questions = (
        await session.scalars(
            select(ProgrammeQuestion)
            .where(ProgrammeQuestion.programme_id == programme.id)
            .order_by(ProgrammeQuestion.position)
        )
    ).all()
    refs = await organisation_refs(session, [programme.organisation_id])
    rules = dict(programme.rules)
    return ProgrammeOut(
        id=programme.id,
        organisation=refs[programme.organisation_id],
        code=programme.code,
        name=programme.name,
        purpose=programme.purpose,
        owner=programme.owner,
        period_start=programme.period_start,
        period_end=programme.period_end,
        status=ProgrammeStatus(programme.status),
        cohort=CohortRules.model_validate(rules),
        sampling=Sampling.model_validate(
            {
                "mode": programme.sampling,
                "size": programme.sample_size,
                "percent": programme.sample_percent,
                "seed": programme.seed,
            }
        ),
        instrument=programme.instrument,
        questions=[QuestionOut.model_validate(question) for question in questions],
        link_routine_reviews=programme.link_routine_reviews,
        reviews_due_on=programme.reviews_due_on,
        themes=[uuid.UUID(value) for value in programme.theme_ids]
        if programme.theme_ids is not None
        else None,
        plan_id=programme.plan_id,
        plan_approved_by=programme.plan_approved_by,
        plan_approved_on=programme.plan_approved_on,
        recommendations=await recommendations_of(session, programme.id),
        counts=await counts_of(session, programme.id),
        cohort_built_at=programme.cohort_built_at,
        closed_at=programme.closed_at,
        version=programme.version,
        created_at=programme.created_at,
        updated_at=programme.updated_at,
    )


# --- change ------------------------------------------------------------------------------------


async def patch_programme(
    session: AsyncSession,
    principal: Principal,
    programme_id: uuid.UUID,
    patch: ProgrammePatch,
    if_match: Precondition,
) -> ProgrammeOut:
    programme = await load_programme(session, programme_id, for_update=True)
    if_match.check(programme.id, programme.version)
    given = patch.model_dump(exclude_unset=True)
    for name in ("name", "owner", "period_start", "period_end", "cohort", "sampling", "questions",
                 "link_routine_reviews", "status"):  # fmt: skip
        if name in given and given[name] is None:
            raise ValidationFailed(
                "This field cannot be cleared.",
                errors=[field_error(f"/{name}", "cannot be null", "null_not_allowed")],
            )
    built = programme.status != ProgrammeStatus.draft
    fixed = [name for name in FIXED_ONCE_BUILT if name in given]
    if built and fixed:
        raise CohortBuilt(
            "The cohort is built: its period and rules are fixed (define a new programme to "
            "audit another cohort).",
            errors=[
                field_error(f"/{name}", "fixed once the cohort is built", "cohort_built")
                for name in fixed
            ],
        )
    changed: list[str] = []

    def put(name: str, value: Any) -> None:
        if getattr(programme, name) != value:
            setattr(programme, name, value)
            changed.append(name)

    for name in ("name", "purpose", "owner", "period_start", "period_end", "link_routine_reviews",
                 "reviews_due_on", "plan_approved_by", "plan_approved_on"):  # fmt: skip
        if name in given:
            put(name, given[name])
    if programme.period_end < programme.period_start:
        raise ValidationFailed(
            "The period ends before it starts.",
            errors=[field_error("/period_end", "before period_start", "range_reversed")],
        )
    if "cohort" in given and patch.cohort is not None:
        put("rules", await stored_rules(session, patch.cohort))
    if "sampling" in given and patch.sampling is not None:
        if built:
            check_sampling(programme, patch.sampling)
        columns = sampling_columns(patch.sampling)
        if patch.sampling.seed is None:
            columns["seed"] = programme.seed
        for name, value in columns.items():
            put(name, value)
    if "themes" in given:
        put("theme_ids", await vocabulary_ids(session, patch.themes))
    if "plan_id" in given and patch.plan_id != programme.plan_id:
        await check_plan(session, patch.plan_id)
        await no_actions_named(session, programme.id)
        put("plan_id", patch.plan_id)
    if "questions" in given and patch.questions is not None:
        if await answered(session, programme.id):
            raise Conflict(
                "The programme's questions have answers: they can no longer be replaced.",
                errors=[field_error("/questions", "answered already", "answered")],
            )
        await session.execute(
            delete(ProgrammeQuestion).where(ProgrammeQuestion.programme_id == programme.id)
        )
        session.add_all(question_rows(programme.id, patch.questions))
        changed.append("questions")
    if "status" in given and patch.status is not None:
        if programme.status == ProgrammeStatus.draft:
            raise Conflict(
                "A draft programme opens when its cohort is built (POST .../cohort).",
                errors=[field_error("/status", "build the cohort first", "draft")],
                extra={"current_status": programme.status},
            )
        if programme.status != patch.status:
            programme.status = patch.status
            programme.closed_at = now() if patch.status == "closed" else None
            changed.append("status")
    if changed:
        programme.version += 1
        programme.updated_at = now()
        await session.flush()
        journal = Journal(principal)
        journal.event(_change("programme.updated", programme, changed))
        await journal.write(session)
    return await programme_out(session, programme)


# --- recommendations ---------------------------------------------------------------------------


async def recommendations_of(
    session: AsyncSession, programme_id: uuid.UUID
) -> list[RecommendationOut]:
    rows = (
        await session.scalars(
            select(ProgrammeRecommendation)
            .where(ProgrammeRecommendation.programme_id == programme_id)
            .order_by(ProgrammeRecommendation.position)
        )
    ).all()
    links: dict[uuid.UUID, list[uuid.UUID]] = {row.id: [] for row in rows}
    if rows:
        for recommendation_id, action_id in (
            await session.execute(
                select(
                    ProgrammeRecommendationAction.recommendation_id,
                    ProgrammeRecommendationAction.action_id,
                )
                .where(ProgrammeRecommendationAction.recommendation_id.in_(list(links)))
                .order_by(ProgrammeRecommendationAction.action_id)
            )
        ).all():
            links[recommendation_id].append(action_id)
    return [
        RecommendationOut(
            id=row.id,
            key_area=row.key_area,
            key_area_title=row.key_area_title,
            reference=row.reference,
            text=row.text,
            action_ids=links[row.id],
        )
        for row in rows
    ]


async def put_recommendations(
    session: AsyncSession,
    principal: Principal,
    programme_id: uuid.UUID,
    body: Recommendations,
    if_match: Precondition,
) -> ProgrammeOut:
    """Replace the programme's recommendations: each in a key area (a key area has one title),
    each answered by actions of the programme's action plan."""
    programme = await load_programme(session, programme_id, for_update=True)
    if_match.check(programme.id, programme.version)
    errors = []
    titles: dict[str, str] = {}
    wanted = {action_id for item in body.recommendations for action_id in item.action_ids}
    in_plan: set[uuid.UUID] = set()
    if wanted and programme.plan_id is not None:
        in_plan = set(
            (
                await session.scalars(
                    select(Action.id).where(
                        Action.plan_id == programme.plan_id, Action.id.in_(wanted)
                    )
                )
            ).all()
        )
    for index, item in enumerate(body.recommendations):
        title = titles.setdefault(item.key_area, item.key_area_title)
        if title != item.key_area_title:
            errors.append(
                field_error(
                    f"/recommendations/{index}/key_area_title",
                    "the key area has another title",
                    "conflicting_title",
                )
            )
        for position, action_id in enumerate(item.action_ids):
            if action_id not in in_plan:
                errors.append(
                    field_error(
                        f"/recommendations/{index}/action_ids/{position}",
                        "not an action of the programme's action plan (set plan_id first)",
                        "not_in_plan",
                    )
                )
    references: set[str] = set()
    numbered: dict[str, int] = {}
    rows = []
    for index, item in enumerate(body.recommendations):
        numbered[item.key_area] = numbered.get(item.key_area, 0) + 1
        reference = item.reference or f"{item.key_area}{numbered[item.key_area]}"
        if reference in references:
            errors.append(
                field_error(f"/recommendations/{index}/reference", "used twice", "duplicate")
            )
        references.add(reference)
        rows.append((item, reference))
    if errors:
        raise ValidationFailed(
            "The recommendations are not possible as given; see errors.", errors=errors
        )
    old = select(ProgrammeRecommendation.id).where(
        ProgrammeRecommendation.programme_id == programme.id
    )
    await session.execute(
        delete(ProgrammeRecommendationAction).where(
            ProgrammeRecommendationAction.recommendation_id.in_(old.scalar_subquery())
        )
    )
    await session.execute(
        delete(ProgrammeRecommendation).where(ProgrammeRecommendation.programme_id == programme.id)
    )
    for position, (item, reference) in enumerate(rows, start=1):
        recommendation = ProgrammeRecommendation(
            id=uuid.uuid4(),
            programme_id=programme.id,
            position=position,
            key_area=item.key_area,
            key_area_title=item.key_area_title,
            reference=reference,
            text=item.text,
        )
        session.add(recommendation)
        await session.flush()
        session.add_all(
            ProgrammeRecommendationAction(recommendation_id=recommendation.id, action_id=action_id)
            for action_id in dict.fromkeys(item.action_ids)
        )
    programme.version += 1
    programme.updated_at = now()
    await session.flush()
    journal = Journal(principal)
    journal.event(_change("programme.updated", programme, ["recommendations"]))
    await journal.write(session)
    return await programme_out(session, programme)


# --- the cohort --------------------------------------------------------------------------------


async def build_cohort(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    programme_id: uuid.UUID,
    dry_run: bool,
) -> CohortBuild:
    """Build (or bring up to date) the cohort, or say what that would do (``dry_run``)."""
    programme = await load_programme(session, programme_id, for_update=True)
    if programme.status == ProgrammeStatus.closed and not dry_run:
        raise Conflict(
            "The programme is closed: nothing joins its cohort. Reopen it first (PATCH status).",
            extra={"current_status": programme.status},
        )
    journal = Journal(principal)
    built = await run_pass(
        session,
        journal,
        settings,
        programme,
        joined="build" if programme.status == ProgrammeStatus.draft else "late",
        dry_run=dry_run,
    )
    await session.flush()
    await journal.write(session)
    return built
