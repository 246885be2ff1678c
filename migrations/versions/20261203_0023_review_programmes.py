"""Review programmes (issue 17): a clinical audit of the deaths of a period, from its cohort
to its board report. The programme (its cohort rules, sampling, instrument, theme vocabulary,
action plan and the plan's approval), its own questions, its cohort's cases (each chosen for
review or not by a seeded order, its review its own programme referral's or the routine SJR it
links), the second opinions on a case and the answers to the questions, the recommendations
in key areas with their actions, and the mappings between theme vocabularies that let two
programmes' themes be compared. Referrals gain the programme whose queue holds them.

On PostgreSQL every new table has row-level security as migration 0021 writes it: a
programme and a theme mapping are their organisation's; questions and recommendations defer
to their programme, a recommendation's actions to it; cases, opinions and answers to their
death (each parent probed by its key, OFFSET 0: never hashed whole).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03 12:34:35
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVERYTHING = "(SELECT lfd_scope_all())"
ORGANISATIONS = "organisation_id = ANY ((SELECT lfd_scope_organisations())::uuid[])"


def _parent(table: str, parent: str, key: str) -> str:
    return f"EXISTS (SELECT 1 FROM {parent} p WHERE p.id = {table}.{key} OFFSET 0)"  # noqa: S608


RULES: dict[str, str] = {
    "programmes": ORGANISATIONS,
    "theme_mappings": ORGANISATIONS,
    "programme_questions": _parent("programme_questions", "programmes", "programme_id"),
    "programme_recommendations": _parent("programme_recommendations", "programmes", "programme_id"),
    "programme_recommendation_actions": _parent(
        "programme_recommendation_actions", "programme_recommendations", "recommendation_id"
    ),
    "programme_cases": _parent("programme_cases", "deaths", "death_id"),
    "programme_opinions": _parent("programme_opinions", "deaths", "death_id"),
    "programme_answers": _parent("programme_answers", "deaths", "death_id"),
}


@contextmanager
def copied_on_sqlite() -> Iterator[None]:
    """SQLite runs a batch operation on referrals by copying the table after reflecting it,
    and reflection skips 0008's expression index (a copy would lose it): dropped before and
    made again after, as migration 0009 does."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.drop_index("ix_referrals_assigned_to_folded", table_name="referrals")
    yield
    if sqlite:
        op.create_index(
            "ix_referrals_assigned_to_folded",
            "referrals",
            [sa.text("lower(assigned_to)"), "status"],
            unique=False,
        )


def _policies() -> None:
    for table, rule in RULES.items():
        condition = f"{EVERYTHING} OR {rule}"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY lfd_scope ON {table} USING ({condition}) WITH CHECK ({condition})"
        )


def upgrade() -> None:
    op.create_table(
        "theme_mappings",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("theme_id", sa.Uuid(), nullable=False),
        sa.Column("other_theme_id", sa.Uuid(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_theme_mappings_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["other_theme_id"], ["themes.id"], name=op.f("fk_theme_mappings_other_theme_id_themes")
        ),
        sa.ForeignKeyConstraint(
            ["theme_id"], ["themes.id"], name=op.f("fk_theme_mappings_theme_id_themes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_theme_mappings")),
        sa.UniqueConstraint(
            "organisation_id",
            "theme_id",
            "other_theme_id",
            name=op.f("uq_theme_mappings_organisation_id_theme_id_other_theme_id"),
        ),
    )
    with op.batch_alter_table("theme_mappings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_theme_mappings_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "programmes",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column(
            "rules",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("sampling", sa.String(length=10), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=True),
        sa.Column("sample_percent", sa.SmallInteger(), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("instrument", sa.String(length=10), nullable=False),
        sa.Column("link_routine_reviews", sa.Boolean(), nullable=False),
        sa.Column("reviews_due_on", sa.Date(), nullable=True),
        sa.Column(
            "theme_ids",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("plan_id", sa.Uuid(), nullable=True),
        sa.Column("plan_approved_by", sa.String(length=200), nullable=True),
        sa.Column("plan_approved_on", sa.Date(), nullable=True),
        sa.Column("cohort_built_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_client_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_programmes_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["action_plans.id"], name=op.f("fk_programmes_plan_id_action_plans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programmes")),
        sa.UniqueConstraint(
            "organisation_id", "code", name=op.f("uq_programmes_organisation_id_code")
        ),
    )
    with op.batch_alter_table("programmes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_programmes_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "programme_questions",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_programme_questions_programme_id_programmes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_questions")),
        sa.UniqueConstraint(
            "programme_id", "code", name=op.f("uq_programme_questions_programme_id_code")
        ),
        sa.UniqueConstraint(
            "programme_id", "position", name=op.f("uq_programme_questions_programme_id_position")
        ),
    )
    op.create_table(
        "programme_recommendations",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("key_area", sa.String(length=5), nullable=False),
        sa.Column("key_area_title", sa.String(length=300), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_programme_recommendations_programme_id_programmes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_recommendations")),
        sa.UniqueConstraint(
            "programme_id",
            "position",
            name=op.f("uq_programme_recommendations_programme_id_position"),
        ),
    )
    op.create_table(
        "programme_cases",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("died_on", sa.Date(), nullable=False),
        sa.Column("sample_key", sa.BigInteger(), nullable=False),
        sa.Column("selected", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("joined", sa.String(length=10), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("selected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("referral_id", sa.Uuid(), nullable=True),
        sa.Column("linked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("excluded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("excluded_reason", sa.Text(), nullable=True),
        sa.Column("relatives_sought", sa.String(length=20), nullable=True),
        sa.Column("relatives_view", sa.Text(), nullable=True),
        sa.Column("relatives_recorded_by", sa.String(length=200), nullable=True),
        sa.Column("relatives_recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_programme_cases_death_id_deaths")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_programme_cases_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_programme_cases_referral_id_referrals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_cases")),
        sa.UniqueConstraint(
            "programme_id", "death_id", name=op.f("uq_programme_cases_programme_id_death_id")
        ),
    )
    with op.batch_alter_table("programme_cases", schema=None) as batch_op:
        batch_op.create_index("ix_programme_cases_death_id", ["death_id"], unique=False)
        batch_op.create_index(
            "ix_programme_cases_sample",
            ["programme_id", "selected", "sample_key", "death_id"],
            unique=False,
        )

    op.create_table(
        "programme_recommendation_actions",
        sa.Column("recommendation_id", sa.Uuid(), nullable=False),
        sa.Column("action_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["actions.id"],
            name=op.f("fk_programme_recommendation_actions_action_id_actions"),
        ),
        sa.ForeignKeyConstraint(
            ["recommendation_id"],
            ["programme_recommendations.id"],
            name=op.f(
                "fk_programme_recommendation_actions_recommendation_id_programme_recommendations"
            ),
        ),
        sa.PrimaryKeyConstraint(
            "recommendation_id", "action_id", name=op.f("pk_programme_recommendation_actions")
        ),
    )
    op.create_table(
        "programme_answers",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("opinion", sa.SmallInteger(), nullable=False),
        sa.Column("question_id", sa.Uuid(), nullable=False),
        sa.Column("choice", sa.String(length=20), nullable=True),
        sa.Column("scale", sa.SmallInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.String(length=200), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["programme_cases.id"],
            name=op.f("fk_programme_answers_case_id_programme_cases"),
        ),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_programme_answers_death_id_deaths")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_programme_answers_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["programme_questions.id"],
            name=op.f("fk_programme_answers_question_id_programme_questions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_answers")),
        sa.UniqueConstraint(
            "case_id",
            "opinion",
            "question_id",
            name=op.f("uq_programme_answers_case_id_opinion_question_id"),
        ),
    )
    with op.batch_alter_table("programme_answers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_programme_answers_programme_id", ["programme_id", "question_id"], unique=False
        )

    op.create_table(
        "programme_opinions",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("death_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.SmallInteger(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=True),
        sa.Column("requested_from", sa.String(length=200), nullable=True),
        sa.Column("requested_specialty", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["programme_cases.id"],
            name=op.f("fk_programme_opinions_case_id_programme_cases"),
        ),
        sa.ForeignKeyConstraint(
            ["death_id"], ["deaths.id"], name=op.f("fk_programme_opinions_death_id_deaths")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_programme_opinions_programme_id_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_programme_opinions_referral_id_referrals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_opinions")),
        sa.UniqueConstraint("case_id", "number", name=op.f("uq_programme_opinions_case_id_number")),
        sa.UniqueConstraint("referral_id", name=op.f("uq_programme_opinions_referral_id")),
    )
    with op.batch_alter_table("programme_opinions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_programme_opinions_programme_id"), ["programme_id"], unique=False
        )

    with copied_on_sqlite(), op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("programme_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            "ix_referrals_programme_claimable",
            ["programme_id", "priority", "due_at", "created_at", "id"],
            unique=False,
            postgresql_where=sa.text("status IN ('ready', 'in_progress')"),
            sqlite_where=sa.text("status IN ('ready', 'in_progress')"),
        )
        batch_op.create_index("ix_referrals_programme_id", ["programme_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_referrals_programme_id_programmes"),
            "programmes",
            ["programme_id"],
            ["id"],
        )

    if op.get_bind().dialect.name == "postgresql":
        _policies()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in RULES:
            op.execute(f"DROP POLICY lfd_scope ON {table}")
    with copied_on_sqlite(), op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_referrals_programme_id_programmes"), type_="foreignkey"
        )
        batch_op.drop_index("ix_referrals_programme_id")
        batch_op.drop_index(
            "ix_referrals_programme_claimable",
            postgresql_where=sa.text("status IN ('ready', 'in_progress')"),
            sqlite_where=sa.text("status IN ('ready', 'in_progress')"),
        )
        batch_op.drop_column("programme_id")

    with op.batch_alter_table("programme_opinions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_programme_opinions_programme_id"))

    op.drop_table("programme_opinions")
    with op.batch_alter_table("programme_answers", schema=None) as batch_op:
        batch_op.drop_index("ix_programme_answers_programme_id")

    op.drop_table("programme_answers")
    op.drop_table("programme_recommendation_actions")
    with op.batch_alter_table("programme_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_programme_cases_sample")
        batch_op.drop_index("ix_programme_cases_death_id")

    op.drop_table("programme_cases")
    op.drop_table("programme_recommendations")
    op.drop_table("programme_questions")
    with op.batch_alter_table("programmes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_programmes_organisation_id"))

    op.drop_table("programmes")
    with op.batch_alter_table("theme_mappings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_theme_mappings_organisation_id"))

    op.drop_table("theme_mappings")
