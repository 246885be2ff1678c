"""PostgreSQL LISTEN on a connection of its own, for caches that every process of a deployment
must drop at once when the database says so (app.auth.cache: credentials and organisation
reach, docs/benchmarks.md issue 19).

One ``Listener`` per Database: a dedicated asyncpg connection (never one of the pool's) that
LISTENs on the channels its subscribers named and calls them on each notification. What makes
it safe to cache on its word:

- ``live`` is true only while the connection is up and LISTENing. A cache stores nothing while
  it is false, and every subscriber's ``on_lost`` is called (the caches empty themselves) the
  moment the connection is found lost, so a notification missed while it was down cannot leave
  a stale entry behind. It reconnects on its own (with a short back-off) and is live again once
  it LISTENs again.
- ``epoch`` counts notifications and losses: a cache notes it before reading the database and
  stores what it read only if it has not moved, so a change committed while the read was in
  flight is never cached as current.

The triggers that NOTIFY (migration 0026) fire on commit, in every process's listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("app.listen")

RECONNECT_SECONDS = 1.0

# Process-wide: caches that are not one app's (keyed by database) watch a channel here, and
# may serve only while a listener of their database is live in this process.
_watchers: dict[str, list[Callable[[str], None]]] = {}
_live: dict[str, int] = {}
_epoch = [0]


def watch(channel: str, on_change: Callable[[str], None]) -> None:
    """Call ``on_change`` (with the database's key) on every notification on ``channel`` and
    on every loss of a listener, in this process. Register at import time: a listener LISTENs
    on the channels known when it connects."""
    _watchers.setdefault(channel, []).append(on_change)


def changed_here(channel: str, key: str) -> None:
    """What this process itself committed: its own watchers hear of it at once, before the
    NOTIFY comes back (read-your-writes for the client that made the change)."""
    _epoch[0] += 1
    for on_change in _watchers.get(channel, []):
        on_change(key)


def is_live(key: str) -> bool:
    """Whether a listener of the database ``key`` (its URL, password hidden) is live here."""
    return _live.get(key, 0) > 0


def epoch() -> int:
    """Moves on every notification and every loss, in any listener of this process."""
    return _epoch[0]


@dataclass
class _Subscriber:
    on_notify: Callable[[str], None]
    on_lost: Callable[[], None]


@dataclass
class Listener:
    """LISTEN on a connection of its own. ``connect`` opens an asyncpg connection (the
    Database's DSN); nothing happens until ``ensure()`` is first awaited."""

    connect: Callable[[], Any]
    key: str = ""  # the database's URL, password hidden (for the process-wide watchers)
    channels: dict[str, list[_Subscriber]] = field(default_factory=dict)
    live: bool = False
    epoch: int = 0
    _task: asyncio.Task[None] | None = None
    _connection: Any = None
    _closed: bool = False
    _became_live: asyncio.Event = field(default_factory=asyncio.Event)
    _down: asyncio.Event = field(default_factory=asyncio.Event)

    def subscribe(
        self, channel: str, on_notify: Callable[[str], None], on_lost: Callable[[], None]
    ) -> None:
        self.channels.setdefault(channel, []).append(_Subscriber(on_notify, on_lost))

    def ensure(self) -> None:
        """Start listening (once per event loop); returns at once. ``live`` turns true when
        the connection LISTENs."""
        if self._closed:
            return
        task = self._task
        if task is None or task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="lfd-listen")

    async def wait_live(self, seconds: float) -> bool:
        """For tests and start-up: wait until listening (at most ``seconds``)."""
        self.ensure()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._became_live.wait()
        return self.live

    def _notified(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        self.epoch += 1
        _epoch[0] += 1
        for subscriber in self.channels.get(channel, []):
            subscriber.on_notify(payload)
        for on_change in _watchers.get(channel, []):
            on_change(self.key)

    def _set_live(self) -> None:
        self.live = True
        _live[self.key] = _live.get(self.key, 0) + 1
        self._became_live.set()

    def _lost(self, *_: Any) -> None:
        was = self.live
        self.live = False
        _epoch[0] += 1
        if was:
            _live[self.key] = _live.get(self.key, 1) - 1
        for watchers in _watchers.values():
            for on_change in watchers:
                on_change(self.key)
        self._became_live.clear()
        self._down.set()
        self.epoch += 1
        if was and not self._closed:  # closing (shutdown) is not a loss worth a warning
            logger.warning("listen connection lost; caches emptied until it is back")
        for subscribers in self.channels.values():
            for subscriber in subscribers:
                subscriber.on_lost()

    async def _run(self) -> None:
        while not self._closed:
            try:
                connection = await self.connect()
                self._connection = connection
                connection.add_termination_listener(self._lost)
                for channel in {*self.channels, *_watchers}:
                    await connection.add_listener(channel, self._notified)
                # Whatever changed before this point was never seen: start from empty caches.
                self._lost()
                self._down.clear()
                self._set_live()
                await self._down.wait()  # until the connection is lost (or closed)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is down or refuses: retry, caching nothing
                logger.warning("listen connection failed; retrying", exc_info=True)
            self._lost()
            await self._close_connection()
            if not self._closed:
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)

    async def close(self) -> None:
        self._closed = True
        self._lost()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await self._close_connection()
