"""What the guard looks up for every request, kept in the worker's memory between requests
(issue 19): the client an API key stands for, and the reach (app.scoping) of a client's
organisation. Each was a database round trip on every request.

Safe because every process drops an entry the moment the database changes what it was read
from, and never keeps one it cannot be told about:

- **Invalidation.** Triggers (migration 0026) NOTIFY ``lfd_credentials`` with the client's id
  when an ``api_clients`` row changes (revoked, expired, its key rotated, its scopes or
  organisation edited: by the API, the command line or by hand), and ``lfd_scopes`` when
  ``organisations`` or ``case_shares`` change. Each process LISTENs on a connection of its own
  (app.kit.listen) and drops the client's keys, or every reach, when told; a notification is
  delivered when the change commits, to every process of every replica at once.
- **Only while listening.** Nothing is served from the cache, nor stored in it, unless the
  LISTEN connection is up; when it drops, both caches are emptied, and every request looks up
  the database again until it is back.
- **No stale store.** A lookup stores its answer only if no notification (and no loss of the
  connection) came between its start and its end (``Listener.epoch``).
- **A maximum age** (``auth_cache_seconds``, default 10 s) as the backstop for anything the
  triggers cannot see, and time itself: an entry is also dropped at the client's
  ``expires_at``, at the end of a rotated key's grace period, and, for a reach, when the next
  share of the organisation starts or ends.

Only API keys are cached: an access token is verified from its signature without the database,
and then its client is read, as before. SQLite deployments (no LISTEN) do not cache.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import case, event, func, or_, select
from sqlalchemy.orm import Session

from app.auth.oauth.bearer import Resolved, resolve_credential
from app.auth.oauth.tokens import looks_like_jwt
from app.db import Database
from app.kit import listen
from app.kit.cursor import cursor_key
from app.kit.etag import derive_etag_key
from app.models import ApiClient, CaseShare, Organisation
from app.models.base import utcnow
from app.reach import reach_of
from app.scoping import SYSTEM, UNSCOPED, DataScope

CREDENTIALS_CHANNEL = "lfd_credentials"
SCOPES_CHANNEL = "lfd_scopes"
MAX_ENTRIES = 10_000
_CHANGED = "lfd_cache_changed"  # Session.info: what a transaction changed that is cached


@dataclass(frozen=True)
class _Entry:
    deadline: float  # on the monotonic clock
    not_after: datetime | None  # wall clock: the client's expiry, a grace period's end
    resolved: Resolved


@dataclass(frozen=True)
class _Reach:
    deadline: float
    not_after: datetime | None  # the next start or end of one of the organisation's shares
    scope: DataScope


def _digest(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


def _not_after(resolved: Resolved, credential: str) -> datetime | None:
    """Until when the client's row says this key works (None: until it changes)."""
    client = resolved.client
    ends = [client.expires_at] if client.expires_at is not None else []
    prefix = credential.split("_", 2)[1]
    if client.key_prefix != prefix and client.previous_key_expires_at is not None:
        ends.append(client.previous_key_expires_at)  # a rotated key, in its grace period
    return min(ends) if ends else None


class AuthCache:
    """One per app (per worker process)."""

    def __init__(
        self,
        database: Database,
        max_age_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.listener = database.listener
        self.max_age = max_age_seconds
        self.clock = clock
        self.enabled = self.listener is not None and max_age_seconds > 0
        self._credentials: dict[str, _Entry] = {}
        self._by_client: dict[uuid.UUID, set[str]] = {}
        self._reach: dict[tuple[uuid.UUID, bool], _Reach] = {}
        self._etag_key: bytes | None = None
        if self.listener is not None and self.enabled:
            self.listener.subscribe(CREDENTIALS_CHANNEL, self._client_changed, self.clear)
            self.listener.subscribe(SCOPES_CHANNEL, self._scopes_changed, self.clear)
            self._watch_own_writes(database.session_class)

    def _watch_own_writes(self, session_class: type[Session]) -> None:
        """What this process itself commits is dropped as it commits, before the NOTIFY comes
        back: the client that revoked a key or shared a death sees the change in its very next
        request (other processes within milliseconds, when their notification arrives)."""

        def flushed(session: Session, _context: Any) -> None:
            changed = session.info.setdefault(_CHANGED, set())
            for row in (*session.new, *session.dirty, *session.deleted):
                if isinstance(row, ApiClient):
                    changed.add(row.id)
                elif isinstance(row, Organisation | CaseShare):
                    changed.add(SCOPES_CHANNEL)

        def committed(session: Session) -> None:
            for changed in session.info.pop(_CHANGED, ()):
                if changed == SCOPES_CHANNEL:
                    self._scopes_changed("")
                    if self.listener is not None:  # and the process-wide ones (organisations)
                        listen.changed_here(SCOPES_CHANNEL, self.listener.key)
                else:
                    self._client_changed(str(changed))

        def rolled_back(session: Session) -> None:
            session.info.pop(_CHANGED, None)

        event.listen(session_class, "after_flush", flushed)
        event.listen(session_class, "after_commit", committed)
        event.listen(session_class, "after_rollback", rolled_back)

    # -- invalidation -------------------------------------------------------------------------

    def clear(self) -> None:
        self._credentials.clear()
        self._by_client.clear()
        self._reach.clear()

    def _client_changed(self, payload: str) -> None:
        try:
            client_id = uuid.UUID(payload)
        except ValueError:  # not a client id: drop everything rather than guess
            self._credentials.clear()
            self._by_client.clear()
            return
        for digest in self._by_client.pop(client_id, set()):
            self._credentials.pop(digest, None)

    def _scopes_changed(self, _payload: str) -> None:
        self._reach.clear()

    def holds(self, credential: str) -> bool:
        """Whether this process holds the credential as checked (for tests and operators)."""
        return _digest(credential) in self._credentials

    def _serving(self) -> bool:
        if not self.enabled or self.listener is None:
            return False
        self.listener.ensure()
        return self.listener.live

    def _epoch(self) -> int:
        return self.listener.epoch if self.listener is not None else 0

    def _may_store(self, epoch: int) -> bool:
        listener = self.listener
        return listener is not None and listener.live and listener.epoch == epoch

    # -- the lookups --------------------------------------------------------------------------

    async def credential(self, request: Request, credential: str) -> Resolved:
        """The client and scopes of a bearer credential (app.auth.oauth.bearer), from memory
        when this process has already checked the key and nothing has changed since."""
        if not self._serving() or looks_like_jwt(credential):
            return await resolve_credential(request, self.database, credential)
        digest = _digest(credential)
        entry = self._credentials.get(digest)
        if entry is not None:
            if entry.deadline > self.clock() and (
                entry.not_after is None or entry.not_after > utcnow()
            ):
                return entry.resolved
            self._credentials.pop(digest, None)
        epoch = self._epoch()
        resolved = await resolve_credential(request, self.database, credential)
        if self._may_store(epoch):
            if len(self._credentials) >= MAX_ENTRIES:
                self._credentials.clear()
                self._by_client.clear()
            self._credentials[digest] = _Entry(
                self.clock() + self.max_age, _not_after(resolved, credential), resolved
            )
            self._by_client.setdefault(resolved.client.id, set()).add(digest)
        return resolved

    async def etag_key(self) -> bytes:
        """The deployment's ETag key (derived from its cursor key, which never changes)."""
        if self._etag_key is None:
            async with self.database.autocommit() as session:
                self._etag_key = derive_etag_key(await cursor_key(session))
        return self._etag_key

    async def reach(self, organisation_id: uuid.UUID | None, members: bool) -> DataScope:
        """app.reach.reach_of, from memory while no organisation or share has changed."""
        serving = organisation_id is not None and self._serving()
        key = (organisation_id, members) if organisation_id is not None else None
        if serving and key is not None:
            hit = self._reach.get(key)
            if hit is not None:
                if hit.deadline > self.clock() and (
                    hit.not_after is None or hit.not_after > utcnow()
                ):
                    return hit.scope
                self._reach.pop(key, None)
        epoch = self._epoch()
        async with self.database.autocommit() as session:
            now = utcnow()
            scope = await reach_of(session, organisation_id, members=members, at=now)
            boundary = None
            if serving and scope is not SYSTEM and organisation_id is not None:
                boundary = await session.scalar(
                    select(
                        func.min(
                            case(
                                (CaseShare.starts_at > now, CaseShare.starts_at),
                                else_=CaseShare.ends_at,
                            )
                        )
                    ).where(
                        CaseShare.organisation_id == organisation_id,
                        CaseShare.revoked_at.is_(None),
                        or_(CaseShare.starts_at > now, CaseShare.ends_at > now),
                    ),
                    execution_options={UNSCOPED: True},
                )
        if serving and key is not None and self._may_store(epoch):
            if len(self._reach) >= MAX_ENTRIES:
                self._reach.clear()
            self._reach[key] = _Reach(self.clock() + self.max_age, boundary, scope)
        return scope
