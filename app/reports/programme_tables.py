"""The programme report's tables that are not care ratings: the definition, how the cohort was
selected, where it stands, the programme's questions, the ME's referral decisions, second
opinions, the relatives' view and the recommendations (docs/programmes.md)."""

from __future__ import annotations

from typing import Any

from app.models import ActionPlan, Programme
from app.programmes.schemas import RuleCount
from app.reports.model import Column, Table, percent
from app.reports.programme_figures import (
    CohortFigures,
    OpinionFigures,
    QuestionFigures,
    RecommendationFigures,
    ReviewFigures,
)

RULE_WORDS = {
    "place_of_death": "Left out by place of death (and the discharge window)",
    "age": "Left out by age at death",
    "excluded_ward": "Left out: an excluded ward",
    "excluded_specialty": "Left out: an excluded specialty",
}


def _rules_text(rules: dict[str, Any]) -> str:
    parts = []
    places = rules.get("places_of_death")
    parts.append(
        "died " + (", ".join(p.replace("_", " ") for p in places) if places else "anywhere")
    )
    if rules.get("discharged_within_days"):
        parts.append(f"or within {rules['discharged_within_days']} days of discharge")
    if rules.get("age_min") is not None or rules.get("age_max") is not None:
        low, high = rules.get("age_min"), rules.get("age_max")
        parts.append(
            f"aged {low} to {high}" if low is not None and high is not None
            else f"aged {low} or over" if low is not None
            else f"aged {high} or under"
        )  # fmt: skip
    if rules.get("excluded_wards"):
        parts.append("not on " + ", ".join(rules["excluded_wards"]))
    if rules.get("excluded_specialties"):
        parts.append("not under " + ", ".join(rules["excluded_specialties"]))
    return "; ".join(parts)


def _sampling_text(programme: Programme) -> str:
    if programme.sampling == "number":
        chosen = f"{programme.sample_size} deaths"
    elif programme.sampling == "percent":
        chosen = f"{programme.sample_percent}% of the deaths (rounded up)"
    else:
        chosen = "every death"
    return f"{chosen}, in the order of the sample key (seed {programme.seed})"


def definition_table(programme: Programme, plan: ActionPlan | None) -> Table:
    items = [
        ("Programme", programme.name),
        ("Code", programme.code),
        ("Purpose", programme.purpose),
        ("Owner", programme.owner),
        (
            "Period of death",
            f"{programme.period_start.isoformat()} to {programme.period_end.isoformat()}",
        ),
        ("Status", programme.status),
        ("Cohort", _rules_text(programme.rules)),
        ("Reviewed", _sampling_text(programme)),
        (
            "Instrument",
            "Structured Judgement Review"
            if programme.instrument == "sjr"
            else programme.instrument,
        ),
        (
            "Routine SJRs",
            "a chosen death referred for a routine SJR counts it"
            if programme.link_routine_reviews
            else "every chosen death is reviewed by the programme",
        ),
        ("Action plan", plan.title if plan is not None else None),
        ("Plan approved by", programme.plan_approved_by),
        (
            "Plan approved on",
            programme.plan_approved_on.isoformat() if programme.plan_approved_on else None,
        ),
    ]
    return Table(
        "programme",
        "The programme",
        [Column("item", "Item", "text"), Column("value", "Value", "text")],
        [{"item": item, "value": value} for item, value in items],
    )


def selection_table(rules: Any, counts: list[RuleCount], cohort: CohortFigures) -> Table:
    rows: list[dict[str, Any]] = [
        {"step": "Deaths in the period (of the programme's organisations)", "deaths": rules.deaths}
    ]
    rows += [{"step": RULE_WORDS[c.rule], "deaths": c.excluded} for c in counts]
    rows += [
        {"step": "Meeting the rules", "deaths": rules.meeting},
        {"step": "In the cohort", "deaths": cohort.in_cohort},
        {"step": "Taken out of the cohort by hand", "deaths": cohort.excluded},
    ]
    return Table(
        "selection",
        "Selecting the cohort",
        [
            Column("step", "Step", "text"),
            Column(
                "deaths",
                "Deaths",
                "int",
                "Counted now, as the rules stand: a death left out by two rules counts under "
                "the first, in this order.",
            ),
        ],
        rows,
        note="'In the cohort' can differ from 'Meeting the rules' while a late death waits for "
        "the next pass, or after a death's record was corrected.",
    )


def cohort_table(cohort: CohortFigures, scores: ReviewFigures) -> Table:
    reviewed = scores.total()
    rated = reviewed - scores.total(overall=None)
    return Table(
        "cohort",
        "The cohort: chosen, reviewed and rated",
        [
            Column("in_cohort", "In cohort", "int", "Deaths in the cohort (not excluded by hand)."),
            Column(
                "selected", "Chosen for review", "int", "Deaths of the cohort chosen for review."
            ),
            Column("selected_pct", "% chosen", "percent", "Chosen / in cohort."),
            Column("reviewed", "Reviewed", "int", "Chosen deaths whose first review is submitted."),
            Column("reviewed_pct", "% of chosen reviewed", "percent", "Reviewed / chosen."),
            Column(
                "rated", "Rated", "int", "Reviewed deaths whose first review rates overall care."
            ),
            Column("rated_pct", "% of reviewed rated", "percent", "Rated / reviewed."),
            Column(
                "linked",
                "Counting a routine SJR",
                "int",
                "Chosen deaths that count their routine SJR instead of a programme review.",
            ),
            Column(
                "awaiting_review",
                "Awaiting review",
                "int",
                "Chosen deaths not yet reviewed (and not declined or cancelled).",
            ),
            Column(
                "not_reviewed",
                "Not to be reviewed",
                "int",
                "Chosen deaths whose programme referral was declined or cancelled.",
            ),
            Column(
                "joined_late",
                "Joined late",
                "int",
                "Deaths in the cohort that joined after it was built.",
            ),
            Column(
                "excluded",
                "Excluded",
                "int",
                "Deaths taken out of the cohort by hand, with a reason.",
            ),
        ],
        [
            {
                "in_cohort": cohort.in_cohort,
                "selected": cohort.selected,
                "selected_pct": percent(cohort.selected, cohort.in_cohort),
                "reviewed": reviewed,
                "reviewed_pct": percent(reviewed, cohort.selected),
                "rated": rated,
                "rated_pct": percent(rated, reviewed),
                "linked": cohort.linked,
                "awaiting_review": max(cohort.selected - reviewed - cohort.withdrawn, 0),
                "not_reviewed": cohort.withdrawn,
                "joined_late": cohort.late,
                "excluded": cohort.excluded,
            }
        ],
    )


def answers_table(questions: list[QuestionFigures]) -> Table:
    rows = []
    for figures in questions:
        question = figures.question
        choices = figures.choices
        scale_total = sum(value * count for value, count in figures.scale.items())
        scale_count = sum(figures.scale.values())
        decided = choices.get("yes", 0) + choices.get("no", 0)
        rows.append(
            {
                "question": question.text,
                "code": question.code,
                "kind": question.kind,
                "answered": figures.answered,
                "yes": choices.get("yes", 0) if question.kind == "yes_no" else None,
                "no": choices.get("no", 0) if question.kind == "yes_no" else None,
                "not_applicable": choices.get("not_applicable", 0)
                if question.kind == "yes_no"
                else None,
                "yes_pct": percent(choices.get("yes", 0), decided)
                if question.kind == "yes_no"
                else None,
                **{
                    f"scale_{value}": figures.scale.get(value, 0)
                    if question.kind == "scale"
                    else None
                    for value in range(1, 6)
                },
                "scale_mean": round_half_up(scale_total, scale_count)
                if question.kind == "scale"
                else None,
            }
        )
    return Table(
        "questions",
        "The programme's questions",
        [
            Column("question", "Question", "text"),
            Column("code", "Code", "text"),
            Column("kind", "Kind", "text", "yes_no, scale (1-5) or text."),
            Column(
                "answered", "Answered", "int", "Cases of the cohort whose first opinion answers it."
            ),
            Column("yes", "Yes", "int"),
            Column("no", "No", "int"),
            Column("not_applicable", "Not applicable", "int"),
            Column("yes_pct", "% yes", "percent", "Yes / (yes + no): not applicable is left out."),
            *(Column(f"scale_{value}", f"Scale {value}", "int") for value in range(1, 6)),
            Column(
                "scale_mean",
                "Mean",
                "number",
                "The mean of the scale answers, to one decimal place.",
            ),
        ],
        rows,
        note="Text answers are counted, never shown: they may name the patient.",
    )


def round_half_up(total: int, count: int) -> float | None:
    """total / count to one decimal place, halves rounded up (None for no answers)."""
    if count == 0:
        return None
    tenths, remainder = divmod(total * 10, count)
    if remainder * 2 >= count:
        tenths += 1
    return tenths / 10


JUDGEMENTS = (
    ("appropriate", "Appropriate"),
    ("possibly_missed", "Possibly missed"),
    ("should_have_been_referred", "Missed: should have been referred"),
)


def judgements_table(judged: dict[str, int], cohort: CohortFigures) -> Table:
    total = sum(judged.get(key, 0) for key, _ in JUDGEMENTS)
    rows: list[dict[str, Any]] = [
        {
            "judgement": label,
            "deaths": judged.get(key, 0),
            "deaths_pct": percent(judged.get(key, 0), total),
        }
        for key, label in JUDGEMENTS
    ]
    rows += [
        {"judgement": "Judged", "deaths": total, "deaths_pct": None},
        {"judgement": "Not judged", "deaths": max(cohort.in_cohort - total, 0), "deaths_pct": None},
    ]
    return Table(
        "me_referral_decisions",
        "The medical examiner's referral decisions, judged",
        [
            Column(
                "judgement",
                "Judgement",
                "text",
                "A governance reviewer's retrospective judgement of the ME's referral decision "
                "(PUT /v1/screenings/{id}/referral-judgement).",
            ),
            Column("deaths", "Deaths", "int", "Deaths of the cohort with this judgement."),
            Column("deaths_pct", "% of judged", "percent", "Of the cohort's deaths judged."),
        ],
        rows,
    )


def opinions_table(opinions: OpinionFigures) -> Table:
    compared = sum(opinions.agreed.get(key, 0) for key in ("same", "one_apart", "further_apart"))
    return Table(
        "second_opinions",
        "Second opinions",
        [
            Column(
                "requested",
                "Asked for",
                "int",
                "Second opinions asked for on the cohort's chosen deaths.",
            ),
            Column("given", "Given", "int", "Of those, submitted."),
            Column(
                "same_rating",
                "Same overall rating",
                "int",
                "Given opinions rating overall care as the case's first review does.",
            ),
            Column("one_apart", "One point apart", "int"),
            Column("further_apart", "Two or more apart", "int"),
            Column("same_rating_pct", "% same", "percent", "Same / those compared (both rated)."),
        ],
        [
            {
                "requested": opinions.requested,
                "given": opinions.given,
                "same_rating": opinions.agreed.get("same", 0),
                "one_apart": opinions.agreed.get("one_apart", 0),
                "further_apart": opinions.agreed.get("further_apart", 0),
                "same_rating_pct": percent(opinions.agreed.get("same", 0), compared),
            }
        ],
        note="Both views are kept on the case; the figures above count its first review.",
    )


def relatives_table(found: dict[str, int]) -> Table:
    return Table(
        "relatives",
        "The relatives' view",
        [
            Column("reviewed", "Reviewed", "int", "Chosen deaths with a submitted first review."),
            Column(
                "contacted",
                "Bereaved contacted by the ME",
                "int",
                "Of those, deaths whose screening records contact with the bereaved.",
            ),
            Column(
                "concerns",
                "Concerns raised to the ME",
                "int",
                "Deaths whose screening or contact log records a concern of the bereaved.",
            ),
            Column(
                "recorded",
                "View recorded by the reviewer",
                "int",
                "Reviewed deaths whose reviewer recorded whether the relatives' view was sought.",
            ),
            Column("sought", "Sought", "int"),
            Column("not_sought", "Not sought", "int"),
            Column("not_applicable", "Not applicable", "int"),
            Column("sought_pct", "% sought", "percent", "Sought / (sought + not sought)."),
        ],
        [
            {
                "reviewed": found["reviewed"],
                "contacted": found["contacted"],
                "concerns": found["concerns"],
                "recorded": found["recorded"],
                "sought": found["yes"],
                "not_sought": found["no"],
                "not_applicable": found["not_applicable"],
                "sought_pct": percent(found["yes"], found["yes"] + found["no"]),
            }
        ],
    )


def recommendations_table(
    found: list[RecommendationFigures], programme: Programme, plan: ActionPlan | None
) -> Table:
    approval = (
        f"Action plan '{plan.title}'"
        + (
            f", approved by {programme.plan_approved_by}"
            if programme.plan_approved_by
            else ", not yet approved"
        )
        + (f" on {programme.plan_approved_on.isoformat()}" if programme.plan_approved_on else "")
        + "."
        if plan is not None
        else "No action plan linked yet."
    )
    return Table(
        "recommendations",
        "Recommendations by key area",
        [
            Column("key_area", "Key area", "text"),
            Column("key_area_title", "Area", "text"),
            Column("reference", "Ref", "text"),
            Column("recommendation", "Recommendation", "text"),
            Column("actions", "Actions", "int", "Actions of the programme's plan linked to it."),
            Column("complete", "Complete", "int", "Of those, complete (status 5)."),
            Column(
                "overdue",
                "Overdue",
                "int",
                "Of those, past their last on-time day and not complete.",
            ),
            Column("complete_pct", "% complete", "percent", "Complete / actions."),
        ],
        [
            {
                "key_area": f.recommendation.key_area,
                "key_area_title": f.recommendation.key_area_title,
                "reference": f.recommendation.reference,
                "recommendation": f.recommendation.text,
                "actions": f.actions,
                "complete": f.complete,
                "overdue": f.overdue,
                "complete_pct": percent(f.complete, f.actions),
            }
            for f in found
        ],
        note=approval,
    )
