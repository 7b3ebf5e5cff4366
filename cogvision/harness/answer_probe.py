"""Answer-content probes (``probe.target=answer``).

The CogVision recipe (``target=function``) asks whether a head tells one function's sub-questions
from the others'; the question's wording alone often does that (the lexical baseline), so the heads
it ranks first may only read the wording. An answer-content probe asks a different question: within
one function's sub-questions, does the head tell WHICH answer is coming? For every function f and
head h, one-vs-rest logistic probes (the batched ``fit_logistic``, one per answer value) are fitted
on f's fit rows with the gold answer (normalised) as the class, and the head's importance is the
multi-class validation accuracy (argmax of the per-class logits). Answers with fewer than
``min_per_class`` fit rows are dropped, with their validation rows; a function with fewer than two
such answers, or too few validation rows, is skipped. Classes are not balanced: ``chance`` (the
majority answer's share of the validation rows) is reported beside the scores, and the lexical
baseline is the same probe on bag-of-words features of the question text. Rows are split by main
question as for function probes, and only train rows are read.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cogvision.harness.answer import normalize
from cogvision.harness.logistic import fit_logistic, predict_logits

if TYPE_CHECKING:
    from cogvision.harness.probe import ProbeData, ProbeOptions

log = logging.getLogger(__name__)


@dataclass
class AnswerSplit:
    """One function's fit / validation rows (positions into ``ProbeData.rows``) and answer ids."""

    fit: np.ndarray
    fit_y: np.ndarray
    val: np.ndarray
    val_y: np.ndarray
    answers: list[str]

    @property
    def chance(self) -> float:
        return float(np.bincount(self.val_y).max() / len(self.val_y))


def answer_splits(data: ProbeData, options: ProbeOptions) -> dict[str, AnswerSplit | None]:
    """Per function, its rows whose answer occurs at least ``min_per_class`` times in fit."""
    answers = np.array([normalize(r.gold) for r in data.rows])
    functions = np.array([r.function for r in data.rows])
    out: dict[str, AnswerSplit | None] = {}
    for f in data.functions:
        fit = data.fit[functions[data.fit] == f]
        counts = Counter(answers[fit].tolist())
        kept = sorted(a for a, c in counts.items() if c >= options.min_per_class)
        fit = fit[np.isin(answers[fit], kept)]
        val = data.val[(functions[data.val] == f) & np.isin(answers[data.val], kept)]
        if len(kept) < 2 or len(val) < options.min_per_class:
            log.warning("function %r: too few answers for an answer probe (%d answers with >= %d "
                        "fit rows, %d validation rows); skipped", f, len(kept),
                        options.min_per_class, len(val))
            out[f] = None
            continue
        code = {a: i for i, a in enumerate(kept)}
        out[f] = AnswerSplit(fit, np.array([code[a] for a in answers[fit]]), val,
                             np.array([code[a] for a in answers[val]]), kept)
    return out


def multiclass_accuracy(x_fit: torch.Tensor, y_fit: np.ndarray, x_val: torch.Tensor,
                        y_val: np.ndarray, n_classes: int, options: ProbeOptions) -> torch.Tensor:
    """Validation accuracy [heads] of one-vs-rest logistic probes; x [heads, n, d]."""
    fit_labels = torch.from_numpy(y_fit).to(x_fit.device)
    logits = []
    for c in range(n_classes):
        w = fit_logistic(x_fit, (fit_labels == c).to(torch.int64), lam=options.l2,
                         max_iter=options.max_iter, tol=options.tol)
        logits.append(predict_logits(w, x_val))  # [heads, n_val]
    pred = torch.stack(logits, dim=-1).argmax(dim=-1)
    truth = torch.from_numpy(y_val).to(pred.device).view(1, -1)
    return (pred == truth).to(torch.float32).mean(dim=1)


def answer_scores(data: ProbeData, splits: dict[str, AnswerSplit | None],
                  options: ProbeOptions) -> tuple[np.ndarray, dict[str, Any]]:
    """Scores [functions, layers, heads] and probe.json fields (chance, counts)."""
    from cogvision.harness.probe import heads_major, per_head_scores

    def score(split: AnswerSplit, heads: slice, device: torch.device) -> torch.Tensor:
        return multiclass_accuracy(heads_major(data.x, split.fit, heads, device), split.fit_y,
                                   heads_major(data.x, split.val, heads, device), split.val_y,
                                   len(split.answers), options)

    info = {"score": "validation accuracy (answer classes)",
            "chance": {f: None if s is None else s.chance for f, s in splits.items()},
            "counts": {f: None if s is None else {"fit": len(s.fit), "val": len(s.val),
                                                  "answers": len(s.answers)}
                       for f, s in splits.items()}}
    return per_head_scores(data, splits, options, score), info


def lexical_answer_accuracy(data: ProbeData, splits: dict[str, AnswerSplit | None],
                            options: ProbeOptions) -> dict[str, float | None]:
    """The same probe on bag-of-words features of the question text (no image, no model)."""
    from cogvision.harness.probe import lexical_by_function

    def score(x_fit: torch.Tensor, x_val: torch.Tensor, split: AnswerSplit) -> float:
        return float(multiclass_accuracy(x_fit, split.fit_y, x_val, split.val_y,
                                         len(split.answers), options)[0])

    return lexical_by_function(data, splits, score)
