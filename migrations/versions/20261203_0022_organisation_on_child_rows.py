"""The death's organisation on the rows the reports and the queues read (issue 16,
performance).

Migration 0021's policies let a referral, a review, a screening, a finding, a route override,
a judgement, a phase rating or a problem in care be seen when its death (or review) is, by one
primary-key probe of the parent per row. A queue page probes 50 deaths; a regional report
probed ~8,700 parents (care quality cost twice the CPU of the same report run past the
policies). Here those eight tables carry the organisation themselves:

1. ``organisation_id`` on screenings, route_overrides, referral_judgements, referrals,
   reviews and findings (the death's), and on review_phase_ratings and review_problems (the
   review's), filled from the parent.
2. ``(death_id, organisation_id)`` references ``deaths (id, organisation_id)`` (and
   ``(review_id, organisation_id)`` references ``reviews (id, organisation_id)``) ON UPDATE
   CASCADE, in place of the plain foreign key of ``death_id`` (``review_id``), under the same
   constraint name: the database refuses a copy that disagrees with its parent, and the copy
   follows the parent when it moves (``lfd organisations adopt``). Hence the unique
   constraints on ``deaths (id, organisation_id)`` and ``reviews (id, organisation_id)``.
3. The policies test the row's own column: ``organisation_id = ANY (scope) OR death_id = ANY
   (shared deaths)``; a phase rating or a problem, which names no death, probes its review
   only when the scope has shared deaths at all.
4. The reports' covering indexes of screenings, reviews and phase ratings include the column.

SQLite has no policies; the query layer (app.scoping) tests the same columns.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEATH_KEYED = (
    "screenings",
    "route_overrides",
    "referral_judgements",
    "referrals",
    "reviews",
    "findings",
)
REVIEW_KEYED = ("review_phase_ratings", "review_problems")

EVERYTHING = "(SELECT lfd_scope_all())"
ORGANISATIONS = "organisation_id = ANY ((SELECT lfd_scope_organisations())::uuid[])"
SHARED = "death_id = ANY ((SELECT lfd_scope_shared_deaths())::uuid[])"
SHARED_REVIEW = (
    "(SELECT lfd_scope_shared_deaths()) <> '{{}}'::uuid[]"
    " AND EXISTS (SELECT 1 FROM reviews r WHERE r.id = {table}.review_id OFFSET 0)"
)
# Migration 0021's rules, which the downgrade puts back.
OLD_DEATH = "EXISTS (SELECT 1 FROM deaths d WHERE d.id = {table}.death_id OFFSET 0)"
OLD_REVIEW = "EXISTS (SELECT 1 FROM reviews r WHERE r.id = {table}.review_id OFFSET 0)"

# Covering indexes that gain the column: (name, table, key columns, included before).
INDEXES = (
    ("ix_screenings_died_on", "screenings", ["died_on"], ["death_id", "screened_at"]),
    (
        "ix_reviews_death_id_route_status",
        "reviews",
        ["death_id", "route", "status"],
        [
            "stage",
            "submitted_at",
            "id",
            "avoidability",
            "overall_rating",
            "notified_at",
            "external_status",
        ],
    ),
    (
        "ix_review_phase_ratings_review_id_report",
        "review_phase_ratings",
        ["review_id"],
        ["phase", "rating"],
    ),
)


@contextmanager
def copied_on_sqlite() -> Iterator[None]:
    """SQLite runs the batch operations by copying each table, and the copy keeps only the
    indexes reflection sees: referrals' expression index (0008) is made again after, as 0009
    does. A migration keeps its own copy of this: migrations never import one another."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.drop_index("ix_referrals_assigned_to_folded", table_name="referrals")
    yield
    if sqlite:
        op.create_index(
            "ix_referrals_assigned_to_folded",
            "referrals",
            [sa.text("lower(assigned_to)"), "status"],
        )


def _policy(table: str, rule: str) -> None:
    condition = f"{EVERYTHING} OR {rule}"
    op.execute(f"ALTER POLICY lfd_scope ON {table} USING ({condition}) WITH CHECK ({condition})")


def _copy_column(table: str, parent: str, key: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column("organisation_id", sa.Uuid(), nullable=True))
    op.execute(
        f"UPDATE {table} SET organisation_id = (SELECT p.organisation_id FROM {parent} p"  # noqa: S608
        f" WHERE p.id = {table}.{key})"
    )
    with op.batch_alter_table(table) as batch:
        batch.alter_column("organisation_id", existing_type=sa.Uuid(), nullable=False)
        batch.drop_constraint(f"fk_{table}_{key}_{parent}", type_="foreignkey")
        batch.create_foreign_key(
            f"fk_{table}_{key}_{parent}",
            parent,
            [key, "organisation_id"],
            ["id", "organisation_id"],
            onupdate="CASCADE",
        )


def _drop_column(table: str, parent: str, key: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(f"fk_{table}_{key}_{parent}", type_="foreignkey")
        batch.drop_column("organisation_id")
        batch.create_foreign_key(f"fk_{table}_{key}_{parent}", parent, [key], ["id"])


def _indexes(with_organisation: bool) -> None:
    for name, table, columns, included in INDEXES:
        op.drop_index(name, table_name=table)
        include = [*included, "organisation_id"] if with_organisation else included
        op.create_index(name, table, columns, postgresql_include=include)


def upgrade() -> None:
    with copied_on_sqlite():
        _upgrade(op.get_bind().dialect.name == "postgresql")


def downgrade() -> None:
    with copied_on_sqlite():
        _downgrade(op.get_bind().dialect.name == "postgresql")


def _upgrade(postgres: bool) -> None:
    with op.batch_alter_table("deaths") as batch:
        batch.create_unique_constraint("uq_deaths_id_organisation_id", ["id", "organisation_id"])
    for table in DEATH_KEYED:
        _copy_column(table, "deaths", "death_id")
    with op.batch_alter_table("reviews") as batch:
        batch.create_unique_constraint("uq_reviews_id_organisation_id", ["id", "organisation_id"])
    for table in REVIEW_KEYED:
        _copy_column(table, "reviews", "review_id")
    _indexes(with_organisation=True)
    if postgres:
        for table in DEATH_KEYED:
            _policy(table, f"{ORGANISATIONS} OR {SHARED}")
        for table in REVIEW_KEYED:
            _policy(table, f"{ORGANISATIONS} OR ({SHARED_REVIEW.format(table=table)})")


def _downgrade(postgres: bool) -> None:
    if postgres:
        for table in DEATH_KEYED:
            _policy(table, OLD_DEATH.format(table=table))
        for table in REVIEW_KEYED:
            _policy(table, OLD_REVIEW.format(table=table))
    _indexes(with_organisation=False)
    for table in REVIEW_KEYED:
        _drop_column(table, "reviews", "review_id")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_constraint("uq_reviews_id_organisation_id", type_="unique")
    for table in DEATH_KEYED:
        _drop_column(table, "deaths", "death_id")
    with op.batch_alter_table("deaths") as batch:
        batch.drop_constraint("uq_deaths_id_organisation_id", type_="unique")
