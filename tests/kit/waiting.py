"""Waiting for something to happen, not for time to pass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(happened: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
    """Poll ``happened`` until it is true. The deadline is not a timing under test: it only
    stops a test whose event never comes from hanging the run."""
    stop = time.monotonic() + deadline
    while not happened():
        assert time.monotonic() < stop, f"never happened: {what}"
        await asyncio.sleep(0.01)
