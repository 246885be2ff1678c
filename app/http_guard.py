"""Slow clients: a deadline for the request line and headers, and a cap on their size.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) but has no deadline for a
request's headers: a connection that trickles one header byte at a time stays open for as long
as it likes (slowloris). These protocol classes (``lfd serve`` uses them) start a timer when a
connection opens and when a request's first byte arrives, and cancel it when the headers are
complete; a connection whose headers are late gets a 408 and is closed, one whose headers grow
past ``max_header_bytes`` a 431. The body's own deadline is the middleware's
(``body_read_timeout_seconds``, app.middleware). Both are cheap: one timer per request.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.config import get_settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is part of uvicorn[standard]; h11 is the fallback
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

_REFUSALS = {
    408: b"HTTP/1.1 408 Request Timeout\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}


class _HeaderGuard:
    """The shared part: the timer, the byte count and the refusal."""

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def _guard_init(self) -> None:
        settings = get_settings()
        self.header_timeout = settings.header_read_timeout_seconds
        self.max_header_bytes = settings.max_header_bytes
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_bytes = 0
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        self._refuse(408, b"The request headers did not arrive in time.")

    def _count(self, data: bytes) -> bool:
        """Count header bytes while the headers are awaited; False when over the cap."""
        if self._header_timer is None:
            return True
        self._header_bytes += len(data)
        if self._header_bytes > self.max_header_bytes:
            self._disarm()
            self._refuse(431, b"The request headers are too large.")
            return False
        return True

    def _refuse(self, status: int, message: bytes) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(
            _REFUSALS[status]
            + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: "
            + str(len(message)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + message
        )
        self.transport.close()


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_HeaderGuard, HttpToolsProtocol):
        """uvicorn's httptools protocol with the header deadline and size cap."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._guard_init()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._count(data):
                super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()


class GuardedH11Protocol(_HeaderGuard, H11Protocol):
    """uvicorn's h11 protocol with the header deadline (h11 caps the size itself:
    ``h11_max_incomplete_event_size``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard_init()
        self.max_header_bytes = 1 << 62  # h11's own limit applies

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()


def guarded_protocol() -> type[asyncio.Protocol]:
    """The protocol class `lfd serve` gives uvicorn: httptools when installed, else h11."""
    if HttpToolsProtocol is not None:
        return GuardedHttpToolsProtocol
    return GuardedH11Protocol
