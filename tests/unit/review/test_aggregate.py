"""The paper's review rules on hand-made verdicts (known answers, including the boundaries)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from cogvision.review.aggregate import ReviewRules, aggregate
from cogvision.review.tasks import ReviewerVerdict, SubVerdict
from cogvision.schema.records import Decomposition
from tests.unit.review.builders import make_decomposition

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture()
def record(tmp_path: Path) -> Decomposition:
    return make_decomposition(0, tmp_path, np.random.default_rng(0), n_sub=5)


def verdict(name: str, n: int = 5, *, invalid: set[int] = frozenset(),
            functions: dict[int, str] | None = None, corrected: dict[int, str] | None = None,
            wrong: set[int] = frozenset(), blank: set[int] = frozenset(),
            at: datetime = T0) -> ReviewerVerdict:
    subs = [SubVerdict(valid=None if i in blank else i not in invalid,
                       function=(functions or {}).get(i), answer_correct=i not in wrong,
                       corrected=(corrected or {}).get(i)) for i in range(n)]
    return ReviewerVerdict(reviewer=name, updated_at=at, subs=subs)


def test_unanimous_valid_is_accepted_unchanged(record: Decomposition) -> None:
    out = aggregate(record, [verdict("a"), verdict("b"), verdict("c")])
    assert out.review.status == "accepted" and out.review.reasons == []
    assert out.subquestions == record.subquestions and out.id == record.id


def test_boundaries_60_percent_valid_and_40_percent_invalid_are_kept(record) -> None:
    # a and b each mark exactly 2/5 invalid (60% valid: not < 60%);
    # subs 0 and 1 invalid = 40% (not > 40%)
    out = aggregate(record, [verdict("a", invalid={0, 1}), verdict("b", invalid={0, 1}),
                             verdict("c")])
    assert out.review.status == "accepted"
    assert [s.question for s in out.subquestions] == [s.question for s in record.subquestions[2:]]
    assert [s.index for s in out.subquestions] == [0, 1, 2]
    # step 3 depended on step 2 (kept, now index 0); step 2 depended on step 1 (removed)
    assert [s.depends_on for s in out.subquestions] == [[], [0], [1]]


def test_one_reviewer_below_60_percent_drops(record) -> None:
    out = aggregate(record, [verdict("a", invalid={0, 1, 2}), verdict("b"), verdict("c")])
    assert out.review.status == "dropped"
    assert out.review.reasons == ["reviewer a marked 40% of sub-questions valid (< 60%)"]


def test_more_than_40_percent_invalid_drops(record) -> None:
    votes = [verdict("a", invalid={0, 1}), verdict("b", invalid={1, 2}),
             verdict("c", invalid={0, 2})]
    out = aggregate(record, votes)
    assert out.review.status == "dropped"
    assert [s.invalid for s in out.review.subquestions] == [True, True, True, False, False]


def test_one_invalid_vote_is_not_enough_but_threshold_is_configurable(record) -> None:
    votes = [verdict("a", invalid={4}), verdict("b"), verdict("c")]
    assert len(aggregate(record, votes).subquestions) == 5
    strict = aggregate(record, votes, ReviewRules(min_invalid_votes=1))
    assert len(strict.subquestions) == 4 and strict.review.subquestions[4].invalid


def test_function_majority_and_tie(record) -> None:
    names = ["Math Reasoning", "Inference", "Decision-Making"]
    out = aggregate(record, [verdict("a", functions={1: names[0]}),
                             verdict("b", functions={1: names[0]}),
                             verdict("c", functions={1: names[1]})])
    assert out.subquestions[1].function == names[0]
    assert out.review.subquestions[1].original_function == record.subquestions[1].function
    tie = aggregate(record, [verdict("a", functions={1: n}) for n in names[:1]] +
                    [verdict("b", functions={1: names[1]}), verdict("c", functions={1: names[2]})])
    assert tie.review.status == "pending" and tie.review.subquestions[1].relabel
    assert "relabel" in tie.review.reasons[0]


def test_answer_correction_who_and_when(record) -> None:
    late = datetime(2026, 2, 2, tzinfo=UTC)
    out = aggregate(record, [verdict("a", corrected={2: "seven"}, wrong={2}, at=late),
                             verdict("b", corrected={2: "Seven"}), verdict("c")])
    assert out.review.status == "accepted" and out.subquestions[2].answer == "seven"
    review = out.review.subquestions[2]
    assert review.original_answer == record.subquestions[2].answer
    assert review.corrected_by == ["a", "b"] and review.corrected_at == late


def test_conflicting_or_missing_corrections_stay_pending(record) -> None:
    out = aggregate(record, [verdict("a", corrected={2: "seven"}),
                             verdict("b", corrected={2: "eight"}), verdict("c")])
    assert out.review.status == "pending" and "conflicting" in out.review.reasons[0]
    assert out.subquestions[2].answer == record.subquestions[2].answer
    out = aggregate(record, [verdict("a", wrong={2}), verdict("b", wrong={2}), verdict("c")])
    assert out.review.status == "pending" and "without a correction" in out.review.reasons[0]


def test_incomplete_reviews_stay_pending_and_latest_annotation_counts(record) -> None:
    out = aggregate(record, [verdict("a"), verdict("b"), verdict("c", blank={3})])
    assert out.review.status == "pending"
    assert out.review.reasons == ["2/3 reviewers done (c partial)"]
    assert out.review.decided_at is None
    # c resubmits: the later annotation replaces the partial one
    redo = verdict("c", at=datetime(2026, 3, 1, tzinfo=UTC))
    out = aggregate(record, [verdict("a"), verdict("b"), verdict("c", blank={3}), redo])
    assert out.review.status == "accepted" and out.review.reviewers == ["a", "b", "c"]
    assert aggregate(record, [verdict("a")], ReviewRules(reviewers_required=1)).review.status == \
        "accepted"
