"""The background loop: the service's periodic jobs, run from the database.

The jobs themselves are listed in app.jobs. Every job keeps its state in the database and is
safe to run in several processes at once (see app.actions.overdue), so the loop may run inside
each ``lfd serve`` process (the default), in a separate ``lfd worker`` process, or both, and
any of them may be started or killed at any time.

A failing job is logged (its name and the error's type, nothing from the data) and the loop
carries on: the next pass tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from app.db import Database, Work, doing
from app.telemetry import JOB_ERRORS, JOB_RUNS

logger = logging.getLogger("app.worker")

Job = Callable[[Database], Awaitable[int]]


class Worker:
    """Runs the jobs it is given (``(name, job)`` pairs; each job returns how many things it
    did). It knows no job of its own: the service's jobs are listed in app.jobs and handed to
    it by ``main`` and ``cli``, so this generic loop imports no domain."""

    def __init__(
        self,
        database: Database,
        interval_seconds: float,
        jobs: Sequence[tuple[str, Job]],
    ) -> None:
        self.database = database
        self.interval_seconds = interval_seconds
        self.jobs = tuple(jobs)
        self.passes = 0
        # Set after each pass; a caller can clear it and wait for the next one.
        self.passed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> dict[str, int]:
        """Run every job once. A job that fails is logged and left for the next pass."""
        done: dict[str, int] = {}
        for name, job in self.jobs:
            started = time.perf_counter()
            JOB_RUNS.labels(name).inc()
            try:
                done[name] = await job(self.database)
            except Exception:
                JOB_ERRORS.labels(name).inc()
                logger.exception("worker job failed", extra={"job": name})
                continue
            if done[name]:
                logger.info(
                    "worker job done",
                    extra={
                        "job": name,
                        "count": done[name],
                        "duration_ms": round((time.perf_counter() - started) * 1000),
                    },
                )
        self.passes += 1
        self.passed.set()
        return done

    async def run(self) -> None:
        """Pass after pass, every ``interval_seconds``, until stop() is called."""
        logger.info("worker started", extra={"interval_seconds": self.interval_seconds})
        while not self._stopping.is_set():
            # The background loop's own database timeouts (app.db.Work.worker) for its task.
            with doing(Work.worker):
                await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_seconds)
        logger.info("worker stopped")

    @property
    def running(self) -> bool:
        """Whether the background task started by start() is still running."""
        return self._task is not None and not self._task.done()

    def stop(self) -> None:
        """Ask the loop to end after the job it is running (thread-unsafe; call on its loop)."""
        self._stopping.set()

    def start(self) -> asyncio.Task[None]:
        """Run the loop as a background task on the running event loop (inside ``lfd serve``)."""
        self._task = asyncio.create_task(self.run(), name="lfd-worker")
        return self._task

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Stop the background task: let the running job finish its batch for up to
        ``grace_seconds``, then cancel it (its open transaction rolls back; nothing is lost,
        the next pass does that work)."""
        self.stop()
        task = self._task
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace_seconds)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except Exception:
            # run() itself only fails on a bug in the loop; shutdown goes on regardless.
            logger.exception("worker ended with an error")
