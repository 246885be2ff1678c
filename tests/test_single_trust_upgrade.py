"""An existing single-trust database moves forward (issue 16, engineering requirements;
acceptance review): what it held before organisations (a death with its referral and review,
an action plan, its clients) belongs to the default organisation after the migrations, its
clients go on seeing all of it, and `lfd organisations adopt` names that organisation, after
which a client made for its ODS code sees the same."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.auth.scopes import Scope
from app.auth.service import create_client
from app.cli import main
from app.config import Settings, get_settings
from app.db import Database
from app.main import create_app
from app.migrate import downgrade, upgrade
from tests.factories import idem, record_unexpected
from tests.kit.reviews import brief_sjr


async def _client(settings: Settings, organisation: str | None = None) -> str:
    database = Database(settings)
    try:
        async with database.transaction() as session:
            organisation_id = None
            if organisation is not None:
                from sqlalchemy import select

                from app.models import Organisation

                organisation_id = await session.scalar(
                    select(Organisation.id).where(Organisation.ods_code == organisation)
                )
            made = await create_client(
                session, "upgrade check", [Scope.admin], organisation_id=organisation_id
            )
    finally:
        await database.dispose()
    return made.key


class _Api:
    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http, self.headers = http, {"Authorization": f"Bearer {key}"}

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)


async def test_a_single_trust_database_moves_forward_and_is_adopted(
    scratch_url: str, base_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = base_settings.model_copy(update={"database_url": scratch_url})
    await asyncio.to_thread(upgrade, scratch_url, "head")
    key = await _client(settings)
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        api = _Api(http, key)
        recorded = await record_unexpected(api)
        death = recorded["death"]["id"]
        (referral,) = recorded["referrals"]
        review = await api.post(
            f"/v1/referrals/{referral['id']}/review",
            json={"review": brief_sjr("Dr Before", 3, "Recorded before organisations.")},
        )
        assert review.status_code == 201, review.text
        plan = await api.post("/v1/action-plans", json={"title": "Before"}, headers=idem())
        assert plan.status_code == 201, plan.text
    await app.state.database.dispose()

    # Back to the schema before organisations, and forward again, data and all.
    await asyncio.to_thread(downgrade, scratch_url, "0018")
    await asyncio.to_thread(upgrade, scratch_url, "head")

    def adopt() -> Any:
        monkeypatch.setenv("LFD_DATABASE_URL", scratch_url)
        get_settings.cache_clear()
        try:
            return main(["organisations", "adopt", "--ods-code", "RWE", "--name", "UHL"])
        finally:
            get_settings.cache_clear()

    for adopted in (False, True):
        if adopted:
            assert await asyncio.to_thread(adopt) == 0
        keys = [key] + ([await _client(settings, "RWE")] if adopted else [])
        app = create_app(settings)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http:
            for each in keys:
                api = _Api(http, each)
                seen = await api.get(f"/v1/deaths/{death}")
                assert seen.status_code == 200, seen.text
                assert seen.json()["organisation"]["ods_code"] == ("RWE" if adopted else None)
                assert [r["id"] for r in seen.json()["reviews"]] == [review.json()["id"]]
                plans = await api.get("/v1/action-plans")
                assert [p["id"] for p in plans.json()["items"]] == [plan.json()["id"]]
        await app.state.database.dispose()
