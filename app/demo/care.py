"""What happened to one synthetic death after its screening, as a history record holds it
(docs/history.md): the referrals that were made, each at its own time, and where each had got
to by the demo's today: completed with its review (some late), still open (the recent ones,
and a tail of stalled reviews past their due dates), declined; second-stage SJRs after poor
first stages, a few PSIIs, LeDeR notifications and what LeDeR made of them, and the findings.

The referrals follow the rules as the deployment configures them (the learning sample
included), the routes the ME requested, and the routes the ME declined in writing; plus the
surgical M&M meetings the demo trust holds, and a few required SJRs that were never made in
the early years (the "missed referrals" a retrospective audit finds, fewer each year)."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.demo.draw import facts_of, financial_year
from app.demo.forms import AVOIDABLE, Findings, mm_form, sjr_draft, sjr_form
from app.demo.wording import EXTERNAL, LEDER_OUTCOMES, ON_HOLD, PSII_DECLINED, PSII_OUTCOMES
from app.kit.enums import ReasonCode, Route
from app.kit.time import LONDON, local_date
from app.referrals.rules import RuleConfig, required_routes, with_learning_sample

# The surgical specialties whose deaths go to the demo trust's monthly M&M meeting (besides
# those the deployment's own rules send there).
MM_SPECIALTIES = frozenset(
    {"General Surgery", "Orthopaedics", "Vascular Surgery", "Urology", "Obstetrics"}
)
SURGICAL = MM_SPECIALTIES
# Median days from referral to a submitted first-stage SJR, year by year: the trust gets
# quicker (with a 56-day due date, about 40%, 20% and 8% are late).
SJR_MEDIAN_DAYS = (48.0, 36.0, 26.0)
MISSED_SJR = (0.06, 0.03, 0.005)  # required SJRs never made, year by year
SJR_ALONE = {ReasonCode.unexpected_death, ReasonCode.elective_admission}


@dataclass(frozen=True)
class CareContext:
    at: datetime  # the demo's today: nothing happens after it
    first_year: int  # the first financial year of the demo
    due_days: Mapping[Route, int]
    config: RuleConfig


class CareLedger:
    """Per month of death: the first-stage SJRs made so far, and how many of them stalled.
    The first SJR of every month, and one in every ``STALL_EVERY`` after, is a review that
    stalled (on hold, or begun and never finished): the overdue tail every month shows."""

    STALL_EVERY = 25

    def __init__(self) -> None:
        self.sjrs: Counter[tuple[int, int]] = Counter()
        self.stalled: Counter[tuple[int, int]] = Counter()

    def stalls(self, month: tuple[int, int]) -> bool:
        stalled = self.stalled[month] < 1 + self.sjrs[month] // self.STALL_EVERY
        self.sjrs[month] += 1
        self.stalled[month] += stalled
        return stalled


def _days(rng: random.Random, median: float, sigma: float) -> timedelta:
    return timedelta(days=rng.lognormvariate(math.log(median), sigma))


def _first_wednesday_from(day: date) -> date:
    """The monthly M&M meeting: the first Wednesday of the month, the first one on or after
    ``day``."""
    first = date(day.year, day.month, 1)
    meeting = first + timedelta(days=(2 - first.weekday()) % 7)
    if meeting < day:
        following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        meeting = following + timedelta(days=(2 - following.weekday()) % 7)
    return meeting


class _Care:
    def __init__(
        self,
        seed: int,
        index: int,
        record: dict[str, Any],
        context: CareContext,
        ledger: CareLedger,
    ) -> None:
        # Reproducible synthetic data, not secrets.
        self.rng = random.Random(f"lfd-demo-care:{seed}:{index}")  # noqa: S311
        self.index, self.context, self.ledger = index, context, ledger
        self.death, self.screening = record["death"], record["screening"]
        self.died_at: datetime = self.death["died_at"].astimezone(UTC)
        self.screened_at: datetime = self.screening["screened_at"].astimezone(UTC)
        died_on = local_date(self.died_at)
        self.month = (died_on.year, died_on.month)
        self.year = min(2, max(0, financial_year(self.died_at) - context.first_year))
        self.at = context.at
        self.referrals: list[dict[str, Any]] = []
        self.findings = Findings(self.rng, self.year, self.at)

    def _new(
        self, route: Route, reasons: list[ReasonCode], created: datetime, stage: int | None = None
    ) -> dict[str, Any]:
        label = f"{route.value}{stage or ''}"
        number = 1 + sum(r["reference"].startswith(f"{label}-") for r in self.referrals)
        referral: dict[str, Any] = {
            "reference": f"{label}-{number}",
            "route": route.value,
            "stage": stage,
            "reasons": [reason.value for reason in reasons],
            "created_at": created,
            "due_at": created + timedelta(days=self.context.due_days[route]),
        }
        self.referrals.append(referral)
        return referral

    def _has(self, route: Route) -> bool:
        return any(r["route"] == route.value for r in self.referrals)

    def build(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        config = self.context.config
        facts = facts_of(self.death, self.screening)
        requested = [Route(route) for route in self.screening["routes_requested"]]
        required = with_learning_sample(required_routes(facts, config), requested, facts, config)
        declined = {override["route"] for override in self.screening["overrides"]}
        wanted = {r: list(why) for r, why in required.items() if r.value not in declined}
        for route in requested:
            wanted.setdefault(route, []).append(ReasonCode.me_requested)
        specialty = self.death["specialty_at_death"]
        if specialty in MM_SPECIALTIES and Route.mm not in wanted and "mm" not in declined:
            wanted[Route.mm] = [ReasonCode.specialty_mm]
        sjr = wanted.get(Route.sjr)
        if sjr and set(sjr) <= SJR_ALONE and self.rng.random() < MISSED_SJR[self.year]:
            del wanted[Route.sjr]  # never referred: today's rules would have
        for route in (
            Route.leder,
            Route.coroner,
            Route.psii,
            Route.cdr,
            Route.pmrt,
            Route.mnsi,
            Route.complaint,
        ):
            if route in wanted:
                created = self.screened_at + timedelta(hours=self.rng.uniform(0.1, 20))
                if route is Route.leder:
                    self.leder(wanted[route], created)
                else:
                    self.external(route, wanted[route], created)
        if Route.mm in wanted:
            self.mm(wanted[Route.mm], specialty)
        if Route.sjr in wanted:
            created = self.screened_at + timedelta(hours=self.rng.uniform(2, 72))
            self.sjr(wanted[Route.sjr], created)
        return [r for r in self.referrals if r["created_at"] <= self.at], self.findings.items

    # --- the routes ----------------------------------------------------------------------------

    def _open(self, referral: dict[str, Any], claimed: datetime | None) -> None:
        if claimed is not None and claimed <= self.at:
            referral.update(status="in_progress", claimed_at=claimed)
        else:
            referral["status"] = "ready"

    def _phases(self) -> list[str]:
        stay = self.death["admitted_at"] and (self.died_at - self.death["admitted_at"])
        phases = ["admission_initial"]
        if stay and stay > timedelta(days=1):
            phases.append("ongoing")
        if self.death["specialty_at_death"] in SURGICAL and self.rng.random() < 0.6:
            phases += ["procedure", "perioperative"]
        if self.rng.random() < 0.85:
            phases.append("end_of_life")
        return phases

    def sjr(self, reasons: list[ReasonCode], created: datetime) -> None:
        """A first-stage SJR, and what followed it: a second stage after poor care or an
        avoidable death, and a PSII after an avoidable second stage or a suspected incident."""
        stalled = self.ledger.stalls(self.month)
        outcome = self._sjr(reasons, created, 1, None, stalled)
        if outcome is None:
            return
        avoidability, overall, submitted, suspected = outcome
        if avoidability <= AVOIDABLE or overall <= 2:
            second = submitted + timedelta(days=self.rng.uniform(1, 10))
            following = self._sjr([ReasonCode.second_stage], second, 2, avoidability, False)
            if following is not None and following[0] <= AVOIDABLE:
                self.psii(ReasonCode.more_likely_than_not_avoidable, following[2])
        if suspected:
            self.psii(ReasonCode.patient_safety_incident, submitted)

    def _sjr(
        self,
        reasons: list[ReasonCode],
        created: datetime,
        stage: int,
        earlier: int | None,
        stalled: bool,
    ) -> tuple[int, int, datetime, bool] | None:
        referral = self._new(Route.sjr, reasons, created, stage)
        median = SJR_MEDIAN_DAYS[self.year] if stage == 1 else 30.0
        took = _days(self.rng, median, 0.55)
        claimed = created + min(took * 0.3, timedelta(days=self.rng.uniform(0.5, 10)))
        submitted = created + took
        phases = self._phases()
        if stalled or submitted > self.at:
            self._open(referral, claimed)
            if referral["status"] == "in_progress":
                draft = sjr_draft(self.rng, phases)
                referral["reviewer"] = draft["reviewer"]["name"]
                if stalled and self.rng.random() < 0.4:
                    referral.update(status="on_hold", status_reason=ON_HOLD)
                else:
                    referral["review"] = {"status": "draft", "started_at": claimed, "form": draft}
            return None
        form = sjr_form(self.rng, phases, earlier, self.findings, referral["reference"], submitted)
        referral.update(
            status="completed",
            claimed_at=claimed,
            closed_at=submitted,
            reviewer=form["reviewer"]["name"],
            review={"started_at": claimed, "submitted_at": submitted, "form": form},
        )
        overall = form["phases"][-1]["rating"]
        return form["avoidability"], overall, submitted, form["patient_safety_incident_suspected"]

    def mm(self, reasons: list[ReasonCode], specialty: str) -> None:
        created = self.screened_at + timedelta(hours=self.rng.uniform(1, 48))
        referral = self._new(Route.mm, reasons, created)
        meeting_on = _first_wednesday_from(local_date(created) + timedelta(days=7))
        meeting = datetime(meeting_on.year, meeting_on.month, meeting_on.day, 13, tzinfo=LONDON)
        submitted = meeting.astimezone(UTC) + timedelta(days=self.rng.uniform(0.2, 6))
        if submitted > self.at:
            self._open(referral, created + timedelta(days=self.rng.uniform(1, 7)))
            return
        form = mm_form(
            self.rng, meeting_on, specialty, self.findings, referral["reference"], submitted
        )
        referral.update(
            status="completed",
            claimed_at=created,
            closed_at=submitted,
            reviewer=form["presenter"],
            review={"started_at": created, "submitted_at": submitted, "form": form},
        )
        follow = submitted + timedelta(days=self.rng.uniform(1, 5))
        if form["outcome"] == "escalate_sjr" and not self._has(Route.sjr):
            self.sjr([ReasonCode.mm_escalation], follow)
        if form["outcome"] == "escalate_psii":
            self.psii(ReasonCode.patient_safety_incident, follow)

    def leder(self, reasons: list[ReasonCode], created: datetime) -> None:
        """Notified to LeDeR within days (about one in eight after the seven-day due date);
        LeDeR's own review then runs for months: notified, initial review, focused review,
        completed."""
        referral = self._new(Route.leder, reasons, created)
        notified = created + _days(self.rng, 2.5, 0.8)
        if notified > self.at:
            self._open(referral, None)
            return
        months = (self.at - notified).days / 30.4
        if months < 1:
            status = "notified"
        elif months < 4:
            status = "initial_review"
        elif months < 8:
            status = self.rng.choice(("initial_review", "focused_review", "focused_review"))
        else:
            status = "completed" if self.rng.random() < 0.85 else "focused_review"
        reference = f"LDR{local_date(notified).year}{self.index:06d}"
        form: dict[str, Any] = {
            "instrument": "leder",
            "notified_at": notified,
            "leder_reference": reference,
            "status": status,
        }
        if status == "completed":
            form["outcome_summary"] = self.rng.choice(LEDER_OUTCOMES)
        referral.update(
            status="completed",
            closed_at=notified,
            external_reference=reference,
            review={"submitted_at": notified, "form": form},
        )

    def psii(self, reason: ReasonCode, after: datetime) -> None:
        if self._has(Route.psii):
            return
        created = after + timedelta(days=self.rng.uniform(0.5, 5))
        self.external(Route.psii, [reason], created)

    def external(self, route: Route, reasons: list[ReasonCode], created: datetime) -> None:
        """A referral to an outside body (the coroner, child death review, PMRT, MNSI, the
        complaints team, a PSII): made within hours or days, its review then under way or
        completed by the demo's today; one PSII in five declined for another response."""
        organisation, prefix, outcome = EXTERNAL[route.value]
        referral = self._new(route, reasons, created)
        if route is Route.coroner:
            referred = created + _days(self.rng, 0.6, 1.0)  # due in two days: some are late
        else:
            referred = created + timedelta(days=self.rng.uniform(1, 8))
        if referred > self.at:
            self._open(referral, None)
            return
        if route is Route.psii and self.rng.random() < 0.2:
            referral.update(status="declined", closed_at=referred, status_reason=PSII_DECLINED)
            return
        took = timedelta(days=self.rng.uniform(*{Route.complaint: (20, 60)}.get(route, (60, 240))))
        completed = referred + took
        reference = f"{prefix}-{local_date(referred).year}-{self.index:06d}"
        form: dict[str, Any] = {
            "instrument": "external",
            "reference": reference,
            "organisation": organisation,
            "referred_at": referred,
            "status": "in_progress",
        }
        if completed <= self.at:
            form.update(
                status="completed",
                outcome=self.rng.choice(PSII_OUTCOMES) if route is Route.psii else outcome,
                completed_at=completed,
            )
        elif route is Route.coroner and self.at - referred < timedelta(days=14):
            form["status"] = "accepted"
        referral.update(
            status="completed",
            closed_at=referred,
            external_reference=reference,
            review={"submitted_at": referred, "form": form},
        )


def care_of(
    seed: int, index: int, record: dict[str, Any], context: CareContext, ledger: CareLedger
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The referrals (each with its review) and the findings of death ``index`` of ``seed``,
    as they stood on the demo's today."""
    return _Care(seed, index, record, context, ledger).build()
