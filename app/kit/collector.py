"""The cyclic garbage collector during bulk work (a history import: issue 14).

A bulk import makes millions of short-lived dicts, lists, ids and models. CPython's collector
runs a young-generation pass every 700 allocations net and, every hundred of those, a full pass
over every object the process holds (SQLAlchemy's and pydantic's own, the loaded modules'):
in a 10,000-death import that was about 80 µs of CPU per death, a fifth of the importer's
time, for almost nothing collected (a batch's rows are freed by reference counting once it is
written). Inside ``bulk_collection()`` what the process held before is in the permanent
generation (``gc.freeze``), which no pass walks, and the automatic passes are off: the bulk
work calls ``between_batches()`` after each batch instead, which runs a pass over what was made
since the last one every ``EVERY`` batches, or sooner once that has grown past ``YOUNG_LIMIT``
objects, net (a batch's rows are freed by reference counting, so what grows is the cyclic
garbage the import, or the requests the same process serves, leave; a pass while the next
batch is being prepared walks that batch too, about 0.1 s for 2,000 deaths, so it is not run
after every batch). Both are put back when the last bulk work in the process ends."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def bulk_collection() -> Iterator[None]:
    """Collect between batches only while the block runs (nestable, and safe with several
    imports in one process: the collector is restored when the outermost block ends)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.freeze()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()
                if _was_enabled:
                    gc.enable()


YOUNG_LIMIT = 200_000
EVERY = 16
_batches = 0


def between_batches() -> None:
    """Collect the young generations every few batches, or once enough has piled up."""
    global _batches
    _batches += 1
    if _batches % EVERY == 0 or gc.get_count()[0] >= YOUNG_LIMIT:
        gc.collect(1)
