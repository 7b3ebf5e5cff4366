"""The paper's review rules (CogVision §3.2), with every threshold a config field.

- Stage 1: a sub-question is invalid when at least ``min_invalid_votes`` reviewers say so. The item
  is dropped when ANY reviewer marks fewer than ``min_valid_share`` of its sub-questions valid, or
  when more than ``max_invalid_share`` of its sub-questions are invalid.
- Stage 2: a sub-question's function is the majority of the reviewers' labels; a tie for the top
  sends the item back for relabelling (it stays pending).
- Stage 3: a corrected answer typed by a reviewer replaces the draft's answer (the paper had one
  human adjudicate each disagreement); who and when are recorded. Two different corrections, or an
  answer a majority marks incorrect without any correction, keep the item pending.

An item is decided only once ``reviewers_required`` reviewers have judged every sub-question's
validity; before that it stays pending, never silently accepted.
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from cogvision.review.labelconfig import CONFIG_VERSION
from cogvision.review.tasks import ReviewerVerdict
from cogvision.schema.records import (
    Decomposition,
    ReviewOutcome,
    SubQuestion,
    SubQuestionReview,
    utc_now,
)


class ReviewRules(BaseModel):
    """Aggregation thresholds (defaults: the paper's)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reviewers_required: int = Field(default=3, ge=1)
    min_invalid_votes: int = Field(default=2, ge=1)
    min_valid_share: float = Field(default=0.6, ge=0, le=1)
    max_invalid_share: float = Field(default=0.4, ge=0, le=1)
    drop_invalid_subquestions: bool = Field(
        default=True, description="Remove invalid sub-questions from accepted items."
    )


def _stamp(verdict: ReviewerVerdict) -> float:
    return verdict.updated_at.timestamp() if verdict.updated_at else 0.0


def latest_per_reviewer(verdicts: list[ReviewerVerdict]) -> list[ReviewerVerdict]:
    latest: dict[str, ReviewerVerdict] = {}
    for v in verdicts:
        old = latest.get(v.reviewer)
        if old is None or _stamp(v) >= _stamp(old):
            latest[v.reviewer] = v
    return [latest[k] for k in sorted(latest)]


def _sub_review(i: int, sub: SubQuestion, votes: list[ReviewerVerdict],
                rules: ReviewRules) -> SubQuestionReview:
    valid = sum(1 for v in votes if v.subs[i].valid is True)
    invalid = sum(1 for v in votes if v.subs[i].valid is False)
    functions = Counter(f for v in votes if (f := v.subs[i].function))
    return SubQuestionReview(index=i, valid_votes=valid, invalid_votes=invalid,
                             invalid=invalid >= rules.min_invalid_votes,
                             function_votes=dict(sorted(functions.items())))


def _majority(votes: dict[str, int]) -> str | None:
    """The unique most-voted label, or None on a tie (or no votes)."""
    ranked = Counter(votes).most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def _drop_reasons(reviews: list[SubQuestionReview], votes: list[ReviewerVerdict],
                  rules: ReviewRules) -> list[str]:
    reasons = []
    n = len(reviews)
    for v in votes:
        if v.valid_share < rules.min_valid_share:
            reasons.append(f"reviewer {v.reviewer} marked {v.valid_share:.0%} of sub-questions "
                           f"valid (< {rules.min_valid_share:.0%})")
    invalid_share = sum(r.invalid for r in reviews) / n
    if invalid_share > rules.max_invalid_share:
        limit = rules.max_invalid_share
        reasons.append(f"{invalid_share:.0%} of sub-questions invalid (> {limit:.0%})")
    return reasons


def _apply_function(sub: SubQuestion, review: SubQuestionReview,
                    reasons: list[str]) -> tuple[SubQuestion, SubQuestionReview]:
    if not review.function_votes:
        return sub, review
    winner = _majority(review.function_votes)
    if winner is None:
        reasons.append(f"sub-question {sub.index + 1}: function vote tied {review.function_votes}; "
                       "relabel together")
        return sub, review.model_copy(update={"relabel": True})
    if winner == sub.function:
        return sub, review
    return (sub.model_copy(update={"function": winner}),
            review.model_copy(update={"original_function": sub.function}))


def _apply_answer(sub: SubQuestion, review: SubQuestionReview, votes: list[ReviewerVerdict],
                  rules: ReviewRules, reasons: list[str]) -> tuple[SubQuestion, SubQuestionReview]:
    i = review.index
    fixes = [(text, v) for v in votes if (text := v.subs[i].corrected)]
    distinct = {text.casefold() for text, _ in fixes}
    if len(distinct) > 1:
        reasons.append(f"sub-question {i + 1}: conflicting answer corrections "
                       f"{sorted({t for t, _ in fixes})}")
        return sub, review
    if not fixes:
        wrong = sum(1 for v in votes if v.subs[i].answer_correct is False)
        if wrong >= rules.min_invalid_votes:
            reasons.append(f"sub-question {i + 1}: answer marked incorrect by {wrong} reviewers "
                           "without a correction")
        return sub, review
    text = fixes[0][0]
    if text == sub.answer:
        return sub, review
    when = max((v.updated_at for _, v in fixes if v.updated_at), default=None)
    return (sub.model_copy(update={"answer": text}),
            review.model_copy(update={"original_answer": sub.answer,
                                      "corrected_by": sorted(v.reviewer for _, v in fixes),
                                      "corrected_at": when}))


def _renumber(subs: list[SubQuestion]) -> list[SubQuestion]:
    """Re-index kept sub-questions, pointing dependencies at the kept ones only."""
    new_index = {s.index: k for k, s in enumerate(subs)}
    return [s.model_copy(update={
        "index": k, "depends_on": [new_index[d] for d in s.depends_on if d in new_index]})
        for k, s in enumerate(subs)]


def aggregate(decomposition: Decomposition, verdicts: list[ReviewerVerdict],
              rules: ReviewRules | None = None) -> Decomposition:
    """``decomposition`` with its ``review`` set (and corrections applied when accepted)."""
    rules = rules or ReviewRules()
    votes = latest_per_reviewer(verdicts)
    complete = [v for v in votes if v.complete]
    reviewers = [v.reviewer for v in complete]
    n = len(decomposition.subquestions)
    if len(complete) < rules.reviewers_required:
        partial = [v.reviewer for v in votes if not v.complete]
        reason = f"{len(complete)}/{rules.reviewers_required} reviewers done"
        if partial:
            reason += f" ({', '.join(partial)} partial)"
        return _with_review(decomposition, "pending", reviewers, [reason], [], None)
    reviews = [_sub_review(i, s, complete, rules) for i, s in enumerate(decomposition.subquestions)]
    drop = _drop_reasons(reviews, complete, rules)
    if drop:
        return _with_review(decomposition, "dropped", reviewers, drop, reviews, None)
    reasons: list[str] = []
    subs: list[SubQuestion] = []
    for i in range(n):
        sub, reviews[i] = _apply_function(decomposition.subquestions[i], reviews[i], reasons)
        sub, reviews[i] = _apply_answer(sub, reviews[i], complete, rules, reasons)
        subs.append(sub)
    if reasons:
        return _with_review(decomposition, "pending", reviewers, reasons, reviews, None)
    if rules.drop_invalid_subquestions:
        subs = _renumber([s for s, r in zip(subs, reviews, strict=True) if not r.invalid])
    return _with_review(decomposition, "accepted", reviewers, [], reviews, subs)


def _with_review(decomposition: Decomposition, status: str, reviewers: list[str],
                 reasons: list[str], reviews: list[SubQuestionReview],
                 subs: list[SubQuestion] | None) -> Decomposition:
    outcome = ReviewOutcome(status=status, reviewers=reviewers, reasons=reasons,  # type: ignore[arg-type]
                            decided_at=None if status == "pending" else utc_now(),
                            subquestions=reviews, config_version=CONFIG_VERSION)
    data = decomposition.model_dump()
    data["review"] = outcome.model_dump()
    if subs is not None:
        data["subquestions"] = [s.model_dump() for s in subs]
    return Decomposition.model_validate(data)
