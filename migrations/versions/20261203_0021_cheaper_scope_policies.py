"""Cheaper row-level security (issue 16, performance): the policies read the data scope once
per statement, never hash-scan every death for a page of referrals, and the reports' covering
index of deaths carries the column the deaths' policy reads.

1. The scope, once per statement. Migration 0019's policies call lfd_scope_all(),
   lfd_scope_organisations() and lfd_scope_shared_deaths() in each row's test: SQL functions,
   inlined, so every row checked ran current_setting() up to three times and parsed the
   organisations and the shared deaths from text into uuid[]. Here each call is a scalar
   subquery, `(SELECT lfd_scope_all())`, which PostgreSQL plans as an InitPlan: computed when
   the statement starts, a parameter in each row's test.
2. A row's death, by its key. A table that defers to its parent (a referral is visible when
   its death is) says so with EXISTS (SELECT 1 FROM deaths d WHERE d.id = referrals.death_id).
   PostgreSQL may run such an EXISTS as a hashed subplan: read every visible death once, then
   look each referral up in the hash. It chooses by the rows it expects to test, blind to a
   LIMIT, so a claim (LIMIT 1) or a queue page (LIMIT 50) in a region read every death of the
   deployment, policy and all, to check a handful of referrals (28-56 ms at 20,000 deaths,
   more as the deployment grows; docs/benchmarks.md). `OFFSET 0` in the subquery stops that
   rewrite (PostgreSQL leaves an EXISTS with an OFFSET as it is: the long-standing
   optimisation fence): each row's check is one probe of its parent's primary key.
3. ix_deaths_died_on_report (migration 0006) gains organisation_id: the reports read a
   period's deaths from that index alone, which the deaths' policy (it reads
   organisation_id) had turned into a read of the table.

The rules are otherwise those of 0019, word for word; the functions and the settings are
unchanged (app.scoping sets them the same way). SQLite has no policies; its index is the same.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0019's rules, as it wrote them (the downgrade puts them back).
DEATH_VISIBLE = "EXISTS (SELECT 1 FROM deaths d WHERE d.id = {table}.death_id)"
DEATH_KEYED = (
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
RULES: dict[str, str] = {
    "deaths": "organisation_id = ANY (lfd_scope_organisations())"
    " OR id = ANY (lfd_scope_shared_deaths())",
    **{table: DEATH_VISIBLE.format(table=table) for table in DEATH_KEYED},
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

# Each function call as a scalar subquery: an InitPlan, run once per statement. `= ANY` needs
# the cast, or it would read the parenthesised subquery as a set of rows rather than an array.
# Each parent's EXISTS probes the parent row by row (OFFSET 0: never a hashed subplan).
CHEAPER = {
    "ANY (lfd_scope_organisations())": "ANY ((SELECT lfd_scope_organisations())::uuid[])",
    "ANY (lfd_scope_shared_deaths())": "ANY ((SELECT lfd_scope_shared_deaths())::uuid[])",
    "death_id)": "death_id OFFSET 0)",
    "review_id)": "review_id OFFSET 0)",
    "screening_id)": "screening_id OFFSET 0)",
    "plan_id)": "plan_id OFFSET 0)",
    "action_id)": "action_id OFFSET 0)",
}

# The reports' cohort index (0006), and now the column the deaths' policy reads.
REPORT_INDEX = "ix_deaths_died_on_report"
REPORT_COLUMNS = [
    "place_of_death",
    "within_30_days_of_discharge",
    "learning_disability",
    "autism",
    "age_at_death",
    "site",
    "specialty_at_death",
    "id",
]


def cheaper(rule: str) -> str:
    for written, instead in CHEAPER.items():
        rule = rule.replace(written, instead)
    return rule


def _policies(rule_of: dict[str, str], everything: str) -> None:
    for table, rule in rule_of.items():
        condition = f"{everything} OR {rule}"
        op.execute(
            f"ALTER POLICY lfd_scope ON {table} USING ({condition}) WITH CHECK ({condition})"
        )


def _report_index(columns: list[str]) -> None:
    op.drop_index(REPORT_INDEX, table_name="deaths")
    op.create_index(REPORT_INDEX, "deaths", ["died_on"], postgresql_include=columns)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _policies({table: cheaper(rule) for table, rule in RULES.items()}, "(SELECT lfd_scope_all())")
    _report_index([*REPORT_COLUMNS, "organisation_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _report_index(REPORT_COLUMNS)
    _policies(RULES, "lfd_scope_all()")
