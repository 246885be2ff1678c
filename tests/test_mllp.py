"""The MLLP listener over a real socket (issue 15): framing, an ACK per message in order, a
peer that disconnects mid-message (nothing stored, the listener carries on)."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

import pytest

from app.auth.scopes import Scope
from app.auth.service import revoke_client
from app.hl7v2.mllp import END, START, mllp_principal, serve_mllp
from tests.conftest import new_client
from tests.factories import test_nhs_number
from tests.kit.hl7 import ack_fields, adt


@asynccontextmanager
async def listener(database):
    key, client_id = await new_client(database, [Scope.notifications_write])
    server = await serve_mllp(database, key, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, client_id
    finally:
        server.close()
        await server.wait_closed()


async def read_frame(reader: asyncio.StreamReader) -> str:
    data = await asyncio.wait_for(reader.readuntil(END), 30)
    assert data.startswith(START)
    return data[1 : -len(END)].decode()


async def deaths_of(api, nhs_number: str) -> list[dict]:
    response = await api.get("/v1/deaths", params={"nhs_number": nhs_number})
    return response.json()["items"]


async def test_messages_in_frames_are_answered_in_order(database, api):
    numbers = [test_nhs_number() for _ in range(2)]
    async with listener(database) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        first, second = (adt(nhs_number=n) for n in numbers)
        # Two frames in one write, the second split across writes, with noise between.
        writer.write(START + first.encode() + END + b"\r\n" + START + second.encode()[:40])
        await writer.drain()
        writer.write(second.encode()[40:] + END)
        await writer.drain()
        acks = [ack_fields(await read_frame(reader)) for _ in range(2)]
        writer.close()
        await writer.wait_closed()
    assert [a["MSA"][1] for a in acks] == ["AA", "AA"]
    assert [a["MSA"][2] for a in acks] == [m.split("\r")[0].split("|")[9] for m in (first, second)]
    for number in numbers:
        assert len(await deaths_of(api, number)) == 1


async def test_a_malformed_message_is_answered_ar_and_the_connection_goes_on(database, api):
    number = test_nhs_number()
    async with listener(database) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(START + b"PID|1||garbage" + END)
        assert ack_fields(await read_frame(reader))["MSA"][1] == "AR"
        writer.write(START + adt(nhs_number=number).encode() + END)
        assert ack_fields(await read_frame(reader))["MSA"][1] == "AA"
        writer.close()
        await writer.wait_closed()
    assert len(await deaths_of(api, number)) == 1


async def test_a_peer_that_disconnects_mid_message_stores_nothing(database, api):
    lost, kept = test_nhs_number(), test_nhs_number()
    async with listener(database) as (port, _):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        message = adt(nhs_number=lost).encode()
        writer.write(START + message[: len(message) // 2])
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        # The listener still serves the next connection.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(START + adt(nhs_number=kept).encode() + END)
        assert ack_fields(await read_frame(reader))["MSA"][1] == "AA"
        writer.close()
        await writer.wait_closed()
    assert await deaths_of(api, lost) == []
    assert len(await deaths_of(api, kept)) == 1


async def test_the_listener_needs_a_key_with_the_scope(database):
    key, _ = await new_client(database, [Scope.deaths_read])
    with pytest.raises(ValueError):
        await mllp_principal(database, key)
    with pytest.raises(ValueError):
        await mllp_principal(database, "not-a-key")


async def test_a_revoked_client_is_no_longer_acknowledged(database, api):
    # The key is checked for every message: revoking the listener's client stops it at once
    # (before, the listener went on accepting as the revoked client until restarted).
    number = test_nhs_number()
    async with listener(database) as (port, client_id):
        async with database.transaction() as session:
            await revoke_client(session, client_id)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(START + adt(nhs_number=number).encode() + END)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 30) == b""  # closed, no ACK
        writer.close()
        await writer.wait_closed()
    assert await deaths_of(api, number) == []
    with pytest.raises(ValueError):
        await serve_mllp(database, "not-a-key", "127.0.0.1", 0)


async def test_a_visit_number_reused_for_another_patient_is_an_ae_over_mllp(database, api):
    first, second = test_nhs_number(), test_nhs_number()
    visit = f"V{uuid.uuid4().hex[:10].upper()}"
    async with listener(database) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for number in (first, second):
            writer.write(START + adt(nhs_number=number, visit=visit).encode() + END)
        await writer.drain()
        acks = [ack_fields(await read_frame(reader)) for _ in range(2)]
        writer.close()
        await writer.wait_closed()
    assert [a["MSA"][1] for a in acks] == ["AA", "AE"]
    assert acks[1]["ERR"][2] == "PV1^1^19"
    assert len(await deaths_of(api, first)) == 1
    assert await deaths_of(api, second) == []
