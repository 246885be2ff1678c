"""Themes (seeded with the themes mortality reviews keep finding), findings, action plans with
their sections, actions, their dated updates, and the links from actions to findings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:20:16.455077
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

THEME_NAMESPACE = uuid.UUID("6f4b0d7e-9a51-4c8e-b3a2-0e7c1d2f3a40")
# The themes mortality reviews keep finding (issue 4).
SEED_THEMES = [
    ("advance_care_planning", "Advance care planning"),
    ("dnacpr_decisions", "DNACPR decisions"),
    ("recognition_of_end_of_life", "Recognition of end of life"),
    ("end_of_life_care", "End-of-life care"),
    ("frailty", "Frailty"),
    ("delays_in_access", "Delays in access"),
    ("admission_avoidance", "Admission avoidance"),
    ("handover_and_transfer", "Handover and transfer"),
    ("inter_site_transfers_and_ward_moves", "Inter-site transfers and ward moves"),
    ("deteriorating_patient", "Clinical monitoring and escalation of the deteriorating patient"),
    ("early_warning_scores", "Early warning scores"),
    ("sepsis", "Sepsis"),
    ("fluid_balance_and_hydration", "Fluid balance and hydration"),
    ("medication", "Medication, including anticoagulation and diabetes"),
    ("nutrition_and_weight", "Nutrition and weight"),
    ("infection_management", "Infection management"),
    ("discharge", "Discharge"),
    ("quality_of_records", "Quality of records"),
    ("communication_with_patients_and_families", "Communication with patients and families"),
    ("clinical_reasoning", "Clinical reasoning"),
    ("palliative_care", "Palliative care"),
]


def upgrade() -> None:
    op.create_table(
        "action_plans",
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("sponsor", sa.String(length=200), nullable=True),
        sa.Column(
            "organisations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("source_sha256", sa.String(length=64), nullable=True),
        sa.Column("source_filename", sa.String(length=255), nullable=True),
        sa.Column("layout", sa.String(length=20), nullable=True),
        sa.Column("created_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_plans")),
        sa.UniqueConstraint("source_sha256", name=op.f("uq_action_plans_source_sha256")),
    )
    op.create_table(
        "themes",
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_themes")),
        sa.UniqueConstraint("code", name=op.f("uq_themes_code")),
        sa.UniqueConstraint("name", name=op.f("uq_themes_name")),
    )
    op.create_table(
        "action_plan_sections",
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["action_plans.id"],
            name=op.f("fk_action_plan_sections_plan_id_action_plans"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_plan_sections")),
        sa.UniqueConstraint(
            "plan_id", "position", name=op.f("uq_action_plan_sections_plan_id_position")
        ),
    )
    op.create_table(
        "actions",
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("section_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=50), nullable=False),
        sa.Column("improvement_requirement", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column(
            "leads",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "organisations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("workstream", sa.Text(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("due_precision", sa.String(length=5), nullable=True),
        sa.Column("due_note", sa.String(length=100), nullable=True),
        sa.Column("falls_due_on", sa.Date(), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("comments", sa.Text(), nullable=True),
        sa.Column("completed_at", sa.Date(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("assured_at", sa.Date(), nullable=True),
        sa.Column("assured_by", sa.String(length=200), nullable=True),
        sa.Column("overdue_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["action_plans.id"], name=op.f("fk_actions_plan_id_action_plans")
        ),
        sa.ForeignKeyConstraint(
            ["section_id"],
            ["action_plan_sections.id"],
            name=op.f("fk_actions_section_id_action_plan_sections"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
        sa.UniqueConstraint(
            "section_id", "reference", name=op.f("uq_actions_section_id_reference")
        ),
    )
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_actions_overdue_watch", ["falls_due_on", "overdue_notified_at"], unique=False
        )
        batch_op.create_index("ix_actions_plan_id_position", ["plan_id", "position"], unique=False)
        batch_op.create_index("ix_actions_status_due_date", ["status", "due_date"], unique=False)

    op.create_table(
        "action_updates",
        sa.Column("action_id", sa.Uuid(), nullable=False),
        sa.Column("update_date", sa.Date(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=True),
        sa.Column("narrative", sa.Text(), nullable=True),
        sa.Column("status_before", sa.SmallInteger(), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"], ["actions.id"], name=op.f("fk_action_updates_action_id_actions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_updates")),
    )
    with op.batch_alter_table("action_updates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_action_updates_action_id", ["action_id", "recorded_at"], unique=False
        )

    op.create_table(
        "findings",
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("review_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("theme_id", sa.Uuid(), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("died_on", sa.Date(), nullable=False),
        sa.Column("specialty", sa.String(length=100), nullable=True),
        sa.Column("route", sa.String(length=20), nullable=True),
        sa.Column("recorded_by", sa.String(length=200), nullable=True),
        sa.Column("created_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_findings_death_id_deaths")
        ),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_findings_review_id_reviews")
        ),
        sa.ForeignKeyConstraint(
            ["theme_id"], ["themes.id"], name=op.f("fk_findings_theme_id_themes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
    )
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.create_index("ix_findings_death_id", ["death_id"], unique=False)
        batch_op.create_index("ix_findings_died_on", ["died_on"], unique=False)
        batch_op.create_index("ix_findings_review_id", ["review_id"], unique=False)
        batch_op.create_index("ix_findings_theme_id_died_on", ["theme_id", "died_on"], unique=False)

    op.create_table(
        "action_findings",
        sa.Column("action_id", sa.Uuid(), nullable=False),
        sa.Column("finding_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"], ["actions.id"], name=op.f("fk_action_findings_action_id_actions")
        ),
        sa.ForeignKeyConstraint(
            ["finding_id"], ["findings.id"], name=op.f("fk_action_findings_finding_id_findings")
        ),
        sa.PrimaryKeyConstraint("action_id", "finding_id", name=op.f("pk_action_findings")),
    )
    themes = sa.table(
        "themes",
        sa.column("id", sa.Uuid),
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("description", sa.Text),
        sa.column("version", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    seeded_at = datetime(2026, 11, 23, tzinfo=UTC)
    op.bulk_insert(
        themes,
        [
            {
                # Fixed ids, so that every deployment's seeded themes are the same records.
                "id": uuid.uuid5(THEME_NAMESPACE, code),
                "code": code,
                "name": name,
                "description": None,
                "version": 1,
                "created_at": seeded_at,
                "updated_at": seeded_at,
            }
            for code, name in SEED_THEMES
        ],
    )


def downgrade() -> None:
    op.drop_table("action_findings")
    with op.batch_alter_table("findings", schema=None) as batch_op:
        batch_op.drop_index("ix_findings_theme_id_died_on")
        batch_op.drop_index("ix_findings_review_id")
        batch_op.drop_index("ix_findings_died_on")
        batch_op.drop_index("ix_findings_death_id")

    op.drop_table("findings")
    with op.batch_alter_table("action_updates", schema=None) as batch_op:
        batch_op.drop_index("ix_action_updates_action_id")

    op.drop_table("action_updates")
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_index("ix_actions_status_due_date")
        batch_op.drop_index("ix_actions_plan_id_position")
        batch_op.drop_index("ix_actions_overdue_watch")

    op.drop_table("actions")
    op.drop_table("action_plan_sections")
    op.drop_table("themes")
    op.drop_table("action_plans")
