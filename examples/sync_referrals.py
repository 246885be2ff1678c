"""Mirror the service's referrals into a local SQLite table, and receive signed webhooks.

Two modes:

    # Follow the change feed (GET /v1/events) from a stored cursor and copy every referral that
    # changed (GET /v1/referrals/{id}, with If-None-Match) into referrals.db. --once: catch
    # up and exit; otherwise poll every --interval seconds.
    LFD_API_KEY=lfd_... python examples/sync_referrals.py follow \
        --base-url https://lfd.example.nhs.uk --db referrals.db

    # Receive webhooks: verify each signature (Standard Webhooks) and record the event once
    # (by webhook-id); with --base-url, each referral event also triggers a feed catch-up, so
    # the mirror is fresh within a second of a change without polling.
    LFD_WEBHOOK_SECRET=whsec_... LFD_API_KEY=lfd_... python examples/sync_referrals.py \
        serve-webhooks --port 8081 --db referrals.db --base-url https://lfd.example.nhs.uk

The API key needs `events:read` and `referrals:read`. Only httpx and standardwebhooks are needed
beyond the standard library.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS referrals (
    id TEXT PRIMARY KEY,
    death_id TEXT NOT NULL,
    route TEXT NOT NULL,
    status TEXT NOT NULL,
    specialty TEXT,
    due_at TEXT,
    version INTEGER NOT NULL,
    etag TEXT,
    document TEXT NOT NULL,
    synced_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    resource_type TEXT,
    resource_id TEXT,
    received_at TEXT NOT NULL
);
"""
PAGE = 200


def open_db(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    return db


def stored_cursor(db: sqlite3.Connection) -> str | None:
    row = db.execute("SELECT value FROM sync_state WHERE name = 'events_cursor'").fetchone()
    return row[0] if row else None


def store_cursor(db: sqlite3.Connection, cursor: str) -> None:
    db.execute(
        "INSERT INTO sync_state (name, value) VALUES ('events_cursor', ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (cursor,),
    )


async def start_from_now(api: httpx.AsyncClient, db: sqlite3.Connection) -> None:
    """Skip the history: the next sync sees only what happens from now on."""
    response = await api.get("/v1/events", params={"start": "now"})
    response.raise_for_status()
    store_cursor(db, response.json()["next_cursor"])


async def fetch_referral(api: httpx.AsyncClient, db: sqlite3.Connection, referral_id: str) -> str:
    """Copy one referral; 'unchanged' when the stored ETag is still current (a 304)."""
    row = db.execute("SELECT etag FROM referrals WHERE id = ?", (referral_id,)).fetchone()
    headers = {"If-None-Match": row[0]} if row and row[0] else {}
    response = await api.get(f"/v1/referrals/{referral_id}", headers=headers)
    if response.status_code == 304:
        return "unchanged"
    if response.status_code == 404:
        db.execute("DELETE FROM referrals WHERE id = ?", (referral_id,))
        return "gone"
    response.raise_for_status()
    referral = response.json()
    db.execute(
        "INSERT INTO referrals (id, death_id, route, status, specialty, due_at, version, etag,"
        " document, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET death_id = excluded.death_id, route = excluded.route,"
        " status = excluded.status, specialty = excluded.specialty, due_at = excluded.due_at,"
        " version = excluded.version, etag = excluded.etag, document = excluded.document,"
        " synced_at = excluded.synced_at",
        (
            referral["id"],
            referral["death_id"],
            referral["route"],
            referral["status"],
            referral.get("specialty"),
            referral.get("due_at"),
            referral["version"],
            response.headers.get("ETag"),
            json.dumps(referral),
            datetime.now(UTC).isoformat(),
        ),
    )
    return "copied"


async def sync_once(api: httpx.AsyncClient, db: sqlite3.Connection) -> int:
    """Read the feed from the stored cursor to its end; copy each referral named once per
    page; store the cursor after each page (so a crash repeats at most one page, and copying a
    referral again is harmless). Returns how many referrals were copied."""
    copied = 0
    while True:
        params: dict[str, Any] = {"types": "referral.*", "limit": PAGE}
        cursor = stored_cursor(db)
        if cursor is not None:
            params["cursor"] = cursor
        response = await api.get("/v1/events", params=params)
        response.raise_for_status()
        page = response.json()
        referral_ids = list(dict.fromkeys(event["resource"]["id"] for event in page["items"]))
        for referral_id in referral_ids:
            copied += await fetch_referral(api, db, referral_id) == "copied"
        store_cursor(db, page["next_cursor"])
        if len(page["items"]) < PAGE:
            return copied


def record_webhook(
    db: sqlite3.Connection, secret: str, body: bytes, headers: Mapping[str, str]
) -> tuple[int, dict[str, Any] | None]:
    """Verify and record one webhook: (HTTP status to answer, the message if it is new).
    A bad signature or an old timestamp is a 400; a repeat of a recorded webhook-id a 200."""
    try:
        message: dict[str, Any] = Webhook(secret).verify(body, dict(headers))
    except WebhookVerificationError:
        return 400, None
    data = message.get("data", {})
    inserted = db.execute(
        "INSERT INTO webhook_events (id, type, resource_type, resource_id, received_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (
            headers.get("webhook-id") or message["id"],
            message["type"],
            data.get("resource_type"),
            data.get("resource_id"),
            datetime.now(UTC).isoformat(),
        ),
    ).rowcount
    return 200, message if inserted else None


def api_client(base_url: str, api_key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    )


async def follow(args: argparse.Namespace) -> None:
    db = open_db(args.db)
    async with api_client(args.base_url, args.api_key) as api:
        if args.from_now and stored_cursor(db) is None:
            await start_from_now(api, db)
        while True:
            copied = await sync_once(api, db)
            print(f"{datetime.now(UTC):%H:%M:%S} copied {copied} referral(s)", flush=True)
            if args.once:
                return
            await asyncio.sleep(args.interval)


def serve_webhooks(args: argparse.Namespace) -> None:
    db = open_db(args.db)
    secret = args.secret

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, message = record_webhook(db, secret, body, headers)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
            referral = message and message.get("data", {}).get("resource_type") == "referral"
            if referral and args.base_url:
                # The webhook is a doorbell: the feed says what changed, in order.
                asyncio.run(catch_up(args.base_url, args.api_key, args.db))

    # One request at a time: the SQLite connection is not shared between threads.
    server = HTTPServer((args.host, args.port), Handler)
    print(f"listening on http://{args.host}:{args.port}/", flush=True)
    server.serve_forever()


async def catch_up(base_url: str, api_key: str, path: str) -> None:
    async with api_client(base_url, api_key) as api:
        await sync_once(api, open_db(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["follow", "serve-webhooks"])
    parser.add_argument("--base-url", default=os.environ.get("LFD_BASE_URL"))
    parser.add_argument(
        "--api-key",
        default=os.environ.get("LFD_API_KEY"),
        help="default: $LFD_API_KEY (events:read and referrals:read)",
    )
    parser.add_argument("--db", default="referrals.db", help="the local SQLite file")
    parser.add_argument("--once", action="store_true", help="follow: catch up and exit")
    parser.add_argument(
        "--from-now",
        action="store_true",
        help="follow, first run: skip the history (default: mirror it from the beginning)",
    )
    parser.add_argument("--interval", type=float, default=5.0, help="follow: seconds between polls")
    parser.add_argument(
        "--secret",
        default=os.environ.get("LFD_WEBHOOK_SECRET"),
        help="default: $LFD_WEBHOOK_SECRET",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    if args.mode == "follow":
        if not args.base_url or not args.api_key:
            parser.error("follow needs --base-url and an API key (--api-key or $LFD_API_KEY)")
        asyncio.run(follow(args))
    else:
        if not args.secret:
            parser.error("serve-webhooks needs the endpoint's secret ($LFD_WEBHOOK_SECRET)")
        if args.base_url and not args.api_key:
            parser.error("--base-url needs an API key too")
        serve_webhooks(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
