"""Page size bounds shared by every list."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

Limit = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size, 1 to {MAX_PAGE_SIZE}.")
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=512, description="The `next_cursor` of the previous page; omit for the first."
    ),
]
