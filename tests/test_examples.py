"""The sync-client example (examples/sync_referrals.py) runs against the real app, so it cannot
rot: it follows the change feed, mirrors referrals into SQLite, skips unchanged ones with
If-None-Match, and verifies and records webhooks."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sqlite3
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from app.auth.scopes import Scope
from app.webhooks.signing import new_secret
from tests.conftest import Api, MakeApi
from tests.factories import idem, screening_body

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sync_referrals.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_referrals_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example = load_example()


def mirrored(db: sqlite3.Connection, referral_id: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT status, route, document FROM referrals WHERE id = ?", (referral_id,)
    ).fetchone()
    if row is None:
        return None
    return {"status": row[0], "route": row[1], "document": json.loads(row[2])}


async def sync_until(
    api: httpx.AsyncClient, db: sqlite3.Connection, referral_id: str, status: str
) -> None:
    """Catch up until the mirror shows the referral in ``status``. On PostgreSQL the feed
    hands out an event once every older transaction on the server has finished, so the change
    may need another poll or two."""
    for _ in range(3000):
        await example.sync_once(api, db)
        row = mirrored(db, referral_id)
        if row is not None and row["status"] == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the mirror never showed {status}")


async def test_follow_mirrors_referrals_from_the_feed(
    app_and_http: tuple[Any, httpx.AsyncClient], make_api: MakeApi, tmp_path: Path
) -> None:
    app, _ = app_and_http
    # deaths:read: a write answers in full only a client that may read what it wrote.
    writer: Api = await make_api(Scope.screenings_write, Scope.deaths_read, Scope.referrals_claim)
    key = (await make_api(Scope.events_read, Scope.referrals_read)).key
    db = example.open_db(str(tmp_path / "mirror.db"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    ) as api:
        await example.start_from_now(api, db)
        posted = await writer.post(
            "/v1/screenings",
            json=screening_body(screening={"death_expected": False}),
            headers=idem(),
        )
        assert posted.status_code == 201, posted.text
        [referral] = posted.json()["referrals"]
        await sync_until(api, db, referral["id"], "ready")
        row = mirrored(db, referral["id"])
        assert row is not None and row["route"] == "sjr"
        assert row["document"]["death_id"] == posted.json()["death"]["id"]
        # Unchanged: the stored ETag gets a 304 and nothing is copied.
        assert await example.fetch_referral(api, db, referral["id"]) == "unchanged"

        cancelled = await writer.post(
            f"/v1/referrals/{referral['id']}/cancel", json={"reason": "duplicate referral"}
        )
        assert cancelled.status_code == 200, cancelled.text
        await sync_until(api, db, referral["id"], "cancelled")
        cursor = example.stored_cursor(db)
        assert cursor is not None
        # A catch-up with nothing new copies nothing and keeps a usable cursor.
        assert await example.sync_once(api, db) == 0
        assert example.stored_cursor(db) is not None


def signed(secret: str, message: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(message)
    at = datetime.now(UTC)
    return body.encode(), {
        "webhook-id": message["id"],
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message["id"], at, body),
    }


def test_webhooks_are_verified_and_recorded_once(tmp_path: Path) -> None:
    db = example.open_db(str(tmp_path / "hooks.db"))
    secret = new_secret()
    message = {
        "id": str(uuid.uuid4()),
        "type": "referral.claimed",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"resource_type": "referral", "resource_id": str(uuid.uuid4())},
    }
    body, headers = signed(secret, message)
    status, recorded = example.record_webhook(db, secret, body, headers)
    assert status == 200 and recorded == message
    assert example.record_webhook(db, secret, body, headers) == (200, None)  # a redelivery
    assert example.record_webhook(db, secret, body.replace(b"claimed", b"created"), headers) == (
        400,
        None,
    )
    assert example.record_webhook(db, new_secret(), body, headers) == (400, None)
    rows = db.execute("SELECT id, type, resource_type FROM webhook_events").fetchall()
    assert rows == [(message["id"], "referral.claimed", "referral")]


def test_the_command_line_refuses_missing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LFD_API_KEY", "LFD_BASE_URL", "LFD_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as follow:
        example.main(["follow", "--base-url", "http://127.0.0.1:1"])
    assert follow.value.code == 2
    with pytest.raises(SystemExit) as serve:
        example.main(["serve-webhooks"])
    assert serve.value.code == 2
