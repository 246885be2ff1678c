"""Random (version 4) UUIDs for bulk work, at a third of ``uuid.uuid4()``'s cost.

``uuid.uuid4()`` asks the kernel for 16 bytes and builds the UUID through its general
constructor: about 3 µs, six or more times per imported death. Here the kernel's randomness
(the same ``os.urandom``) is drawn 8 KiB at a time per thread and the UUID is built from its
integer directly. The values are as random as ``uuid4()``'s; a forked child drops what its
parent had drawn, so that two processes never hand out the same ids."""

from __future__ import annotations

import os
import threading
import uuid

_VERSION_BITS = (0xF000 << 64) | (0xC000 << 48)
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant
_KEEP = ((1 << 128) - 1) & ~_VERSION_BITS
_DRAW = 512  # ids per draw from the kernel

_local = threading.local()
_new = object.__new__
_set = object.__setattr__
_from_bytes = int.from_bytes
_UNKNOWN = uuid.SafeUUID.unknown


def _forget() -> None:
    _local.__dict__.clear()


os.register_at_fork(after_in_child=_forget)


def _draw() -> list[int]:
    data = os.urandom(16 * _DRAW)
    return [
        (_from_bytes(data[i : i + 16], "big") & _KEEP) | _VERSION_4 for i in range(0, len(data), 16)
    ]


def uuid4() -> uuid.UUID:
    """A random UUID (version 4), equal in every way to one ``uuid.uuid4()`` makes."""
    pool: list[int] | None = getattr(_local, "pool", None)
    if not pool:
        pool = _local.pool = _draw()
    value = _new(uuid.UUID)
    _set(value, "int", pool.pop())
    _set(value, "is_safe", _UNKNOWN)
    return value
