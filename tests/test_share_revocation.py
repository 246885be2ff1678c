"""A share's end closes the death to its recipient at once (issue 16, item 4; acceptance
review), in another process as soon as the revocation's NOTIFY arrives: revoked by the
recording organisation, or run out at its `ends_at`, whatever the recipient's process has
cached of its reach (app.auth.cache: the reach is kept between requests while the LISTEN
connection is up, on PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.db import Database
from app.models import Organisation
from tests.conftest import ON_POSTGRES, Api, MakeApi, MakeApp
from tests.factories import idem, record_unexpected


async def _organisation(database: Database, name: str, kind: str) -> uuid.UUID:
    async with database.transaction() as session:
        made = Organisation(id=uuid.uuid4(), name=name, kind=kind, aliases=[], settings={})
        session.add(made)
    return made.id


async def _live(app: Any) -> None:
    """Wait for the app's LISTEN connection, so that its reach cache is in use (PostgreSQL)."""
    listener = app.state.database.listener
    if listener is not None:
        listener.ensure()
        assert await listener.wait_live(5.0)


async def _sees(api: Api, death_id: str) -> bool:
    response = await api.get(f"/v1/deaths/{death_id}")
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


async def _refused_within(api: Api, death_id: str, seconds: float) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while await _sees(api, death_id):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _queue(api: Api, death_id: str) -> list[str]:
    response = await api.get("/v1/referrals", params={"route": "sjr", "limit": 200})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"] if item["death_id"] == death_id]


async def test_a_revoked_share_is_closed_to_the_recipient_at_once(
    database: Database, app_factory: MakeApp, make_api: MakeApi
) -> None:
    """The owner revokes in one process; the recipient, whose process has the share's reach
    cached, is refused as soon as the revocation's NOTIFY reaches it (another process, as in a
    deployment of several workers): within milliseconds, allowed a second here on a loaded
    machine. The revoking process itself drops it at commit (app.auth.cache)."""
    owner_app, owner_http = await app_factory()
    recipient_app, recipient_http = await app_factory()
    for app in (owner_app, recipient_app):
        await _live(app)
    trust = await _organisation(database, "Revoking trust", "trust")
    practice = await _organisation(database, "Revoked practice", "gp_practice")
    owner = await make_api(organisation_id=trust, client=owner_http)
    recipient = await make_api(organisation_id=practice, client=recipient_http)
    recorded = await record_unexpected(owner)
    death = recorded["death"]["id"]
    (referral,) = recorded["referrals"]
    made = await owner.post(
        f"/v1/deaths/{death}/shares",
        json={"organisation": str(practice), "purpose": "review"},
        headers=idem(),
    )
    assert made.status_code == 201, made.text
    # Warm the recipient's cache: the reach with the share, read again and again.
    for _ in range(3):
        assert await _sees(recipient, death)
    assert await _queue(recipient, death) == [referral["id"]]

    revoked = await owner.post(f"/v1/deaths/{death}/shares/{made.json()['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert await _refused_within(recipient, death, seconds=1.0)
    assert await _queue(recipient, death) == []
    referral_read = await recipient.get(f"/v1/referrals/{referral['id']}")
    assert referral_read.status_code == 404, referral_read.text
    review = await recipient.post(
        f"/v1/referrals/{referral['id']}/review", json={"review": {}, "submit": False}
    )
    assert review.status_code in (404, 422), review.text
    listed = await recipient.get("/v1/deaths", params={"limit": 200})
    assert death not in [item["id"] for item in listed.json()["items"]]


async def test_a_share_that_runs_out_closes_without_any_write(
    database: Database, app_factory: MakeApp, make_api: MakeApi
) -> None:
    """Nothing is written when a share's period ends: the cached reach ends with it."""
    app, http = await app_factory()
    await _live(app)
    trust = await _organisation(database, "Lapsing trust", "trust")
    practice = await _organisation(database, "Lapsed practice", "gp_practice")
    owner = await make_api(organisation_id=trust, client=http)
    recipient = await make_api(organisation_id=practice, client=http)
    death = (await record_unexpected(owner))["death"]["id"]
    ends = datetime.now(UTC) + timedelta(seconds=3)
    made = await owner.post(
        f"/v1/deaths/{death}/shares",
        json={"organisation": str(practice), "purpose": "review", "ends_at": ends.isoformat()},
        headers=idem(),
    )
    assert made.status_code == 201, made.text
    assert await _sees(recipient, death)
    await asyncio.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.2)
    assert not await _sees(recipient, death)
    assert await _queue(recipient, death) == []


@pytest.mark.skipif(not ON_POSTGRES, reason="the reach cache is PostgreSQL's (LISTEN)")
async def test_the_recipients_cache_holds_the_share_while_it_is_open(
    database: Database, app_factory: MakeApp, make_api: MakeApi
) -> None:
    """The check above is a check of the cache: the recipient's reach is served from memory
    while the share is open (or the revocation test proves nothing about the cache)."""
    app, http = await app_factory()
    await _live(app)
    trust = await _organisation(database, "Caching trust", "trust")
    practice = await _organisation(database, "Caching practice", "gp_practice")
    owner = await make_api(organisation_id=trust, client=http)
    recipient = await make_api(organisation_id=practice, client=http)
    death = (await record_unexpected(owner))["death"]["id"]
    made = await owner.post(
        f"/v1/deaths/{death}/shares",
        json={"organisation": str(practice), "purpose": "review"},
        headers=idem(),
    )
    assert made.status_code == 201, made.text
    assert await _sees(recipient, death)
    assert app.state.auth_cache._reach  # the reach is cached
