"""Who changes what (issue 16, from its acceptance review): a client sees more than it may
change, and the write services ask here before they change anything of a death or a plan.

- A client changes the records of its own organisation and its sites (``DataScope.owns``). A
  pseudonymised client reads its member organisations' records but changes only its own
  organisation's (its action plans).
- A death seen only through a share (its id among the scope's shared deaths, its organisation
  not the client's) is read-only to the recipient, except for the work a share's purpose
  allows (``WORK_PURPOSES``; ``learning`` allows none):

  * the review of the shared referral (the referral the share names; when it names none, any
    referral of the death): a draft, its submission, an amendment;
  * the lease of that referral: claim (from the queue), renew, release;
  * findings on the death; a finding is corrected only by a client of the organisation that
    recorded it.

  Anything else is refused with a 403 ``not-record-owner`` that says what the share allows,
  before anything is written.

What the service writes in consequence of an allowed write (the death's status after a
review, the follow-on referrals a review calls for, events, the audit) still happens: those
writes are the service's, not the client's. docs/organisations.md, "What a share allows".
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Forbidden
from app.models import ApiClient, Death, Referral
from app.scoping import DataScope, current_scope

# The purposes of a share that let the recipient work on the death (docs/organisations.md).
# `learning` (a joint learning or M&M meeting) lets it read the death, nothing more.
WORK_PURPOSES = frozenset({"system_review", "review", "second_opinion", "leder"})
# What a share for work allows, as the refusal names it (`share_allows`).
SHARE_WORK = ("read", "review", "lease", "findings")


class NotRecordOwner(Forbidden):
    """A write to a record the client may read but not change: a death shared with its
    organisation (beyond what the share allows), or a member organisation's record read as a
    commissioner. Names what the share allows; changes nothing."""

    slug, title = "not-record-owner", "Only the organisation that records it changes it"


def _work(scope: DataScope, death_id: uuid.UUID) -> list[uuid.UUID | None]:
    """The referrals the open shares of ``death_id`` name for work (None: all of them)."""
    return [
        referral
        for death, referral, purpose in scope.shares
        if death == death_id and purpose in WORK_PURPOSES
    ]


def may_work_on(scope: DataScope, death_id: uuid.UUID) -> bool:
    """Whether a share lets the client work on the death (findings)."""
    return bool(_work(scope, death_id))


def may_work_on_referral(scope: DataScope, death_id: uuid.UUID, referral_id: uuid.UUID) -> bool:
    """Whether a share lets the client review and lease the referral: the share names it, or
    names no referral of the death."""
    named = _work(scope, death_id)
    return None in named or referral_id in named


def refusal(scope: DataScope, death_id: uuid.UUID | None, what: str) -> NotRecordOwner:
    """The 403 for a write to ``what`` that the client may read but not make."""
    if death_id is None or death_id not in scope.shared_deaths:
        return NotRecordOwner(
            f"Your organisation reads this {what} but does not change it: only the "
            "organisation that records it (and its sites) changes it. A commissioner's "
            "pseudonymised client changes its own organisation's action plans only."
        )
    purposes = sorted({purpose for death, _, purpose in scope.shares if death == death_id})
    named = _work(scope, death_id)
    extra: dict[str, Any] = {"share_purposes": purposes}
    if not named:
        extra["share_allows"] = ["read"]
        allows = "read it, nothing more (a share for learning is read-only)"
    else:
        extra["share_allows"] = list(SHARE_WORK)
        if None in named:
            which = "any of its referrals"
        else:
            extra["shared_referral_ids"] = sorted(str(referral) for referral in named if referral)
            which = "the referral it names (shared_referral_ids)"
        allows = (
            f"read it; post, save and amend the review of {which}; claim, renew and release "
            "that referral's lease; record findings on the death and correct your own"
        )
    return NotRecordOwner(
        f"This death was shared with your organisation ({', '.join(purposes)}). The share "
        f"lets you {allows}. Only the organisation that records the death changes its {what}.",
        extra=extra,
    )


async def owns_death(session: AsyncSession, death_id: uuid.UUID) -> bool:
    """Whether the client changes the death (and so its screening, referrals, reviews ...),
    for a death it can see. A death seen outside the shares by a client that changes all it
    sees is its own without a query; otherwise the death's organisation decides (one lookup,
    usually of a row the request has loaded already)."""
    scope = current_scope()
    if scope.own is None and (scope.everything or death_id not in scope.shared_deaths):
        return True
    death = await session.get(Death, death_id)
    return death is not None and scope.owns(death.organisation_id)


def check_owner(organisation_id: uuid.UUID | None, death_id: uuid.UUID | None, what: str) -> None:
    """Refuse (403) a write to a record of ``organisation_id`` the client does not change."""
    scope = current_scope()
    if not scope.owns(organisation_id):
        raise refusal(scope, death_id, what)


async def require_owner(session: AsyncSession, death_id: uuid.UUID, what: str) -> None:
    """Refuse (403) a write to the death's ``what`` unless the client's organisation records
    the death."""
    if not await owns_death(session, death_id):
        raise refusal(current_scope(), death_id, what)


async def require_referral_work(session: AsyncSession, referral: Referral, what: str) -> None:
    """Refuse (403) a review or a lease of the referral unless the client records its death or
    a share for work names the referral (or names none of the death's)."""
    if await owns_death(session, referral.death_id):
        return
    scope = current_scope()
    if not may_work_on_referral(scope, referral.death_id, referral.id):
        raise refusal(scope, referral.death_id, what)


async def require_findings(session: AsyncSession, death_id: uuid.UUID) -> None:
    """Refuse (403) a new finding on the death unless the client records it or a share for
    work lets it contribute."""
    if await owns_death(session, death_id):
        return
    scope = current_scope()
    if not may_work_on(scope, death_id):
        raise refusal(scope, death_id, "findings")


async def require_finding_change(
    session: AsyncSession, death_id: uuid.UUID, recorded_by_client: uuid.UUID | None
) -> None:
    """Refuse (403) a correction of a finding on the death unless the client records the
    death, or a share lets it contribute and a client of its own organisation recorded the
    finding."""
    if await owns_death(session, death_id):
        return
    scope = current_scope()
    if may_work_on(scope, death_id) and recorded_by_client is not None:
        recorder = await session.scalar(
            select(ApiClient.organisation_id).where(ApiClient.id == recorded_by_client)
        )
        if recorder is not None and scope.owns(recorder):
            return
    raise refusal(scope, death_id, "findings")


def owned_deaths() -> ColumnElement[bool] | None:
    """SQL for the deaths the client changes, where that is fewer than it sees (None: all it
    sees): for the searches that pick a death to write to (a notified patient matched by NHS
    number, a possible duplicate), which must never pick a death shared with the client."""
    scope = current_scope()
    if scope.own is None and (scope.everything or not scope.shared_deaths):
        return None
    owned = scope.own if scope.own is not None else scope.organisations
    return Death.organisation_id.in_(sorted(owned))


def workable_referrals() -> ColumnElement[bool] | None:
    """SQL for the referrals the client may lease from the queue, where that is fewer than it
    sees (None: all it sees): its own deaths' and those a share for work names."""
    scope = current_scope()
    if scope.own is None and (scope.everything or not scope.shared_deaths):
        return None
    work = [(death, referral) for death, referral, use in scope.shares if use in WORK_PURPOSES]
    whole = sorted({death for death, referral in work if referral is None})
    named = sorted({referral for _, referral in work if referral is not None})
    owned = scope.own if scope.own is not None else scope.organisations
    deaths = Death.__table__.alias("owned_death")
    own_death = (
        select(literal(1))
        .select_from(deaths)
        .where(deaths.c.id == Referral.death_id, deaths.c.organisation_id.in_(sorted(owned)))
        .correlate_except(deaths)
        .exists()
    )
    rules: list[ColumnElement[bool]] = []
    if scope.own is None:
        # Seen, and not through a share: the client's own (no probe of the death needed).
        rules.append(Referral.death_id.not_in(sorted(scope.shared_deaths)))
    if whole:
        rules.append(Referral.death_id.in_(whole))
    if named:
        rules.append(Referral.id.in_(named))
    rules.append(own_death)
    return or_(*rules)


__all__ = [
    "WORK_PURPOSES",
    "NotRecordOwner",
    "check_owner",
    "may_work_on",
    "may_work_on_referral",
    "owned_deaths",
    "owns_death",
    "refusal",
    "require_finding_change",
    "require_findings",
    "require_owner",
    "require_referral_work",
    "workable_referrals",
]
