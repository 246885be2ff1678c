"""The organisation registry: create, read, list and look up, and change organisations
(docs/organisations.md "The registry"). Every write is checked against the whole registry by
app.organisations.rules, audited and evented (``organisation.created``/``updated``).

Who may write: a client with the `admin` scope. A deployment-level client (no organisation)
writes any organisation; an organisation's own admin client creates organisations, and changes
only those of its own tree (its organisation and those below it), never their kind or parent:
those decide whose clients see an organisation's records (app.reach.reach_of)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.journal import Journal
from app.auth.principal import Principal
from app.errors import BadRequest, Conflict, Forbidden, ValidationFailed, field_error
from app.events.service import Change
from app.kit.cursor import open_cursor, sign_cursor
from app.kit.etag import Precondition, etag
from app.kit.ods import alias_key
from app.kit.sql import load_one
from app.kit.time import now
from app.models import Organisation
from app.organisations.rules import (
    Entry,
    Kind,
    Problem,
    RegistryIndex,
    check_draft,
    clean_aliases,
    infer_parent,
    normalise_code,
)
from app.organisations.schemas import (
    OrganisationCreate,
    OrganisationOut,
    OrganisationPatch,
)
from app.organisations.settings import stored_settings
from app.scoping import DataScope, current_scope


def registry_scope(organisation_id: uuid.UUID) -> DataScope:
    """The scope of a registry write: the client's, and the organisation written, whose
    events (``organisation_id`` set) the row-level security policies would otherwise refuse
    to a client outside it (a deployment-level client sees no organisation's records). The
    write reads and changes no patient data."""
    scope = current_scope()
    if scope.everything:
        return scope
    return DataScope(False, scope.organisations | {organisation_id}, scope.shared_deaths)


def organisation_out(organisation: Organisation) -> OrganisationOut:
    return OrganisationOut.model_validate(organisation)


def organisation_etag(out: OrganisationOut) -> str:
    return etag(out.id, out.version)


def entry_of(organisation: Organisation) -> Entry:
    return Entry(
        id=organisation.id,
        ods_code=organisation.ods_code,
        name=organisation.name,
        kind=Kind(organisation.kind),
        parent_id=organisation.parent_id,
        aliases=list(organisation.aliases or []),
    )


async def lock_registry(session: AsyncSession) -> None:
    """One registry write at a time (the default organisation's row is the lock, on
    PostgreSQL; SQLite's writers take turns anyway), so that two writes cannot both pass the
    uniqueness of an alias or the shape of the tree."""
    await session.execute(
        select(Organisation.id).where(Organisation.is_default.is_(True)).with_for_update()
    )


async def load_index(session: AsyncSession) -> RegistryIndex:
    """The whole registry in memory, after taking the registry's lock."""
    await lock_registry(session)
    index = RegistryIndex()
    rows = await session.execute(
        select(
            Organisation.id,
            Organisation.ods_code,
            Organisation.name,
            Organisation.kind,
            Organisation.parent_id,
            Organisation.aliases,
        )
    )
    for row_id, code, name, kind, parent_id, aliases in rows:
        index.put(Entry(row_id, code, name, Kind(kind), parent_id, list(aliases or [])))
    return index


def refuse(problems: list[Problem], what: str = "The organisation") -> None:
    """The problems as one problem+json: 409 naming the other organisation when the change
    clashes with one (a code or alias already taken), else 422."""
    if not problems:
        return
    errors = [field_error(problem.pointer, problem.detail, problem.code) for problem in problems]
    clashes = [problem.clash for problem in problems if problem.clash is not None]
    if clashes:
        raise Conflict(
            f"{what} clashes with another organisation of the registry.",
            errors=errors,
            extra={"organisation": f"/v1/organisations/{clashes[0]}"},
        )
    raise ValidationFailed(f"{what} cannot be registered as given; see errors.", errors=errors)


def require_writer(index: RegistryIndex, principal: Principal, organisation_id: uuid.UUID) -> None:
    """An organisation's admin client changes only its own tree."""
    own = principal.organisation_id
    if own is not None and organisation_id not in index.tree(own):
        raise Forbidden(
            "An organisation's client changes only its own organisation and those below it; "
            "use a deployment-level client (`lfd clients create --deployment`)."
        )


def record(journal: Journal, organisation: Organisation, created: bool, changed: list[str]) -> None:
    action = "created" if created else "updated"
    journal.event(
        Change(
            f"organisation.{action}",
            "organisation",
            organisation.id,
            None,
            changed,
            organisation_id=organisation.id,
        )
    )
    journal.audit(
        f"organisation.{'create' if created else 'update'}",
        "organisation",
        organisation.id,
        None,
    )


def new_organisation(
    entry: Entry, settings: dict[str, Any], closed_at: datetime | None = None
) -> Organisation:
    moment = now()
    return Organisation(
        id=entry.id,
        ods_code=entry.ods_code,
        name=entry.name,
        kind=entry.kind.value,
        parent_id=entry.parent_id,
        aliases=list(entry.aliases),
        is_default=False,
        settings=settings,
        closed_at=closed_at,
        version=1,
        created_at=moment,
        updated_at=moment,
    )


def _parent_by_code(index: RegistryIndex, code: str | None, pointer: str) -> uuid.UUID | None:
    parent = index.by_ods(normalise_code(code))
    if code is not None and parent is None:
        raise ValidationFailed(
            "No organisation has that parent ODS code.",
            errors=[field_error(pointer, "no organisation has this ODS code", "not_found")],
        )
    return parent.id if parent is not None else None


async def create_organisation(
    session: AsyncSession,
    principal: Principal,
    body: OrganisationCreate,
    organisation_id: uuid.UUID,
) -> OrganisationOut:
    """Register an organisation under ``organisation_id`` (made by the caller, so that the
    transaction's scope can name it: app.organisations.router)."""
    index = await load_index(session)
    if body.parent_id is not None and body.parent_ods_code is not None:
        raise ValidationFailed(
            "Give the parent by id or by ODS code, not both.",
            errors=[field_error("/parent_ods_code", "not with parent_id", "exclusive")],
        )
    parent_id = body.parent_id or _parent_by_code(index, body.parent_ods_code, "/parent_ods_code")
    draft = Entry(
        id=organisation_id,
        ods_code=normalise_code(body.ods_code),
        name=body.name,
        kind=body.kind,
        parent_id=parent_id,
        aliases=clean_aliases(body.aliases),
    )
    infer_parent(index, draft)
    refuse(check_draft(index, draft))
    organisation = new_organisation(draft, stored_settings(body.settings))
    session.add(organisation)
    await session.flush()
    journal = Journal(principal)
    record(journal, organisation, created=True, changed=[])
    await journal.write(session)
    return organisation_out(organisation)


async def read_organisation(session: AsyncSession, organisation_id: uuid.UUID) -> OrganisationOut:
    return organisation_out(await load_one(session, Organisation, organisation_id, "organisation"))


def _cleared(changes: dict[str, Any]) -> None:
    nulls = [
        field_error(f"/{name}", "this field cannot be cleared", "null_not_allowed")
        for name in ("name", "kind", "aliases", "closed")
        if name in changes and changes[name] is None
    ]
    if nulls:
        raise ValidationFailed("Some fields cannot be cleared.", errors=nulls)


async def patch_organisation(
    session: AsyncSession,
    principal: Principal,
    organisation_id: uuid.UUID,
    patch: OrganisationPatch,
    if_match: Precondition,
) -> OrganisationOut:
    """Change what was sent; the whole registry is checked again (the organisation's code,
    parent and aliases, and the organisations under it)."""
    # The registry's lock first, as every registry write takes it (a load, an adoption): two
    # writers never hold each other's rows.
    index = await load_index(session)
    organisation = await load_one(
        session, Organisation, organisation_id, "organisation", for_update=True
    )
    if_match.check(organisation.id, organisation.version)
    require_writer(index, principal, organisation.id)
    changes = patch.model_dump(exclude_unset=True)
    _cleared(changes)
    draft = entry_of(organisation)
    if "ods_code" in changes:
        draft.ods_code = normalise_code(changes["ods_code"])
    if "name" in changes:
        draft.name = changes["name"]
    if "kind" in changes:
        draft.kind = Kind(changes["kind"])
    if "parent_id" in changes:
        draft.parent_id = changes["parent_id"]
    if "aliases" in changes:
        draft.aliases = clean_aliases(changes["aliases"])
    moved = draft.kind.value != organisation.kind or draft.parent_id != organisation.parent_id
    if moved and principal.organisation_id is not None:
        raise Forbidden(
            "An organisation's kind and parent decide who sees its records: only a "
            "deployment-level client changes them (`lfd clients create --deployment`)."
        )
    refuse(check_draft(index, draft))
    settings = (
        stored_settings(patch.settings) if "settings" in changes else dict(organisation.settings)
    )
    closed_at = organisation.closed_at
    if "closed" in changes and changes["closed"] != (closed_at is not None):
        if changes["closed"] and organisation.is_default:
            raise Conflict(
                "The default organisation owns the deployment's earlier records and new "
                "clients: it cannot be closed (name it with `lfd organisations adopt`)."
            )
        closed_at = now() if changes["closed"] else None
    changed = apply_entry(organisation, draft, settings, closed_at)
    if changed:
        await session.flush()
        journal = Journal(principal)
        record(journal, organisation, created=False, changed=changed)
        await journal.write(session)
    return organisation_out(organisation)


def apply_entry(
    organisation: Organisation,
    entry: Entry,
    settings: dict[str, Any],
    closed_at: datetime | None,
) -> list[str]:
    """Bring the row to ``entry``; the names of the fields that changed (its version is raised
    when any did)."""
    wanted: dict[str, Any] = {
        "ods_code": entry.ods_code,
        "name": entry.name,
        "kind": entry.kind.value,
        "parent_id": entry.parent_id,
        "aliases": list(entry.aliases),
        "settings": settings,
        "closed_at": closed_at,
    }
    changed = [name for name, value in wanted.items() if getattr(organisation, name) != value]
    for name in changed:
        setattr(organisation, name, wanted[name])
    if changed:
        organisation.version += 1
        organisation.updated_at = now()
    return changed


# --- lists and look-ups -----------------------------------------------------------------------


@dataclass(frozen=True)
class OrganisationFilters:
    kind: Kind | None = None
    parent: str | None = None
    q: str | None = None
    ods_code: str | None = None
    alias: str | None = None
    closed: bool | None = None


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def find_organisation(session: AsyncSession, reference: str) -> Organisation | None:
    """An organisation by its id or its ODS code (the `parent` filter, the command line)."""
    try:
        organisation_id = uuid.UUID(reference)
    except ValueError:
        code = normalise_code(reference)
        if not code:
            return None
        return await session.scalar(select(Organisation).where(Organisation.ods_code == code))
    return await session.get(Organisation, organisation_id)


async def find_by_alias(session: AsyncSession, alias: str) -> Organisation | None:
    """The organisation with this alias (compared as aliases are: without case or
    punctuation). The rows whose aliases hold the key's first word are read, then compared."""
    key = alias_key(alias)
    if not key:
        return None
    candidates = await session.scalars(
        select(Organisation).where(
            func.lower(cast(Organisation.aliases, String)).like(_like(key.split()[0]), escape="\\")
        )
    )
    for candidate in candidates:
        if any(alias_key(written) == key for written in candidate.aliases or []):
            return candidate
    return None


async def list_organisations(
    session: AsyncSession, filters: OrganisationFilters, cursor: str | None, limit: int
) -> tuple[list[OrganisationOut], str | None]:
    """Organisations by name (keyset on name, id), filtered; ``ods_code`` and ``alias`` are
    look-ups of one organisation (a page of one, or empty)."""
    query = select(Organisation)
    if filters.alias is not None:
        found = await find_by_alias(session, filters.alias)
        if found is None:
            return [], None
        query = query.where(Organisation.id == found.id)
    if filters.ods_code is not None:
        query = query.where(Organisation.ods_code == normalise_code(filters.ods_code))
    if filters.kind is not None:
        query = query.where(Organisation.kind == filters.kind.value)
    if filters.parent is not None:
        parent = await find_organisation(session, filters.parent)
        if parent is None:
            raise ValidationFailed(
                "No organisation has that id or ODS code.",
                errors=[
                    field_error("query:/parent", "no organisation with that id or code", "unknown")
                ],
            )
        query = query.where(Organisation.parent_id == parent.id)
    if filters.q is not None:
        pattern = _like(filters.q)
        query = query.where(
            or_(
                func.lower(Organisation.name).like(pattern, escape="\\"),
                func.lower(func.coalesce(Organisation.ods_code, "")).like(pattern, escape="\\"),
                func.lower(cast(Organisation.aliases, String)).like(pattern, escape="\\"),
            )
        )
    if filters.closed is not None:
        query = query.where(
            Organisation.closed_at.is_not(None)
            if filters.closed
            else Organisation.closed_at.is_(None)
        )
    # By name without regard to case, folded by the database (the cursor keeps its folding).
    folded = func.lower(Organisation.name)
    if cursor is not None:
        name, last_id = await open_cursor(session, cursor, 2)
        if not isinstance(name, str):
            raise BadRequest("The cursor is not one this service issued.")
        try:
            after = uuid.UUID(str(last_id))
        except ValueError:
            raise BadRequest("The cursor is not one this service issued.") from None
        query = query.where(tuple_(folded, Organisation.id) > tuple_(name, after))
    rows = (
        await session.execute(
            query.add_columns(folded).order_by(folded, Organisation.id).limit(limit + 1)
        )
    ).all()
    page = [row for row, _ in rows[:limit]]
    next_cursor = (
        await sign_cursor(session, [rows[limit - 1][1], str(page[-1].id)])
        if len(rows) > limit
        else None
    )
    return [organisation_out(row) for row in page], next_cursor
