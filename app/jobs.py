"""The service's periodic jobs, handed to the generic background loop (app.worker) by
``lfd serve`` (app.main) and ``lfd worker`` (app.cli).

Each is ``(name, job)``: the job takes the Database, runs its work in transactions of its own,
is safe to run in several processes at once, and returns how many things it did (logged when
not zero). A new periodic job is registered here, not in app.worker, so that the loop stays
free of domain imports.
"""

from __future__ import annotations

from app.actions.overdue import raise_overdue
from app.audit.chain import seal_audit
from app.history.runner import resume_pending_imports
from app.idempotency.service import purge_expired_records
from app.partitions import maintain_partitions
from app.programmes.cohort import refresh_open_programmes
from app.worker import Job

BACKGROUND_JOBS: tuple[tuple[str, Job], ...] = (
    # PostgreSQL: the audit and event tables' months made ahead, and past months of events
    # closed so that the change feed can skip them (app.partitions).
    ("partitions", maintain_partitions),
    # An open action past its due date raises action.overdue once.
    ("action_overdue", raise_overdue),
    # Idempotency records whose replay window (LFD_IDEMPOTENCY_RETENTION_HOURS) has ended.
    ("idempotency_purge", purge_expired_records),
    # Places the audit rows written since the last pass in the hash chain (app.audit.chain).
    ("audit_seal", seal_audit),
    # History imports posted over HTTP that no process is running (queued, or whose runner
    # died): resumed from their checkpoint.
    ("history_imports", resume_pending_imports),
    # Open review programmes: deaths recorded since the last pass that meet a programme's
    # rules join its cohort, the sample is topped up, and the chosen get their referrals.
    ("programme_cohorts", refresh_open_programmes),
)
