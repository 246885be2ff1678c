"""Which months of events the change feed and the writers may skip (PostgreSQL; issue 19).

`outbox_events` is partitioned by month of `occurred_at`, but the feed reads in order of
position `(txid, seq)`, which a month does not bound: without help, every page would look into
every month's partition. A month is **closed** once it has been over for a while and no
transaction that could still write into it is running (`lfd_close_event_months`, migration
0025, run by the background runner): its highest position is recorded in
`outbox_closed_months`, and a CHECK on its partition refuses any later row above it. So

- a feed page after position (T, s) needs no closed month whose highest txid is below T: it
  skips the closed months from the first one up to the earliest closed month whose highest
  txid reaches T (all of them before it lie wholly behind the cursor);
- a writer's look-up of a resource's previous event (app.events.service.emit) skips every
  closed month and takes the highest txid of all of them instead, which no event in them
  exceeds.

The list is read once a few minutes per process. A list that is out of date is only cautious:
a month closed since is not skipped yet; a month dropped since (`lfd retention`) has no rows.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ClosedEventMonth, OutboxEvent
from app.partitions import month_start, next_month

REFRESH_SECONDS = 300.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ClosedMonths:
    """The closed months, oldest first, with each one's highest txid."""

    months: tuple[date, ...] = ()
    max_txids: tuple[int, ...] = ()

    @property
    def highest_txid(self) -> int:
        return max(self.max_txids, default=0)

    def _skippable(self, before: date | None) -> ColumnElement[bool] | None:
        """Rows outside the closed months from the first up to ``before`` (exclusive), as a
        condition PostgreSQL prunes those months' partitions by; None when there are none."""
        if not self.months or before is None or before <= self.months[0]:
            return None
        return or_(
            OutboxEvent.occurred_at < month_start(self.months[0]),
            OutboxEvent.occurred_at >= month_start(before),
        )

    def after(self, txid: int) -> ColumnElement[bool] | None:
        """For a feed page after position txid: skip the closed months whose events all lie
        before it. The closed months are consecutive (each pass closes every month old enough,
        oldest first), so the first whose highest txid reaches ``txid`` bounds the skip."""
        reaching = next(
            (month for month, top in zip(self.months, self.max_txids, strict=True) if top >= txid),
            None,
        )
        return self._skippable(reaching or self._end)

    def open_bounds(self) -> tuple[datetime, datetime]:
        """The closed months as a range [from, until) of occurred_at, for a statement built
        once that skips them by bound parameters (app.events.service); an empty range when
        none is closed."""
        if not self.months or self._end is None:
            return _EPOCH, _EPOCH
        return month_start(self.months[0]), month_start(self._end)

    def open_months(self) -> ColumnElement[bool] | None:
        """Skip every closed month (for a look-up that also takes ``highest_txid``)."""
        return self._skippable(self._end)

    @property
    def _end(self) -> date | None:
        return next_month(self.months[-1]) if self.months else None

    def covers(self, moment: datetime) -> bool:
        """Whether ``moment`` falls in a closed month (a new event there would be refused)."""
        month = moment.date().replace(day=1)
        index = bisect_left(self.months, month)
        return index < len(self.months) and self.months[index] == month


NONE = ClosedMonths()
_cache: dict[str, tuple[float, ClosedMonths]] = {}


async def closed_months(session: AsyncSession) -> ClosedMonths:
    """The closed months (none on SQLite), cached per database for REFRESH_SECONDS."""
    if session.get_bind().dialect.name != "postgresql":
        return NONE
    key = session.get_bind().engine.url.render_as_string(hide_password=True)
    cached = _cache.get(key)
    moment = time.monotonic()
    if cached is not None and moment - cached[0] < REFRESH_SECONDS:
        return cached[1]
    rows = (
        await session.execute(
            select(ClosedEventMonth.month, ClosedEventMonth.max_txid).order_by(
                ClosedEventMonth.month
            )
        )
    ).all()
    # Only the first unbroken run of months is used: a skip spans consecutive months.
    run = list(rows[:1])
    for row in rows[1:]:
        if row[0] != next_month(run[-1][0]):
            break
        run.append(row)
    found = ClosedMonths(tuple(row[0] for row in run), tuple(int(row[1]) for row in run))
    _cache[key] = (moment, found)
    return found


def forget_closed_months() -> None:
    """Drop the cached lists (after closing or dropping months in this process; tests)."""
    _cache.clear()
