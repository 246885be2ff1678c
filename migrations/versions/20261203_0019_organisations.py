"""Organisations (issue 16): the registry, the default organisation that owns everything
recorded before it, the organisation of each death, client and plan, the organisation of care
of each SJR phase rating and problem, shares of a death with another organisation, and on
PostgreSQL the row-level security policies that confine every transaction to its data scope
(app.scoping).

Every existing death, plan and client belongs to one default organisation ("Default
organisation", no ODS code); `lfd organisations adopt --ods-code RWE --name ...` names it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 08:00:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# The data scope a transaction runs in (app.scoping sets them with set_config(..., true)).
FUNCTIONS = (
    "CREATE FUNCTION lfd_scope_all() RETURNS boolean LANGUAGE sql STABLE AS"
    " $$ SELECT coalesce(current_setting('lfd.scope', true), '') = 'all' $$",
    "CREATE FUNCTION lfd_scope_organisations() RETURNS uuid[] LANGUAGE sql STABLE AS"
    " $$ SELECT coalesce(nullif(current_setting('lfd.organisations', true), ''), '{}')::uuid[] $$",
    "CREATE FUNCTION lfd_scope_shared_deaths() RETURNS uuid[] LANGUAGE sql STABLE AS"
    " $$ SELECT coalesce(nullif(current_setting('lfd.shared_deaths', true), ''), '{}')::uuid[] $$",
)

DEATH_VISIBLE = "EXISTS (SELECT 1 FROM deaths d WHERE d.id = {table}.death_id)"
# table -> the rule a row must meet (USING and WITH CHECK). A child table defers to its parent,
# whose own policy applies inside the subquery: one rule per kind of record.
POLICIES: dict[str, str] = {
    "deaths": "organisation_id = ANY (lfd_scope_organisations())"
    " OR id = ANY (lfd_scope_shared_deaths())",
    **{
        table: DEATH_VISIBLE.format(table=table)
        for table in (
            "screenings",
            "route_overrides",
            "referral_judgements",
            "referrals",
            "referral_transitions",
            "reviews",
            "findings",
            "death_notifications",
            "worklist_claims",
            "history_records",
            "possible_duplicates",
        )
    },
    **{
        table: f"EXISTS (SELECT 1 FROM reviews r WHERE r.id = {table}.review_id)"  # noqa: S608
        for table in ("review_phase_ratings", "review_problems", "review_versions")
    },
    "screening_versions": "EXISTS (SELECT 1 FROM screenings s"
    " WHERE s.id = screening_versions.screening_id)",
    "action_plans": "organisation_id = ANY (lfd_scope_organisations())",
    "action_plan_sections": "EXISTS (SELECT 1 FROM action_plans p"
    " WHERE p.id = action_plan_sections.plan_id)",
    "actions": "EXISTS (SELECT 1 FROM action_plans p WHERE p.id = actions.plan_id)",
    "action_updates": "EXISTS (SELECT 1 FROM actions a WHERE a.id = action_updates.action_id)",
    "outbox_events": "(death_id IS NULL AND (organisation_id IS NULL"
    " OR organisation_id = ANY (lfd_scope_organisations())))"
    " OR (death_id IS NOT NULL AND EXISTS (SELECT 1 FROM deaths d"
    " WHERE d.id = outbox_events.death_id))",
    "audit_events": "organisation_id = ANY (lfd_scope_organisations())"
    " OR (death_id IS NOT NULL AND EXISTS (SELECT 1 FROM deaths d"
    " WHERE d.id = audit_events.death_id))",
}


def _organisation_column(batch: object, name: str, nullable: bool = True) -> None:
    batch.add_column(sa.Column(name, sa.Uuid(), nullable=nullable))  # type: ignore[attr-defined]


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("ods_code", sa.String(length=10), nullable=True),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("aliases", JSON, nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("closed_at", TIMESTAMP, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["organisations.id"],
            name=op.f("fk_organisations_parent_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("ods_code", name=op.f("uq_organisations_ods_code")),
    )
    op.create_index(op.f("ix_organisations_parent_id"), "organisations", ["parent_id"])
    default_id = uuid.uuid4()
    now = datetime.now(UTC)
    organisations = sa.table(
        "organisations",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("aliases", JSON),
        sa.column("is_default", sa.Boolean()),
        sa.column("settings", JSON),
        sa.column("version", sa.Integer()),
        sa.column("created_at", TIMESTAMP),
        sa.column("updated_at", TIMESTAMP),
    )
    op.bulk_insert(
        organisations,
        [
            {
                "id": default_id,
                "name": "Default organisation",
                "kind": "trust",
                "aliases": [],
                "is_default": True,
                "settings": {},
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    default = sa.literal(default_id, sa.Uuid())

    for table in ("deaths", "action_plans"):
        with op.batch_alter_table(table) as batch:
            _organisation_column(batch, "organisation_id")
        op.execute(
            sa.table(table, sa.column("organisation_id", sa.Uuid()))
            .update()
            .values(organisation_id=default)
        )
    with op.batch_alter_table("deaths") as batch:
        batch.alter_column("organisation_id", existing_type=sa.Uuid(), nullable=False)
        _organisation_column(batch, "site_organisation_id")
        _organisation_column(batch, "gp_practice_organisation_id")
        for column in ("organisation_id", "site_organisation_id", "gp_practice_organisation_id"):
            batch.create_foreign_key(
                op.f(f"fk_deaths_{column}_organisations"), "organisations", [column], ["id"]
            )
        batch.create_index(
            op.f("ix_deaths_organisation_id_died_on"), ["organisation_id", "died_on"]
        )
    with op.batch_alter_table("action_plans") as batch:
        batch.alter_column("organisation_id", existing_type=sa.Uuid(), nullable=False)
        batch.create_foreign_key(
            op.f("fk_action_plans_organisation_id_organisations"),
            "organisations",
            ["organisation_id"],
            ["id"],
        )
        batch.create_index(op.f("ix_action_plans_organisation_id"), ["organisation_id"])
    with op.batch_alter_table("api_clients") as batch:
        _organisation_column(batch, "organisation_id")
        batch.create_foreign_key(
            op.f("fk_api_clients_organisation_id_organisations"),
            "organisations",
            ["organisation_id"],
            ["id"],
        )
    op.execute(
        sa.table("api_clients", sa.column("organisation_id", sa.Uuid()))
        .update()
        .values(organisation_id=default)
    )
    for table in ("review_phase_ratings", "review_problems"):
        with op.batch_alter_table(table) as batch:
            _organisation_column(batch, "care_organisation_id")
            batch.create_foreign_key(
                op.f(f"fk_{table}_care_organisation_id_organisations"),
                "organisations",
                ["care_organisation_id"],
                ["id"],
            )
    with op.batch_alter_table("outbox_events") as batch:
        _organisation_column(batch, "organisation_id")
    events = sa.table(
        "outbox_events",
        sa.column("organisation_id", sa.Uuid()),
        sa.column("death_id", sa.Uuid()),
        sa.column("resource_type", sa.String()),
    )
    op.execute(
        events.update()
        .where(
            sa.or_(
                events.c.death_id.is_not(None),
                events.c.resource_type.in_(["action_plan", "action"]),
            )
        )
        .values(organisation_id=default)
    )
    with op.batch_alter_table("audit_events") as batch:
        _organisation_column(batch, "organisation_id")
    with op.batch_alter_table("history_imports") as batch:
        _organisation_column(batch, "organisation_id")
    op.execute(
        sa.table("history_imports", sa.column("organisation_id", sa.Uuid()))
        .update()
        .values(organisation_id=default)
    )

    op.create_table(
        "case_shares",
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=30), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("referral_id", sa.Uuid(), nullable=True),
        sa.Column("starts_at", TIMESTAMP, nullable=False),
        sa.Column("ends_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("created_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.Column("revoked_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_case_shares_death_id_deaths")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_case_shares_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_case_shares_referral_id_referrals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_shares")),
    )
    op.create_index(op.f("ix_case_shares_death_id"), "case_shares", ["death_id"])
    op.create_index(
        op.f("ix_case_shares_organisation_id_death_id"),
        "case_shares",
        ["organisation_id", "death_id"],
    )
    op.create_index(
        op.f("ix_audit_events_organisation_id_occurred_at"),
        "audit_events",
        ["organisation_id", "occurred_at"],
    )

    if op.get_bind().dialect.name == "postgresql":
        for function in FUNCTIONS:
            op.execute(function)
        for table, rule in POLICIES.items():
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            op.execute(
                f"CREATE POLICY lfd_scope ON {table} USING (lfd_scope_all() OR {rule})"
                f" WITH CHECK (lfd_scope_all() OR {rule})"
            )
        # An audit row is always written, whoever acts (a deployment-level client's included);
        # only reading them is confined.
        op.execute("CREATE POLICY lfd_audit_written ON audit_events FOR INSERT WITH CHECK (true)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY lfd_audit_written ON audit_events")
        for table in POLICIES:
            op.execute(f"DROP POLICY lfd_scope ON {table}")
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute("DROP FUNCTION lfd_scope_all()")
        op.execute("DROP FUNCTION lfd_scope_organisations()")
        op.execute("DROP FUNCTION lfd_scope_shared_deaths()")
    op.drop_index(op.f("ix_audit_events_organisation_id_occurred_at"), table_name="audit_events")
    op.drop_table("case_shares")
    with op.batch_alter_table("history_imports") as batch:
        batch.drop_column("organisation_id")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("organisation_id")
    with op.batch_alter_table("outbox_events") as batch:
        batch.drop_column("organisation_id")
    for table in ("review_phase_ratings", "review_problems"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(
                op.f(f"fk_{table}_care_organisation_id_organisations"), type_="foreignkey"
            )
            batch.drop_column("care_organisation_id")
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_constraint(
            op.f("fk_api_clients_organisation_id_organisations"), type_="foreignkey"
        )
        batch.drop_column("organisation_id")
    with op.batch_alter_table("action_plans") as batch:
        batch.drop_index(op.f("ix_action_plans_organisation_id"))
        batch.drop_constraint(
            op.f("fk_action_plans_organisation_id_organisations"), type_="foreignkey"
        )
        batch.drop_column("organisation_id")
    with op.batch_alter_table("deaths") as batch:
        batch.drop_index(op.f("ix_deaths_organisation_id_died_on"))
        for column in ("organisation_id", "site_organisation_id", "gp_practice_organisation_id"):
            batch.drop_constraint(op.f(f"fk_deaths_{column}_organisations"), type_="foreignkey")
            batch.drop_column(column)
    op.drop_index(op.f("ix_organisations_parent_id"), table_name="organisations")
    op.drop_table("organisations")
