"""Bag-of-words features of sub-question text, for the lexical baseline of the probes.

A function-vs-rest probe on head activations can succeed just by reading the question's wording
(issue 8); the same probe on these features shows how far wording alone goes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import torch

_WORD = re.compile(r"[a-z0-9]+")


def terms(text: str) -> list[str]:
    """Lower-cased word unigrams and bigrams."""
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def lexical_features(fit_texts: Sequence[str], texts: Sequence[str], *,
                     max_terms: int = 2000) -> torch.Tensor:
    """Binary term presence [len(texts), V]; the vocabulary comes from ``fit_texts`` only."""
    counts = Counter(t for text in fit_texts for t in set(terms(text)))
    vocab = {t: i for i, (t, _) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                                              [:max_terms])}
    x = torch.zeros(len(texts), max(1, len(vocab)))
    for row, text in enumerate(texts):
        cols = [vocab[t] for t in set(terms(text)) if t in vocab]
        x[row, cols] = 1.0
    return x
