"""Sending one attempt, and the retry schedule that follows a failed one.

Each POST is signed per Standard Webhooks, never follows a redirect, reads no body, and has
timeouts: to connect (``webhook_connect_timeout_seconds``), for each read
(``webhook_read_timeout_seconds``) and for the whole attempt (``webhook_timeout_seconds``;
the other two never exceed it). 2xx: delivered. 410: dead, and the endpoint is disabled. 429
with Retry-After: the next attempt then. Anything else: retried on SCHEDULE, with jitter,
counted from the attempt's end, then dead.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

from app.config import Settings
from app.webhooks.addresses import AddressRefused, CheckedTransport
from app.webhooks.signing import signed_headers
from app.webhooks.urls import is_allowed

# The wait after each failed attempt (Standard Webhooks' schedule after the first, immediate,
# attempt); the attempt after the last wait is the last one.
SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(SCHEDULE) + 1
logger = logging.getLogger("app.webhooks")

JITTER = 0.1  # each wait is stretched or shrunk by up to 10%
MAX_RETRY_AFTER = timedelta(hours=24)


class Message(Protocol):
    """What an attempt sends (a claimed delivery)."""

    @property
    def message_id(self) -> str: ...
    @property
    def delivery_id(self) -> uuid.UUID: ...
    @property
    def endpoint_id(self) -> uuid.UUID: ...
    @property
    def body(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def secrets(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Outcome:
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    status_code: int | None
    error_kind: str | None
    retry_after: timedelta | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _retry_after(value: str | None, at: datetime) -> timedelta | None:
    """Retry-After as seconds or an HTTP date (RFC 9110), bounded; None when absent or bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        if value.isdigit():
            wait = timedelta(seconds=int(value))
        else:
            wait = parsedate_to_datetime(value) - at
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(wait, timedelta(0)), MAX_RETRY_AFTER)


async def send(
    client: httpx.AsyncClient,
    claimed: Message,
    allowed: list[str],
    limit_seconds: float,
    at: datetime,
) -> Outcome:
    """POST one attempt. Never raises for what the receiver or the network does."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    status_code: int | None = None
    error_kind: str | None = None
    retry_after: timedelta | None = None
    if not is_allowed(claimed.url, allowed):
        error_kind = "not_allowed"
    else:
        headers = signed_headers(claimed.message_id, started, claimed.body, claimed.secrets)
        try:
            async with asyncio.timeout(limit_seconds):
                # stream(): the response body is never read (nor stored).
                async with client.stream(
                    "POST", claimed.url, content=claimed.body.encode(), headers=headers
                ) as response:
                    status_code = response.status_code
                    if status_code == 429:
                        retry_after = _retry_after(response.headers.get("retry-after"), at)
        except AddressRefused:
            error_kind = "internal_address"
            # Each refusal, so that an endpoint that can never be reached is seen at once.
            logger.warning(
                "webhook attempt refused: the host resolves to an internal address",
                extra={
                    "endpoint_id": str(claimed.endpoint_id),
                    "delivery_id": str(claimed.delivery_id),
                },
            )
        except TimeoutError:
            error_kind = "timeout"
        except httpx.TimeoutException:
            error_kind = "timeout"
        except (httpx.ConnectError, httpx.NetworkError):
            error_kind = "connect"
        except httpx.HTTPError:
            error_kind = "protocol"
        if status_code is not None and not 200 <= status_code < 300:
            error_kind = "gone" if status_code == 410 else "http_status"
    finished = datetime.now(UTC)
    return Outcome(
        started_at=started,
        finished_at=finished,
        duration_ms=round((time.perf_counter() - clock) * 1000),
        status_code=status_code,
        error_kind=error_kind,
        retry_after=retry_after,
    )


def next_wait(attempt: int, outcome: Outcome, rng: random.Random) -> timedelta | None:
    """How long until the next attempt after failed attempt number ``attempt``; None when
    there is none (out of retries, or 410)."""
    if outcome.status_code == 410 or attempt >= MAX_ATTEMPTS:
        return None
    if outcome.retry_after is not None:
        return outcome.retry_after
    base = SCHEDULE[attempt - 1]
    return base * (1 + rng.uniform(-JITTER, JITTER))


def http_client(timeout: float, settings: Settings | None = None) -> httpx.AsyncClient:
    """No redirects, no proxies or credentials from the environment, a timeout per phase
    (connect and each read, from ``settings``, never over ``timeout``; send() also bounds the
    whole attempt by ``timeout``), and connections only to addresses checked when they are
    made (app.webhooks.addresses)."""
    connect = read = timeout
    if settings is not None:
        connect = min(settings.webhook_connect_timeout_seconds, timeout)
        read = min(settings.webhook_read_timeout_seconds, timeout)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=connect, read=read),
        follow_redirects=False,
        trust_env=False,
        transport=CheckedTransport(),
    )
