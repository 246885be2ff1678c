"""Initial schema: API clients, deaths, screenings, overrides, referrals, audit, outbox,
idempotency records, and the case-number sequence.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 16:12:33.719428
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "api_clients",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "scopes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("pseudonymised", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
        sa.UniqueConstraint("key_prefix", name=op.f("uq_api_clients_key_prefix")),
    )
    op.create_table(
        "audit_events",
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("client_name", sa.String(length=200), nullable=True),
        sa.Column("on_behalf_of", sa.String(length=200), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=True),
        sa.Column("death_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_death_id_occurred_at", ["death_id", "occurred_at"], unique=False
        )
        batch_op.create_index("ix_audit_events_occurred_at", ["occurred_at"], unique=False)

    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.create_table(
        "deaths",
        sa.Column(
            "case_number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source_system", sa.String(length=100), nullable=False),
        sa.Column("source_reference", sa.String(length=100), nullable=False),
        sa.Column("nhs_number", sa.String(length=10), nullable=True),
        sa.Column("nhs_number_status", sa.String(length=2), nullable=False),
        sa.Column("local_patient_id", sa.String(length=50), nullable=True),
        sa.Column("given_name", sa.String(length=100), nullable=True),
        sa.Column("family_name", sa.String(length=100), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(length=20), nullable=False),
        sa.Column("postcode", sa.String(length=8), nullable=True),
        sa.Column("ethnicity", sa.String(length=2), nullable=True),
        sa.Column("died_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("died_on", sa.Date(), nullable=False),
        sa.Column("place_of_death", sa.String(length=30), nullable=False),
        sa.Column("site", sa.String(length=100), nullable=True),
        sa.Column("ward", sa.String(length=100), nullable=True),
        sa.Column("admitting_specialty", sa.String(length=100), nullable=True),
        sa.Column("specialty_at_death", sa.String(length=100), nullable=True),
        sa.Column("diagnosis_group", sa.String(length=100), nullable=True),
        sa.Column("consultant", sa.String(length=100), nullable=True),
        sa.Column("admission_method", sa.String(length=20), nullable=False),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("discharged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("learning_disability", sa.Boolean(), nullable=False),
        sa.Column("autism", sa.Boolean(), nullable=False),
        sa.Column("serious_mental_illness", sa.Boolean(), nullable=False),
        sa.Column("pregnant_or_recently_pregnant", sa.Boolean(), nullable=False),
        sa.Column("age_at_death", sa.Integer(), nullable=False),
        sa.Column("age_in_days_at_death", sa.Integer(), nullable=False),
        sa.Column("within_30_days_of_discharge", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deaths")),
        sa.UniqueConstraint("case_number", name=op.f("uq_deaths_case_number")),
        sa.UniqueConstraint(
            "source_system",
            "source_reference",
            name=op.f("uq_deaths_source_system_source_reference"),
        ),
    )
    with op.batch_alter_table("deaths", schema=None) as batch_op:
        batch_op.create_index("ix_deaths_died_at_id", ["died_at", "id"], unique=False)
        batch_op.create_index("ix_deaths_nhs_number", ["nhs_number"], unique=False)
        batch_op.create_index(
            "ix_deaths_specialty_at_death_died_at", ["specialty_at_death", "died_at"], unique=False
        )
        batch_op.create_index("ix_deaths_status_died_at", ["status", "died_at"], unique=False)

    op.create_table(
        "idempotency_records",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("response_status", sa.SmallInteger(), nullable=True),
        sa.Column(
            "response_body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "response_headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint("client_id", "key", name=op.f("uq_idempotency_records_client_id_key")),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_records_expires_at", ["expires_at"], unique=False)

    op.create_table(
        "outbox_events",
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("death_id", sa.Uuid(), nullable=True),
        sa.Column(
            "changed",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_events_occurred_at", ["occurred_at"], unique=False)
        batch_op.create_index(
            "ix_outbox_events_resource", ["resource_type", "resource_id"], unique=False
        )

    op.create_table(
        "referrals",
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("route", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=True),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("specialty", sa.String(length=100), nullable=True),
        sa.Column("site", sa.String(length=100), nullable=True),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_to", sa.String(length=200), nullable=True),
        sa.Column("lease_id", sa.Uuid(), nullable=True),
        sa.Column("leased_by", sa.Uuid(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("external_reference", sa.String(length=100), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_referrals_death_id_deaths")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index("ix_referrals_assigned_to", ["assigned_to", "status"], unique=False)
        batch_op.create_index("ix_referrals_death_id_route", ["death_id", "route"], unique=False)
        batch_op.create_index("ix_referrals_lease_expires_at", ["lease_expires_at"], unique=False)
        batch_op.create_index(
            "ix_referrals_queue",
            ["route", "status", "priority", "due_at", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_referrals_specialty_queue",
            ["specialty", "route", "status", "priority", "due_at"],
            unique=False,
        )
        batch_op.create_index("ix_referrals_status_due_at", ["status", "due_at"], unique=False)

    op.create_table(
        "screenings",
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("examiner_name", sa.String(length=200), nullable=False),
        sa.Column("examiner_gmc_number", sa.String(length=7), nullable=False),
        sa.Column("screened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("records_reviewed", sa.Boolean(), nullable=False),
        sa.Column("qap_discussed", sa.Boolean(), nullable=False),
        sa.Column("bereaved_contacted", sa.Boolean(), nullable=False),
        sa.Column("bereaved_concerns", sa.Text(), nullable=True),
        sa.Column("staff_concerns", sa.Text(), nullable=True),
        sa.Column("cause_part_1a", sa.String(length=500), nullable=True),
        sa.Column("cause_part_1b", sa.String(length=500), nullable=True),
        sa.Column("cause_part_1c", sa.String(length=500), nullable=True),
        sa.Column("cause_part_2", sa.String(length=500), nullable=True),
        sa.Column("mccd_issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("coroner_notified", sa.Boolean(), nullable=False),
        sa.Column("coroner_reason", sa.String(length=40), nullable=True),
        sa.Column("clinical_governance_concern", sa.Text(), nullable=True),
        sa.Column("death_expected", sa.Boolean(), nullable=False),
        sa.Column("patient_safety_concern", sa.Text(), nullable=True),
        sa.Column(
            "routes_requested",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("recorded_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_screenings_death_id_deaths")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screenings")),
        sa.UniqueConstraint("death_id", name=op.f("uq_screenings_death_id")),
    )
    op.create_table(
        "route_overrides",
        sa.Column("screening_id", sa.Uuid(), nullable=False),
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("route", sa.String(length=20), nullable=False),
        sa.Column(
            "reason_codes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("override_reason", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_route_overrides_death_id_deaths")
        ),
        sa.ForeignKeyConstraint(
            ["screening_id"],
            ["screenings.id"],
            name=op.f("fk_route_overrides_screening_id_screenings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_overrides")),
        sa.UniqueConstraint(
            "screening_id", "route", name=op.f("uq_route_overrides_screening_id_route")
        ),
    )
    with op.batch_alter_table("route_overrides", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_route_overrides_death_id"), ["death_id"], unique=False)

    op.create_table(
        "screening_versions",
        sa.Column("screening_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "snapshot",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["screening_id"],
            ["screenings.id"],
            name=op.f("fk_screening_versions_screening_id_screenings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_versions")),
        sa.UniqueConstraint(
            "screening_id", "version", name=op.f("uq_screening_versions_screening_id_version")
        ),
    )
    # Case numbers: a real sequence on PostgreSQL, a counter row elsewhere (SQLite).
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE case_number_seq AS BIGINT START 1")
        # The number is assigned by the INSERT itself: no separate round trip for it.
        op.execute(
            "ALTER TABLE deaths ALTER COLUMN case_number SET DEFAULT nextval('case_number_seq')"
        )
        op.execute("ALTER SEQUENCE case_number_seq OWNED BY deaths.case_number")
    else:
        op.execute("INSERT INTO counters (name, value) VALUES ('case_number', 0)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deaths ALTER COLUMN case_number DROP DEFAULT")
        op.execute("DROP SEQUENCE IF EXISTS case_number_seq")

    op.drop_table("screening_versions")
    with op.batch_alter_table("route_overrides", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_route_overrides_death_id"))

    op.drop_table("route_overrides")
    op.drop_table("screenings")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_status_due_at")
        batch_op.drop_index("ix_referrals_specialty_queue")
        batch_op.drop_index("ix_referrals_queue")
        batch_op.drop_index("ix_referrals_lease_expires_at")
        batch_op.drop_index("ix_referrals_death_id_route")
        batch_op.drop_index("ix_referrals_assigned_to")

    op.drop_table("referrals")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_resource")
        batch_op.drop_index("ix_outbox_events_occurred_at")

    op.drop_table("outbox_events")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_records_expires_at")

    op.drop_table("idempotency_records")
    with op.batch_alter_table("deaths", schema=None) as batch_op:
        batch_op.drop_index("ix_deaths_status_died_at")
        batch_op.drop_index("ix_deaths_specialty_at_death_died_at")
        batch_op.drop_index("ix_deaths_nhs_number")
        batch_op.drop_index("ix_deaths_died_at_id")

    op.drop_table("deaths")
    op.drop_table("counters")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_occurred_at")
        batch_op.drop_index("ix_audit_events_death_id_occurred_at")

    op.drop_table("audit_events")
    op.drop_table("api_clients")
