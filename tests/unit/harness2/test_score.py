"""Text metrics against known values and NLTK's reference BLEU implementation."""

from __future__ import annotations

import math

import nltk.translate.bleu_score as nltk_bleu  # reference implementation (dev extra)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cogvision.errors import UsageError
from cogvision.harness.judge import parse_verdict
from cogvision.harness.score import (
    Bleu,
    ExactMatch,
    RougeL,
    Sample,
    build_metric,
    exact_match,
    lcs_length,
    normalize_answer,
    rouge_l,
    score_samples,
    sentence_bleu,
)


def test_normalize_folds_case_punctuation_articles_and_spaces() -> None:
    assert normalize_answer("  The  Red, Cube! ") == "red cube"
    assert normalize_answer("An apple.") == "apple"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words


@pytest.mark.parametrize(
    ("response", "target", "expected"),
    [
        ("Blue.", "blue", True),
        ("the cube", "Cube", True),
        ("2.0", "2", True),
        ("1,000", "1000", True),
        ("3", "2", False),
        ("red cube", "cube", False),
        ("", "yes", False),
    ],
)
def test_exact_match(response: str, target: str, expected: bool) -> None:
    assert exact_match(response, target) is expected


def test_bleu_known_values() -> None:
    assert sentence_bleu(["a", "b", "c", "d"], ["a", "b", "c", "d"]) == pytest.approx(1.0)
    assert sentence_bleu(["x"], ["a", "b"]) == 0.0
    # one word, exact: auto_reweigh makes it unigram BLEU = 1
    assert sentence_bleu(["red"], ["red"]) == pytest.approx(1.0)
    # 3 of 4 unigrams, 2/3 bigrams, 1/2 trigrams, 0/1 4-grams (smoothed 0.1), no brevity penalty
    expected = math.exp((math.log(3 / 4) + math.log(2 / 3) + math.log(1 / 2) + math.log(0.1)) / 4)
    assert sentence_bleu(["a", "b", "c", "x"], ["a", "b", "c", "d"]) == pytest.approx(expected)
    # brevity penalty: 2 of 4 reference words, both matching
    assert sentence_bleu(["a", "b"], ["a", "b", "c", "d"]) == pytest.approx(math.exp(1 - 4 / 2))


words = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=9)


@settings(max_examples=200, deadline=None)
@given(hyp=words, ref=words)
def test_bleu_matches_nltk(hyp: list[str], ref: list[str]) -> None:
    smoothing = nltk_bleu.SmoothingFunction().method1
    expected = nltk_bleu.sentence_bleu([ref], hyp, smoothing_function=smoothing, auto_reweigh=True)
    assert sentence_bleu(hyp, ref) == pytest.approx(float(expected), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(hyp=words, ref=words)
def test_bleu_matches_nltk_without_reweighing(hyp: list[str], ref: list[str]) -> None:
    smoothing = nltk_bleu.SmoothingFunction().method1
    expected = nltk_bleu.sentence_bleu([ref], hyp, smoothing_function=smoothing)
    assert sentence_bleu(hyp, ref, auto_reweigh=False) == pytest.approx(float(expected), abs=1e-12)


def _lcs_brute(a: list[str], b: list[str]) -> int:
    best = 0
    for mask in range(1 << len(a)):
        sub = [x for i, x in enumerate(a) if mask >> i & 1]
        it = iter(b)
        if all(any(x == y for y in it) for x in sub):
            best = max(best, len(sub))
    return best


@settings(max_examples=100, deadline=None)
@given(
    a=st.lists(st.sampled_from("abc"), max_size=7), b=st.lists(st.sampled_from("abc"), max_size=7)
)
def test_lcs_matches_brute_force(a: list[str], b: list[str]) -> None:
    assert lcs_length(a, b) == _lcs_brute(a, b)


def test_rouge_l_known_values() -> None:
    # LCS("the cat sat on mat", "the cat on the mat") = the cat on mat = 4; P = 4/5, R = 4/5
    assert rouge_l("the cat sat on mat".split(), "the cat on the mat".split()) == pytest.approx(0.8)
    # LCS = 1, P = 1/1, R = 1/3 -> F = 2 * 1 * 1/3 / (4/3) = 0.5
    assert rouge_l(["cube"], ["red", "metal", "cube"]) == pytest.approx(0.5)
    assert rouge_l(["x"], ["y"]) == 0.0
    assert rouge_l([], ["y"]) == 0.0


def test_metrics_name_their_values_and_merge() -> None:
    samples = [Sample("What colour?", "red", "Red."), Sample("How many?", "3", "three cubes")]
    rows = score_samples(samples, [ExactMatch(), Bleu(), RougeL()])
    assert rows[0] == {
        "exact_match": 1.0,
        "bleu": pytest.approx(1.0),
        "rouge_l": pytest.approx(1.0),
    }
    assert rows[1] == {"exact_match": 0.0, "bleu": 0.0, "rouge_l": 0.0}


def test_registry_lists_known_metrics() -> None:
    assert build_metric("rouge_l").name == "rouge_l"
    with pytest.raises(UsageError, match="known: exact_match, bleu, rouge_l"):
        build_metric("meteor")
    with pytest.raises(UsageError, match="bad options"):
        build_metric("exact_match", threshold=3)


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("yes", True),
        ("No.", False),
        ("  Yes, it is correct", True),
        ("incorrect", False),
        ("I cannot tell", None),
        ("", None),
    ],
)
def test_parse_verdict(reply: str, verdict: bool | None) -> None:
    assert parse_verdict(reply) is verdict
