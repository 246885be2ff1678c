from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import EventsReader
from app.auth.routing import AuthFirstRoute
from app.errors import BadRequest, Forbidden, Unauthorized, ValidationFailed, problem_responses
from app.events import feed
from app.events.schemas import EventPage, EventType, page_json
from app.events.types import EVENT_TYPES
from app.replica.reads import ReplicaReadsDep

router = APIRouter(route_class=AuthFirstRoute, prefix="/v1/events", tags=["events"])

FEED_MAX_PAGE = 1000
PREFIXES = {name.split(".", 1)[0] for name in EVENT_TYPES}


def parse_types(values: list[str] | None) -> list[str]:
    """`types=referral.claimed,review.submitted` or repeated; `referral.*` for all of one
    resource. Unknown names are a 422 naming each, so a typo never silently filters out
    everything."""
    wanted = [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
    errors = [
        {
            "pointer": f"/types/{index}",
            "code": "unknown_event_type",
            "detail": "not an event type; GET /v1/events/types lists them",
        }
        for index, name in enumerate(wanted)
        if name not in EVENT_TYPES and not (name.endswith(".*") and name[:-2] in PREFIXES)
    ]
    if errors:
        raise ValidationFailed("Unknown event types.", errors=errors)
    return sorted(set(wanted))


@router.get(
    "",
    response_model=EventPage,
    responses=problem_responses(Unauthorized, Forbidden, BadRequest, ValidationFailed),
)
async def read_events(
    principal: EventsReader,
    reads: ReplicaReadsDep,
    cursor: Annotated[
        str | None,
        Query(max_length=512, description="The `next_cursor` (or an event's `position`)."),
    ] = None,
    start: Annotated[
        Literal["beginning", "now"] | None,
        Query(
            description="Without a cursor: from the first event ever (the default), or from "
            "now (an empty page whose `next_cursor` sees only what happens next). Not with "
            "`cursor` (400: a cursor already says where to start)."
        ),
    ] = None,
    types: Annotated[
        list[str] | None,
        Query(description="Only these types (comma-separated or repeated; `referral.*`)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=FEED_MAX_PAGE)] = 100,
) -> Response:
    """The change feed: every committed event exactly once, in a stable order, even while many
    transactions commit concurrently and out of order (docs/change-feed.md).

    Poll with the last `next_cursor`. Events are thin: type, resource, changed field names,
    time. Read the resource at `resource.path` with your own scopes for its details.

    Scope: `events:read`.
    """
    if cursor is not None and start is not None:
        raise BadRequest(
            "Give either cursor (carry on from there) or start (where a new consumer begins), "
            "not both.",
            errors=[
                {
                    "pointer": "query:/start",
                    "code": "start_with_cursor",
                    "detail": "a cursor already says where to start",
                }
            ],
        )
    wanted = parse_types(types)
    after = feed.decode_position(cursor) if cursor is not None else None

    async def read_page(session: AsyncSession) -> feed.FeedPage:
        if after is None and start == "now":
            return feed.FeedPage([], await feed.head_position(session))
        return await feed.read_feed(session, after, limit, wanted or None)

    # On the read replica when it may (app.replica): a standby's snapshot has a horizon of its
    # own, below which every event has been replayed, so the feed stays exact there
    # (docs/replica.md).
    page = await reads.run(read_page)
    # Built and serialised directly (EventPage documents the shape): a catch-up reads pages of
    # a thousand events many times a second.
    next_cursor = feed.encode_position(page.next or after or feed.Position(0, 0))
    return Response(page_json(page.events, next_cursor), media_type="application/json")


@router.get(
    "/types",
    response_model=list[EventType],
    responses=problem_responses(Unauthorized, Forbidden),
)
async def event_types(principal: EventsReader) -> list[EventType]:
    """Every event type the service publishes, with what it means.

    Scope: `events:read`.
    """
    return [EventType(type=name, description=text) for name, text in EVENT_TYPES.items()]
