"""An MLLP listener (`lfd mllp --port 2575`) for interface engines that speak only MLLP: each
frame (0x0B, the message, 0x1C 0x0D) goes through the same code as POST /v1/hl7v2/adt and is
answered with its ACK in a frame. Messages on one connection are handled in order.

A peer that disconnects mid-message loses that message (nothing of it is stored; it never
had an ACK, so the engine resends it). Bytes outside a frame are dropped; a frame larger than
LFD_MAX_BODY_BYTES is answered AR and the connection closed; a connection idle for
``idle_seconds`` is closed.

MLLP carries no credentials: the listener acts as one API client, whose key it reads from
the environment (LFD_MLLP_API_KEY), never the command line; the client needs
`notifications:write`. The key is checked again for every message, as an HTTP request's is:
once the client is revoked, expires, loses the scope or its key is rotated past its grace
period, messages are no longer acknowledged (the connection is closed without an ACK, so the
engine keeps them to resend) and the listener logs an error. Put the listener on the interface
engine's private network only."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.auth.principal import Principal
from app.auth.scopes import Scope
from app.auth.service import find_active_client
from app.db import Database
from app.hl7v2.ack import Sender, ack
from app.hl7v2.adt import Hl7Problem
from app.hl7v2.service import receive
from app.kit.cursor import cursor_key
from app.kit.etag import derive_etag_key, use_etag_key
from app.reach import reach_of
from app.scoping import scoped

START, END = b"\x0b", b"\x1c\x0d"
logger = logging.getLogger("lfd.mllp")


async def mllp_principal(database: Database, key: str) -> Principal:
    async with database.autocommit() as session:
        client = await find_active_client(session, key)
    if client is None or client.pseudonymised:
        raise ValueError("LFD_MLLP_API_KEY is not the key of an active, non-pseudonymised client")
    principal = Principal.of_client(client)
    if not principal.has(Scope.notifications_write):
        raise ValueError("the MLLP client needs the scope notifications:write")
    return principal


def frame(text: str) -> bytes:
    return START + text.encode("utf-8") + END


class MllpHandler:
    def __init__(
        self,
        database: Database,
        key: str,
        etag_key: bytes,
        *,
        idle_seconds: float = 300.0,
    ) -> None:
        self.database = database
        self.etag_key = etag_key
        self.key = key
        self.max_bytes = database.settings.max_body_bytes
        self.idle_seconds = idle_seconds

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        # Each connection is a task of its own: the answers' tags need the key in its context.
        use_etag_key(self.etag_key)
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), self.idle_seconds)
                except TimeoutError:
                    break
                if not chunk:
                    if START in buffer:
                        logger.info("mllp peer closed mid-message", extra={"bytes": len(buffer)})
                    break
                buffer += chunk
                buffer, keep_open = await self._frames(buffer, writer)
                if not keep_open:
                    break
        except ConnectionError:
            logger.info("mllp connection lost")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _frames(self, buffer: bytes, writer: asyncio.StreamWriter) -> tuple[bytes, bool]:
        """Answer every whole frame in the buffer; what is left, and whether to go on."""
        while True:
            start = buffer.find(START)
            if start < 0:
                return b"", True
            end = buffer.find(END, start)
            if end < 0:
                if len(buffer) - start > self.max_bytes:
                    problem = Hl7Problem("AR", "MSH", "the message is too large")
                    writer.write(frame(ack(Sender(), problem)))
                    await writer.drain()
                    return b"", False
                return buffer[start:], True
            payload = buffer[start + 1 : end]
            buffer = buffer[end + len(END) :]
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                text = payload.decode("latin-1")
            try:
                principal = await mllp_principal(self.database, self.key)
            except ValueError:
                logger.error("mllp client no longer authorised; message not acknowledged")
                return b"", False
            # Each message sees what its client's organisation may see (app.scoping).
            async with self.database.autocommit() as session:
                scope = await reach_of(session, principal.organisation_id, members=False)
            with scoped(scope):
                answer = await receive(self.database, principal, text)
            writer.write(frame(answer.ack))
            await writer.drain()


async def serve_mllp(database: Database, key: str, host: str, port: int) -> asyncio.Server:
    """Listen as the client of ``key`` (ValueError at once when it may not notify deaths)."""
    await mllp_principal(database, key)
    async with database.autocommit() as session:
        etag_key = derive_etag_key(await cursor_key(session))
    return await asyncio.start_server(MllpHandler(database, key, etag_key), host, port)
