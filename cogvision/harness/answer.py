"""Answering sub-questions: batched greedy generation (left padding), answer parsing, and scoring.

Scoring defaults to normalised exact match; any ``Scorer`` (a callable ``(sub, response) -> bool``)
can replace it, e.g. one built from the metrics of ``cogvision.harness.score``.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from cogvision.harness.adapters import ModelAdapter
from cogvision.harness.data import SubItem

Scorer = Callable[[SubItem, str], bool]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({ch: " " for ch in string.punctuation})
_LEAD = re.compile(r"^\s*(the\s+)?(final\s+)?answer\s*(is)?\s*[:\-]?\s*", re.I)


def normalize(text: str) -> str:
    """Fold unicode form, case, punctuation, English articles and whitespace."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def parse_answer(text: str) -> str:
    """The answer in a generated text: its first non-empty line without an ``Answer:`` lead."""
    for line in text.strip().splitlines():
        if line.strip():
            return _LEAD.sub("", line.strip()).strip()
    return ""


def exact_match(sub: SubItem, response: str) -> bool:
    """Normalised exact match of the parsed response against the gold answer."""
    gold, pred = normalize(sub.answer), normalize(parse_answer(response))
    return bool(gold) and gold == pred


@dataclass(frozen=True)
class Answer:
    """One generated answer."""

    sub_id: str
    text: str
    parsed: str
    correct: bool
    n_tokens: int


def answer_length(tokens: torch.Tensor, eos_ids: Sequence[int], limit: int) -> int:
    """Generated tokens before the first eos, at most ``limit``; tokens: [steps]."""
    is_eos = torch.isin(tokens, torch.tensor(list(eos_ids), device=tokens.device))
    hits = torch.nonzero(is_eos)
    n = int(hits[0, 0]) if len(hits) else int(tokens.shape[0])
    return min(n, limit)


@torch.no_grad()
def generate_greedy(adapter: ModelAdapter, inputs: Any, max_new_tokens: int) -> torch.Tensor:
    """Greedy continuation of a left-padded batch; returns the new tokens [batch, steps]."""
    out = adapter.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=adapter.pad_token_id,
                                 eos_token_id=adapter.eos_token_ids)
    return out[:, inputs["input_ids"].shape[1]:]


def decode_answers(adapter: ModelAdapter, subs: Sequence[SubItem], new_tokens: torch.Tensor,
                   max_new_tokens: int, scorer: Scorer = exact_match) -> list[Answer]:
    """Answers from generated tokens [batch, steps] (truncated at eos / ``max_new_tokens``)."""
    answers = []
    for sub, row in zip(subs, new_tokens, strict=True):
        n = answer_length(row, adapter.eos_token_ids, max_new_tokens)
        text = adapter.tokenizer.decode(row[:n].tolist(), skip_special_tokens=True)
        answers.append(Answer(sub.id, text, parse_answer(text), scorer(sub, text), n))
    return answers


def answer_batch(adapter: ModelAdapter, subs: Sequence[SubItem],
                 images: Sequence[Image.Image | None], prompts: Sequence[str], *,
                 max_new_tokens: int = 16, scorer: Scorer = exact_match) -> list[Answer]:
    """Answer a batch of sub-questions with greedy decoding."""
    inputs = adapter.build_inputs(images, prompts)
    new_tokens = generate_greedy(adapter, inputs, max_new_tokens)
    return decode_answers(adapter, subs, new_tokens, max_new_tokens, scorer)
