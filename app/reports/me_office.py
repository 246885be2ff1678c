"""The medical examiner office's report (issue 15): its targets measured, coroner referrals by
reason, registrar rejections, the contact log with the bereaved, and the governance judgements
of the ME's referral decisions by examiner and criterion.

The cohort is the deaths that died in the period (UK local date), filtered by site, specialty
and age band, followed through their screening whenever it happened. Targets:
- notification to scrutiny: hours from the first notification (`notified_at`) to the
  screening, for deaths that were notified;
- notes to scrutiny within 24 hours: screenings with both times, and the share within 24 h;
- death to MCCD within LFD_ME_MCCD_TARGET_DAYS (3) days: screenings with an MCCD issue time.
Aggregates only: no patient identifier, no free text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from statistics import median
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.kit.time import now
from app.models import Death, ReferralJudgement, Screening
from app.reports.filters import ReportFilters
from app.reports.model import Column, Period, Report, Table, percent

APPLICABLE_FILTERS = ("site", "specialty", "age_band")
HOUR = timedelta(hours=1)


def _hours(values: list[float]) -> float | None:
    return round(median(values), 1) if values else None


async def build_me_office(
    session: AsyncSession, period: Period, filters: ReportFilters, settings: Settings
) -> Report:
    filters.require_only("me-office", *APPLICABLE_FILTERS)
    cohort = (
        select(Death.id, Death.died_at, Death.notified_at)
        .where(Death.died_on >= period.start, Death.died_on <= period.end)
        .where(*filters.death_conditions(settings))
    ).subquery()
    deaths = (await session.execute(select(cohort))).all()
    screenings = (
        await session.execute(
            select(
                cohort.c.died_at,
                cohort.c.notified_at,
                Screening.screened_at,
                Screening.notes_received_at,
                Screening.scrutiny_completed_at,
                Screening.mccd_issued_at,
                Screening.coroner_notified,
                Screening.coroner_reason,
                Screening.scrutiny,
            ).join(Screening, Screening.death_id == cohort.c.id)
        )
    ).all()
    judged = (
        await session.execute(
            select(
                Screening.examiner_name,
                Screening.examiner_gmc_number,
                ReferralJudgement.criterion,
                ReferralJudgement.judgement,
            )
            .join(ReferralJudgement, ReferralJudgement.screening_id == Screening.id)
            .join(cohort, cohort.c.id == Screening.death_id)
        )
    ).all()
    target = timedelta(days=settings.me_mccd_target_days)
    notified_hours = [
        (row.screened_at - row.notified_at) / HOUR for row in screenings if row.notified_at
    ]
    notes = [row for row in screenings if row.notes_received_at and row.scrutiny_completed_at]
    within_24 = sum(
        1 for row in notes if row.scrutiny_completed_at - row.notes_received_at <= 24 * HOUR
    )
    mccd = [row for row in screenings if row.mccd_issued_at]
    mccd_on_time = sum(1 for row in mccd if row.mccd_issued_at - row.died_at <= target)
    targets = Table(
        "targets",
        "Medical examiner targets",
        [
            Column("deaths", "Deaths"),
            Column("notified", "Notified before screening"),
            Column("screened", "Screened"),
            Column("awaiting_screening", "Awaiting screening"),
            Column(
                "notification_to_scrutiny_median_hours",
                "Notification to scrutiny, median hours",
                "number",
            ),
            Column("notes_to_scrutiny_measured", "Notes to scrutiny measured"),
            Column("scrutiny_within_24_hours", "Scrutiny within 24 h of the notes"),
            Column("scrutiny_within_24_hours_percent", "Within 24 h", "percent"),
            Column("mccd_issued", "MCCD issued"),
            Column(
                "mccd_within_target", f"MCCD within {settings.me_mccd_target_days} days of death"
            ),
            Column("mccd_within_target_percent", "MCCD on time", "percent"),
        ],
        [
            {
                "deaths": len(deaths),
                "notified": sum(1 for row in deaths if row.notified_at),
                "screened": len(screenings),
                "awaiting_screening": len(deaths) - len(screenings),
                "notification_to_scrutiny_median_hours": _hours(notified_hours),
                "notes_to_scrutiny_measured": len(notes),
                "scrutiny_within_24_hours": within_24,
                "scrutiny_within_24_hours_percent": percent(within_24, len(notes)),
                "mccd_issued": len(mccd),
                "mccd_within_target": mccd_on_time,
                "mccd_within_target_percent": percent(mccd_on_time, len(mccd)),
            }
        ],
    )
    reasons = Counter(row.coroner_reason for row in screenings if row.coroner_notified)
    coroner = Table(
        "coroner_referrals",
        "Coroner referrals by reason",
        [Column("reason", "Reason", "text"), Column("deaths", "Deaths")],
        [{"reason": reason, "deaths": count} for reason, count in sorted(reasons.items())],
    )
    return Report(
        key="me-office",
        title="Medical examiner office",
        period=period,
        filters=filters.as_dict(),
        tables=[
            targets,
            coroner,
            _registrar(screenings),
            *_bereaved(screenings),
            _judgements(judged),
        ],
        generated_at=now(),
    )


def _registrar(screenings: Sequence[Any]) -> Table:
    rejections = [
        r for row in screenings for r in (row.scrutiny or {}).get("registrar_rejections", [])
    ]
    rejected = sum(1 for row in screenings if (row.scrutiny or {}).get("registrar_rejections"))
    return Table(
        "registrar_rejections",
        "Registrar rejections",
        [
            Column("screened", "Screened"),
            Column("mccds_rejected", "MCCDs rejected"),
            Column("rejections", "Rejections"),
            Column("reissued", "Reissued"),
            Column("rejected_percent", "Rejected", "percent"),
        ],
        [
            {
                "screened": len(screenings),
                "mccds_rejected": rejected,
                "rejections": len(rejections),
                "reissued": sum(1 for r in rejections if r.get("reissued_at")),
                "rejected_percent": percent(rejected, len(screenings)),
            }
        ],
    )


def _bereaved(screenings: Sequence[Any]) -> list[Table]:
    contacts = [c for row in screenings for c in (row.scrutiny or {}).get("bereaved_contacts", [])]
    with_concerns = sum(
        1
        for row in screenings
        if any(c.get("concerns") for c in (row.scrutiny or {}).get("bereaved_contacts", []))
    )
    summary = Table(
        "bereaved_contacts",
        "Contacts with the bereaved",
        [
            Column("screened", "Screened"),
            Column("deaths_with_contacts", "Deaths with a logged contact"),
            Column("contacts", "Contacts"),
            Column("deaths_with_concerns", "Deaths with concerns raised"),
            Column("contacts_with_concerns", "Contacts raising concerns"),
            Column("contacts_with_compliments", "Contacts with compliments"),
            Column("want_involvement", "Want to be involved in a review"),
        ],
        [
            {
                "screened": len(screenings),
                "deaths_with_contacts": sum(
                    1 for row in screenings if (row.scrutiny or {}).get("bereaved_contacts")
                ),
                "contacts": len(contacts),
                "deaths_with_concerns": with_concerns,
                "contacts_with_concerns": sum(1 for c in contacts if c.get("concerns")),
                "contacts_with_compliments": sum(1 for c in contacts if c.get("compliments")),
                "want_involvement": sum(1 for c in contacts if c.get("wants_involvement")),
            }
        ],
    )
    methods = Counter(c["method"] for c in contacts)
    by_method = Table(
        "bereaved_contacts_by_method",
        "Contacts with the bereaved by method",
        [Column("method", "Method", "text"), Column("contacts", "Contacts")],
        [{"method": method, "contacts": count} for method, count in sorted(methods.items())],
    )
    return [summary, by_method]


def _judgements(rows: Sequence[Any]) -> Table:
    counts: Counter[tuple[str, str, str]] = Counter()
    for row in rows:
        examiner = f"{row.examiner_name} ({row.examiner_gmc_number})"
        counts[(examiner, row.criterion or "", row.judgement)] += 1
    return Table(
        "referral_judgements",
        "Referral decisions judged in retrospect, by examiner and criterion",
        [
            Column("examiner", "Examiner", "text"),
            Column("criterion", "Criterion", "text"),
            Column("appropriate", "Appropriate"),
            Column("possibly_missed", "Possibly a missed opportunity"),
            Column("should_have_been_referred", "Should have been referred"),
        ],
        [
            {
                "examiner": examiner,
                "criterion": criterion or None,
                **{
                    judgement: counts[(examiner, criterion, judgement)]
                    for judgement in ("appropriate", "possibly_missed", "should_have_been_referred")
                },
            }
            for examiner, criterion in sorted({(e, c) for e, c, _ in counts})
        ],
    )
