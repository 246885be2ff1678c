"""Fresh planner statistics after a large history import (issue 14).

A history import writes hundreds of thousands of rows in minutes; until autovacuum's next
ANALYZE the planner still believes the tables hold what they held before (often nothing), and
the first reports after a bulk load chose plans for empty tables (the LfD dashboard after a
1,000,000-death import ran past its statement timeout). The service's role owns no table, so
it may not ANALYZE them: `lfd_analyze_history()`, a SECURITY DEFINER function of the tables'
owner, analyzes the tables a history import writes, and nothing else. The import job calls it
when it ends having written many records (app.history.runner). SQLite has no such statistics
problem (and no functions).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 15:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table a history bundle's records land in (app.history.writer, app.history.plans).
TABLES = (
    "deaths",
    "screenings",
    "route_overrides",
    "referrals",
    "referral_transitions",
    "referral_judgements",
    "reviews",
    "review_phase_ratings",
    "review_problems",
    "findings",
    "history_records",
    "action_plans",
    "action_plan_sections",
    "actions",
    "action_updates",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    statements = "\n".join(f"    ANALYZE public.{table};" for table in TABLES)
    op.execute(
        f"""
        CREATE FUNCTION lfd_analyze_history() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
        AS $$
        BEGIN
        {statements}
        END $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS lfd_analyze_history()")
