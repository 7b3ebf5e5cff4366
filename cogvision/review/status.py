"""Review progress: per-stage counts, per-reviewer progress, agreement (Krippendorff's alpha).

Krippendorff's alpha (nominal) is used rather than Fleiss' kappa because reviewers judge different
subsets while a review is under way: alpha handles missing judgements and any number of raters per
unit. Units are sub-questions; values are valid/invalid (stage 1) and the chosen function (stage 2).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from itertools import permutations

from cogvision.review.aggregate import ReviewRules, aggregate, latest_per_reviewer
from cogvision.review.client import ReviewClient
from cogvision.review.pull import TaskReview, collect


def krippendorff_alpha_nominal(units: Iterable[Iterable[Hashable]]) -> float | None:
    """Nominal Krippendorff's alpha over units given as the values their raters assigned.

    Units with fewer than two values are not pairable and are ignored. Returns None when there is no
    pairable unit or when every value is the same (expected disagreement is zero).
    """
    coincidences: Counter[tuple[Hashable, Hashable]] = Counter()
    for unit in units:
        values = list(unit)
        m = len(values)
        if m < 2:
            continue
        for a, b in permutations(range(m), 2):
            coincidences[(values[a], values[b])] += 1.0 / (m - 1)  # type: ignore[assignment]
    totals: Counter[Hashable] = Counter()
    for (c, _), weight in coincidences.items():
        totals[c] += weight  # type: ignore[assignment]
    n = sum(totals.values())
    if n <= 1:
        return None
    observed = sum(w for (c, k), w in coincidences.items() if c != k)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


@dataclass
class ReviewStatus:
    """Where a project's review stands."""

    tasks: int = 0
    items: Counter[str] = field(default_factory=Counter)
    stages: dict[str, dict[str, int]] = field(default_factory=dict)
    reviewers: dict[str, dict[str, int]] = field(default_factory=dict)
    alpha_validity: float | None = None
    alpha_function: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {"tasks": self.tasks, "items": dict(self.items), "stages": self.stages,
                "reviewers": self.reviewers, "alpha_validity": self.alpha_validity,
                "alpha_function": self.alpha_function}


def _stage_counts(reviews: list[TaskReview], rules: ReviewRules) -> dict[str, dict[str, int]]:
    judged = Counter[str]()
    needed = 0
    for review in reviews:
        needed += len(review.record.subquestions) * rules.reviewers_required
        for verdict in review.verdicts:
            for sub in verdict.subs:
                judged["validity"] += sub.valid is not None
                judged["function"] += sub.function is not None
                judged["answer"] += sub.answer_correct is not None or sub.corrected is not None
                judged["corrections"] += sub.corrected is not None
    return {
        "1-validity": {"judged": judged["validity"], "needed": needed},
        "2-function": {"judged": judged["function"], "needed": needed},
        "3-answer": {"judged": judged["answer"], "needed": needed,
                     "corrections": judged["corrections"]},
    }


def _reviewer_counts(reviews: list[TaskReview]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for review in reviews:
        for verdict in latest_per_reviewer(review.verdicts):
            counts[verdict.reviewer]["complete" if verdict.complete else "partial"] += 1
    return {name: {"complete": c["complete"], "partial": c["partial"], "tasks": len(reviews)}
            for name, c in sorted(counts.items())}


def _units(reviews: list[TaskReview], kind: str) -> list[list[Hashable]]:
    units = []
    for review in reviews:
        for i in range(len(review.record.subquestions)):
            values = [getattr(v.subs[i], kind) for v in latest_per_reviewer(review.verdicts)]
            units.append([x for x in values if x is not None])
    return units


def review_status(reviews: list[TaskReview], rules: ReviewRules | None = None) -> ReviewStatus:
    """Counts and agreement over parsed tasks (see ``collect``)."""
    rules = rules or ReviewRules()
    status = ReviewStatus(tasks=len(reviews))
    for review in reviews:
        outcome = aggregate(review.record, review.verdicts, rules).review
        status.items[outcome.status if outcome else "pending"] += 1
        status.items["annotated"] += bool(review.verdicts)
    status.stages = _stage_counts(reviews, rules)
    status.reviewers = _reviewer_counts(reviews)
    status.alpha_validity = krippendorff_alpha_nominal(_units(reviews, "valid"))
    status.alpha_function = krippendorff_alpha_nominal(_units(reviews, "function"))
    return status


def project_status(client: ReviewClient, project: str, rules: ReviewRules | None = None
                   ) -> ReviewStatus:
    """Status of ``project`` on the server (annotations are validated as for pull)."""
    reviews, _ = collect(client, project, strict=True)
    return review_status(reviews, rules)
