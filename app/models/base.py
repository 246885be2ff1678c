"""The declarative base: naming convention, UUID keys, timezone-aware timestamps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKeyConstraint, MetaData, TypeDecorator, Uuid
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class _HexList(TypeDecorator[list[uuid.UUID]]):
    """A list of UUIDs as a JSON array of their hex, the form SQLite's Uuid columns hold, so
    that ``json_each(column).value`` compares with them directly (app.kit.id_lists)."""

    impl = JSON
    cache_ok = True

    def process_bind_param(
        self, value: list[uuid.UUID] | None, dialect: Dialect
    ) -> list[str] | None:
        return None if value is None else [item.hex for item in value]

    def process_result_value(self, value: Any, dialect: Dialect) -> list[uuid.UUID] | None:
        return None if value is None else [uuid.UUID(item) for item in value]


# A list of ids (an audit row's patients): uuid[] on PostgreSQL, where a GIN index answers
# "which rows name this id" (`@>`); a JSON array on SQLite. Query it through app.kit.id_lists,
# which says the same thing in each dialect.
UuidList = ARRAY(Uuid()).with_variant(_HexList(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime, uuid.UUID: Uuid}


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def owned_with(parent: str, key: str) -> ForeignKeyConstraint:
    """A row that belongs to its parent's organisation (issue 16): ``organisation_id`` is a copy
    of the parent's, so that the scoping criteria and the row-level security policies test a
    column of the row itself instead of probing its parent. ``(key, organisation_id)``
    references the parent's ``(id, organisation_id)``: the database refuses a copy that
    disagrees, and the copy follows the parent when it moves (``lfd organisations adopt``)."""
    return ForeignKeyConstraint(
        [key, "organisation_id"], [f"{parent}.id", f"{parent}.organisation_id"], onupdate="CASCADE"
    )
