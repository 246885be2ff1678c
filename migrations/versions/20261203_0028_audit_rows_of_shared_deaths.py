"""The audit log of a shared death is its organisation's (issue 16, acceptance review).

A recipient of a share read, through the audit log, every row about the shared death: the
recording organisation's own staff's reads and changes included. Now an audit row is visible
when it was written under one of the client's organisations (the recipient's own accesses to
the shared death among them), or when it is about a death the client's organisations record
(so the recording organisation still sees everyone's accesses to its deaths, the recipient's
included). A death seen only through a share no longer opens its rows.

The query layer says the same (app.scoping, the AuditEvent criteria). The rule keeps 0021's
shape: the scope read once per statement (InitPlan), the death probed by its key (OFFSET 0).
SQLite has no policies.

Revision ID: 0028
Revises: 0026
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVERYTHING = "(SELECT lfd_scope_all())"
ORGANISATIONS = "ANY ((SELECT lfd_scope_organisations())::uuid[])"

# 0025's rule (an audit row names a page's patients, death_ids): any death the client sees, a
# shared one included.
BEFORE = (
    f"organisation_id = {ORGANISATIONS}"  # noqa: S608
    " OR (cardinality(death_ids) > 0 AND EXISTS (SELECT 1 FROM deaths d"
    " WHERE d.id = ANY (audit_events.death_ids) OFFSET 0))"
)
# Only a death the client's organisations record (0025's "who read patient X" function,
# lfd_audit_naming, applies the same rule).
AFTER = (
    f"organisation_id = {ORGANISATIONS}"  # noqa: S608
    " OR (cardinality(death_ids) > 0 AND EXISTS (SELECT 1 FROM deaths d"
    " WHERE d.id = ANY (audit_events.death_ids)"
    f" AND d.organisation_id = {ORGANISATIONS} OFFSET 0))"
)


def _policy(rule: str) -> None:
    condition = f"{EVERYTHING} OR {rule}"
    op.execute(
        f"ALTER POLICY lfd_scope ON audit_events USING ({condition}) WITH CHECK ({condition})"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _policy(AFTER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _policy(BEFORE)
