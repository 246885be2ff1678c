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


@dataclass
class _Subscriber:
    on_notify: Callable[[str], None]
    on_lost: Callable[[], None]


@dataclass
class Listener:
    """LISTEN on a connection of its own. ``connect`` opens an asyncpg connection (the
    Database's DSN); nothing happens until ``ensure()`` is first awaited."""

    connect: Callable[[], Any]
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
        for subscriber in self.channels.get(channel, []):
            subscriber.on_notify(payload)

    def _lost(self, *_: Any) -> None:
        was = self.live
        self.live = False
        self._became_live.clear()
        self._down.set()
        self.epoch += 1
        if was:
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
                for channel in self.channels:
                    await connection.add_listener(channel, self._notified)
                # Whatever changed before this point was never seen: start from empty caches.
                self._lost()
                self._down.clear()
                self.live = True
                self._became_live.set()
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
