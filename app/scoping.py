"""Whose data a unit of work may see (issue 16), enforced twice: in every ORM query, and on
PostgreSQL by row-level security.

A request's scope is set by the guard (app.auth.deps) from the calling client's organisation:
the deaths that organisation records (a pseudonymised client's also those of its member
organisations, transitively; an identifiable client's also those of its sites), and the deaths
shared with it for a purpose that is still open (app.organisations.shares). Before the guard a
request sees nothing (app.middleware); the service's own work (the background runner, the CLI)
runs with the whole deployment in scope.

1. **The query layer.** Every ORM SELECT, UPDATE and DELETE on a table that holds patient data
   (or a plan) gets the scope's criteria (``with_loader_criteria``), wherever the statement
   names the model: the select itself, its joins and its subqueries. SQLite relies on this
   alone. Statements on ``Model.__table__`` (Core) are not covered: the house rule is to name
   the mapped class (tests/test_house_rules.py).
2. **Row-level security** (PostgreSQL; migration 0019). The same rules as policies keyed on
   ``lfd.scope``, ``lfd.organisations`` and ``lfd.shared_deaths``, which the Database sets for
   each transaction (``set_config(..., true)``: they end with it). The service connects as a
   role that does not own the tables and cannot bypass the policies (``lfd database
   service-role``), and the tables FORCE row-level security, so a forgotten filter fails closed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, FromClause, and_, event, literal, or_, select
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.selectable import TableClause

from app.kit.id_lists import id_in_list
from app.models import (
    Action,
    ActionPlan,
    ActionPlanSection,
    ActionUpdate,
    AuditEvent,
    CaseShare,
    Death,
    DeathNotification,
    Finding,
    HistoryImport,
    HistoryRecord,
    OutboxEvent,
    PossibleDuplicate,
    Programme,
    ProgrammeAnswer,
    ProgrammeCase,
    ProgrammeOpinion,
    ProgrammeQuestion,
    ProgrammeRecommendation,
    ProgrammeRecommendationAction,
    Referral,
    ReferralJudgement,
    ReferralJudgementVersion,
    ReferralTransition,
    Review,
    ReviewPhaseRating,
    ReviewProblem,
    ReviewVersion,
    RouteOverride,
    Screening,
    ScreeningVersion,
    ThemeMapping,
    WorklistClaim,
)

# Execution option that lifts the criteria for one statement: only for the guard's own lookups
# of organisations and shares, made before any scope exists. Grep for it.
UNSCOPED = "lfd_unscoped"


@dataclass(frozen=True)
class DataScope:
    """``everything``: the whole deployment (the service's own work, or a client whose reach
    covers every organisation there is). Otherwise the organisations whose deaths and plans are
    in reach, and the deaths shared with the client's organisation.

    What a client may *change* is narrower than what it sees (app.organisations.ownership):
    ``own`` is its organisation and its sites, when that differs from what it reads (a
    pseudonymised client reads its members' records too; None: what it sees), and ``shares``
    the shares open to it, as (death, the referral the share names or None, purpose), which
    say what it may do to a death it sees only through a share."""

    everything: bool
    organisations: frozenset[uuid.UUID] = frozenset()
    shared_deaths: frozenset[uuid.UUID] = frozenset()
    own: frozenset[uuid.UUID] | None = None
    shares: frozenset[tuple[uuid.UUID, uuid.UUID | None, str]] = frozenset()

    def sees_organisation(self, organisation_id: uuid.UUID | None) -> bool:
        return self.everything or organisation_id in self.organisations

    def owns(self, organisation_id: uuid.UUID | None) -> bool:
        """Whether the client changes the records of ``organisation_id`` (a death's, a plan's
        organisation): its own organisation's and its sites', never a member's it reads as a
        commissioner, nor a death it sees only through a share."""
        if self.own is None:
            return self.sees_organisation(organisation_id)
        return organisation_id in self.own

    def sees_death(self, organisation_id: uuid.UUID | None, death_id: uuid.UUID) -> bool:
        return self.sees_organisation(organisation_id) or death_id in self.shared_deaths

    def sees_event(self, organisation_id: uuid.UUID | None, death_id: uuid.UUID | None) -> bool:
        """An outbox event, by the same rule as the criteria and the policy: a death's when
        the death is in scope; otherwise its organisation's, or the deployment's own."""
        if death_id is None:
            return organisation_id is None or self.sees_organisation(organisation_id)
        return self.sees_death(organisation_id, death_id)


SYSTEM = DataScope(everything=True)
NOTHING = DataScope(everything=False)

_current: ContextVar[DataScope] = ContextVar("lfd_data_scope", default=SYSTEM)


def current_scope() -> DataScope:
    return _current.get()


def use_scope(scope: DataScope) -> Token[DataScope]:
    """Set the scope for the rest of this task (the guard and the request middleware)."""
    return _current.set(scope)


def reset_scope(token: Token[DataScope]) -> None:
    _current.reset(token)


@contextmanager
def scoped(scope: DataScope) -> Iterator[None]:
    token = _current.set(scope)
    try:
        yield
    finally:
        _current.reset(token)


# --- the criteria -----------------------------------------------------------------------------

_DEATHS = Death.__table__
_REVIEWS = Review.__table__
_SCREENINGS = Screening.__table__
_JUDGEMENTS = ReferralJudgement.__table__
_PLANS = ActionPlan.__table__
_ACTIONS = Action.__table__
_PROGRAMMES = Programme.__table__
_RECOMMENDATIONS = ProgrammeRecommendation.__table__

# Tables that copy their death's organisation (migration 0022, app.models.base.owned_with):
# a row is visible when that organisation is in scope, or its death is shared.
_DEATH_OWNED: tuple[Any, ...] = (
    Screening,
    RouteOverride,
    ReferralJudgement,
    Referral,
    Review,
    Finding,
)
# The same for a review's phase ratings and problems, which name no death: the review is
# probed only when the scope has shared deaths at all.
_REVIEW_OWNED: tuple[Any, ...] = (ReviewPhaseRating, ReviewProblem)
# Tables that name their death and nothing more: each row is visible when its death is.
_DEATH_KEYED: tuple[Any, ...] = (
    ReferralTransition,
    DeathNotification,
    WorklistClaim,
    HistoryRecord,
    PossibleDuplicate,
    CaseShare,
    ProgrammeCase,
    ProgrammeOpinion,
    ProgrammeAnswer,
)


def _probe(parent: Any, key: Any, rule: ColumnElement[bool]) -> ColumnElement[bool]:
    """EXISTS (SELECT 1 FROM parent p WHERE p.id = key AND rule OFFSET 0): a row is in scope
    when its parent is, checked by one probe of the parent's primary key per row. The OFFSET
    keeps PostgreSQL from turning the EXISTS into a join or a hash of every parent in scope,
    which it would choose blind to a page's LIMIT (a queue page of 50 read every death of the
    organisation and sorted them). ``parent`` is an alias of its own, never correlated with
    the outer query (which may join the parent table itself)."""
    return (
        select(literal(1))
        .select_from(parent)
        .where(parent.c.id == key, rule)
        .offset(0)
        .correlate_except(parent)
        .exists()
    )


def _death_visible(column: Any, scope: DataScope) -> ColumnElement[bool]:
    deaths = _DEATHS.alias("scope_death")
    owned = _probe(deaths, column, deaths.c.organisation_id.in_(sorted(scope.organisations)))
    if not scope.shared_deaths:
        return owned
    return or_(column.in_(sorted(scope.shared_deaths)), owned)


def _names_visible_death(ids: Any, scope: DataScope) -> ColumnElement[bool]:
    """A list of death ids (an audit row's patients) names at least one death in scope: one
    probe of the deaths' key per id (``id = ANY (ids)``), never a hash of every death."""
    deaths = _DEATHS.alias("scope_listed_death")
    rule: ColumnElement[bool] = deaths.c.organisation_id.in_(sorted(scope.organisations))
    if scope.shared_deaths:
        rule = or_(rule, deaths.c.id.in_(sorted(scope.shared_deaths)))
    return (
        select(literal(1))
        .select_from(deaths)
        .where(id_in_list(deaths.c.id, ids), rule)
        .offset(0)
        .correlate_except(deaths)
        .exists()
    )


def event_rule(scope: DataScope) -> ColumnElement[bool]:
    """The outbox events in scope: a death's when the death is, otherwise its organisation's,
    or the deployment's own (no organisation). For the feed's Core statement too."""
    events = OutboxEvent.__table__
    return or_(
        and_(
            events.c.death_id.is_(None),
            or_(
                events.c.organisation_id.is_(None),
                events.c.organisation_id.in_(sorted(scope.organisations)),
            ),
        ),
        _death_visible(events.c.death_id, scope),
    )


def criteria(scope: DataScope) -> list[Any]:
    """The loader criteria that confine a statement to ``scope`` (none for everything)."""
    return list(_criteria(scope).values())


@lru_cache(maxsize=256)
def _criteria(scope: DataScope) -> Mapping[FromClause, Any]:
    """The criteria of one scope, by the table of the model each confines, built once and
    reused by every statement in that scope (building them took about a millisecond of CPU,
    for each ORM statement; docs/benchmarks.md, issue 16). The options are immutable, and a
    client's scope is the same from one request to the next until its organisations or shares
    change, which makes a new scope."""
    if scope.everything:
        return MappingProxyType({})
    organisations = sorted(scope.organisations)
    options: list[Any] = []
    death_rule: ColumnElement[bool] = _DEATHS.c.organisation_id.in_(organisations)
    if scope.shared_deaths:
        death_rule = or_(death_rule, _DEATHS.c.id.in_(sorted(scope.shared_deaths)))
    options.append(with_loader_criteria(Death, death_rule, include_aliases=True))
    shared = sorted(scope.shared_deaths)
    for model in _DEATH_OWNED:
        table = model.__table__
        rule = table.c.organisation_id.in_(organisations)
        if shared:
            rule = or_(rule, table.c.death_id.in_(shared))
        options.append(with_loader_criteria(model, rule, include_aliases=True))
    for model in _REVIEW_OWNED:
        table = model.__table__
        rule = table.c.organisation_id.in_(organisations)
        if shared:
            reviews = _REVIEWS.alias("scope_review")
            rule = or_(rule, _probe(reviews, table.c.review_id, reviews.c.death_id.in_(shared)))
        options.append(with_loader_criteria(model, rule, include_aliases=True))
    for model in _DEATH_KEYED:
        options.append(
            with_loader_criteria(
                model, _death_visible(model.__table__.c.death_id, scope), include_aliases=True
            )
        )
    # A row of a child of a death-keyed table: in scope when its parent is.
    children = (
        (_REVIEWS, "review", (ReviewVersion,)),
        (_SCREENINGS, "screening", (ScreeningVersion,)),
        (_JUDGEMENTS, "judgement", (ReferralJudgementVersion,)),
    )
    for parent_table, name, models in children:
        key = f"{name}_id"
        for model in models:
            parent = parent_table.alias(f"scope_{name}")
            rule = _probe(parent, model.__table__.c[key], _death_visible(parent.c.death_id, scope))
            options.append(with_loader_criteria(model, rule, include_aliases=True))
    plan_rule = _PLANS.c.organisation_id.in_(organisations)
    options.append(with_loader_criteria(ActionPlan, plan_rule, include_aliases=True))
    for model in (Action, ActionPlanSection):
        plans = _PLANS.alias("scope_plan")
        rule = _probe(plans, model.__table__.c.plan_id, plans.c.organisation_id.in_(organisations))
        options.append(with_loader_criteria(model, rule, include_aliases=True))
    actions, plans = _ACTIONS.alias("scope_action"), _PLANS.alias("scope_action_plan")
    action_rule = _probe(
        actions,
        ActionUpdate.__table__.c.action_id,
        _probe(plans, actions.c.plan_id, plans.c.organisation_id.in_(organisations)),
    )
    options.append(with_loader_criteria(ActionUpdate, action_rule, include_aliases=True))
    # Review programmes (issue 17) and theme mappings are their organisation's, as plans are;
    # a programme's questions and recommendations (and their actions) defer to it. Its cases,
    # opinions and answers are death-keyed (above).
    for model in (Programme, ThemeMapping):
        rule = model.__table__.c.organisation_id.in_(organisations)
        options.append(with_loader_criteria(model, rule, include_aliases=True))
    programme_rule = _PROGRAMMES.alias("scope_programme")
    for model in (ProgrammeQuestion, ProgrammeRecommendation):
        rule = _probe(
            programme_rule,
            model.__table__.c.programme_id,
            programme_rule.c.organisation_id.in_(organisations),
        )
        options.append(with_loader_criteria(model, rule, include_aliases=True))
    recommendations = _RECOMMENDATIONS.alias("scope_recommendation")
    programmes = _PROGRAMMES.alias("scope_recommendation_programme")
    options.append(
        with_loader_criteria(
            ProgrammeRecommendationAction,
            _probe(
                recommendations,
                ProgrammeRecommendationAction.__table__.c.recommendation_id,
                _probe(
                    programmes,
                    recommendations.c.programme_id,
                    programmes.c.organisation_id.in_(organisations),
                ),
            ),
            include_aliases=True,
        )
    )
    options.append(with_loader_criteria(OutboxEvent, event_rule(scope), include_aliases=True))
    options.append(
        with_loader_criteria(
            HistoryImport,
            HistoryImport.__table__.c.organisation_id.in_(organisations),
            include_aliases=True,
        )
    )
    # The audit log: the rows written under the client's organisations, and every row naming a
    # death they record (whoever wrote it, a recipient of a share included; a page names
    # several: app.audit.queries shows a reader only the ones it may see); never the rows of
    # a death seen only through a share, which are the recording organisation's.
    audit = AuditEvent.__table__
    recorded = DataScope(False, scope.organisations)
    options.append(
        with_loader_criteria(
            AuditEvent,
            or_(
                audit.c.organisation_id.in_(organisations),
                _names_visible_death(audit.c.death_ids, recorded),
            ),
            include_aliases=True,
        )
    )
    return MappingProxyType({option.entity.mapper.local_table: option for option in options})


def _tables_named(statement: Any) -> Iterator[FromClause]:
    """Every table a statement names, anywhere: its FROM list, joins, subqueries, CTEs, the
    target of an UPDATE or DELETE (an alias's table is among its parts); and the tables of a
    subquery named only through its columns: the one an UPDATE ... FROM or a DELETE ... USING
    joins in its WHERE or SET (app.programmes.cohort), whose entities the ORM confines too.
    A traversal stops at a column (sqlalchemy.sql.util.find_tables missed those)."""
    traversed: set[FromClause] = set()
    pending = [statement]
    while pending:
        through_columns: list[FromClause] = []
        for element in visitors.iterate(pending.pop()):
            if isinstance(element, TableClause):
                yield element
            elif isinstance(element, FromClause):
                traversed.add(element)
            elif isinstance(element, ColumnClause) and element.table is not None:
                through_columns.append(element.table)
        for parent in through_columns:
            if isinstance(parent, TableClause):
                yield parent
            elif parent not in traversed:
                traversed.add(parent)
                pending.append(parent)


def _apply(state: ORMExecuteState) -> None:
    """Add the scope's criteria for the tables the statement names, and only those: each
    option costs its share of the statement's cache key on every execution (all ~33 of them
    were 0.5-1 ms of CPU a statement; docs/benchmarks.md, issue 16). The
    models have no relationships (no relationship load needs another model's criteria)."""
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.execution_options.get(UNSCOPED) or state.is_column_load or state.is_relationship_load:
        return
    by_table = _criteria(_current.get())
    if not by_table:
        return
    named = dict.fromkeys(_tables_named(state.statement))  # in order: a stable cache key
    options = [by_table[table] for table in named if table in by_table]
    if options:
        state.statement = state.statement.options(*options)


def install() -> None:
    """Apply the criteria to every ORM statement of every session (once per process)."""
    if not event.contains(Session, "do_orm_execute", _apply):
        event.listen(Session, "do_orm_execute", _apply)


# --- PostgreSQL row-level security -------------------------------------------------------------

SET_SCOPE_SQL = (
    "SELECT set_config('lfd.scope', :scope, true),"
    " set_config('lfd.organisations', :organisations, true),"
    " set_config('lfd.shared_deaths', :shared, true)"
)


def _array(ids: frozenset[uuid.UUID]) -> str:
    return "{" + ",".join(str(value) for value in sorted(ids)) + "}"


def scope_settings(scope: DataScope) -> dict[str, str]:
    """The values of the transaction's settings the policies read (migration 0019)."""
    return {
        "scope": "all" if scope.everything else "some",
        "organisations": _array(scope.organisations),
        "shared": _array(scope.shared_deaths),
    }


__all__ = [
    "NOTHING",
    "SET_SCOPE_SQL",
    "SYSTEM",
    "UNSCOPED",
    "DataScope",
    "criteria",
    "current_scope",
    "event_rule",
    "install",
    "reset_scope",
    "scope_settings",
    "scoped",
    "use_scope",
]
