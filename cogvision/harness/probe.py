"""Probing heads for functions (``cogvision probe fit``).

Method (CogVision, after ITI): for every function f and every head h, a logistic probe separates
sub-questions of f (positives) from sub-questions of other functions (negatives), one-vs-rest. Only
correctly answered sub-questions are used by default (the model must have exercised the function);
the larger class is subsampled to balance (a passed-in numpy Generator). The training rows are split
by main question into fit and validation parts (sub-questions of one main question share an image
and wording, so splitting rows would leak); head importance is the validation accuracy. The
evaluation (test) split is never read: only rows whose split is ``train`` are loaded.

``joint_mlp`` (the predecessor code): one network over all heads (a shared Linear(d -> 64) per head,
concatenated, 512 hidden, ReLU, dropout 0.3, softmax over functions); importance of head h for f is
the mean |sum_d grad x activation| of the f logit over f's training rows.

A lexical baseline (the same probe on bag-of-words features of the sub-question text) is reported
next to head accuracies: one-vs-rest probes can succeed by reading the question's wording alone.

``target=answer`` probes the answer content instead of the function
(:mod:`cogvision.harness.answer_probe`): within each function, which answer the head predicts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from cogvision.artifacts import read_manifest, strict_json, write_manifest, write_text_atomic
from cogvision.errors import ArtifactError, UsageError
from cogvision.harness.capture import CaptureRow, check_positions, read_index
from cogvision.harness.lexical import lexical_features
from cogvision.harness.logistic import accuracy, fit_logistic
from cogvision.harness.store import load_activations

log = logging.getLogger(__name__)

S = TypeVar("S")  # a function's split (function or answer probes)


class RowSplit(Protocol):
    """A function's fit and validation rows (positions into ``ProbeData.rows``)."""

    fit: np.ndarray
    val: np.ndarray


R = TypeVar("R", bound=RowSplit)
SCORES, PROBE_JSON, ROWS_JSON, MANIFEST = "scores.npy", "probe.json", "rows.json", "manifest.json"


class ProbeOptions(BaseModel):
    """How probes are fitted (recorded in the manifest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str = "logistic"
    target: Literal["function", "answer"] = Field(
        default="function", description="function: one-vs-rest over functions (CogVision); "
        "answer: the answer value within each function (answer_probe)")
    position: str = "last_prompt"
    rows: Literal["correct", "all"] = "correct"
    val_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = 0
    l2: float = Field(default=1.0, gt=0.0, description="1/C of scikit-learn's LogisticRegression")
    max_iter: int = Field(default=25, ge=1)
    tol: float = Field(default=1e-4, gt=0.0, description="Newton step tolerance (relative)")
    head_chunk: int = Field(default=0, ge=0, description="heads per batch (0: all at once)")
    device: str = "auto"
    min_per_class: int = Field(default=4, ge=1)
    lexical_baseline: bool = True
    mlp_epochs: int = Field(default=30, ge=1)
    mlp_lr: float = 1e-3
    mlp_batch: int = 64


@dataclass
class ProbeData:
    """Training rows of a capture folder, split by main question."""

    rows: list[CaptureRow]
    x: torch.Tensor  # [n, layers * heads, d] (float16 as stored), n = len(rows)
    fit: np.ndarray  # positions into rows
    val: np.ndarray
    functions: list[str]
    n_layers: int
    n_heads: int


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def split_by_main(rows: Sequence[CaptureRow], val_fraction: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Positions of fit and validation rows; every main question lands wholly in one part."""
    mains = sorted({r.main_id for r in rows})
    order = rng.permutation(len(mains))
    n_val = max(1, round(val_fraction * len(mains))) if len(mains) > 1 else 0
    val_mains = {mains[i] for i in order[:n_val]}
    val = np.array([i for i, r in enumerate(rows) if r.main_id in val_mains], dtype=np.int64)
    fit = np.array([i for i, r in enumerate(rows) if r.main_id not in val_mains], dtype=np.int64)
    return fit, val


def balanced(positions: np.ndarray, labels: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Subsample the larger class to the smaller one's size; returns (positions, labels)."""
    pos, neg = positions[labels == 1], positions[labels == 0]
    k = min(len(pos), len(neg))
    keep = np.concatenate([rng.choice(pos, k, replace=False), rng.choice(neg, k, replace=False)])
    keep.sort()
    return keep, np.isin(keep, pos).astype(np.int64)


def load_probe_data(capture_dir: str | Path, options: ProbeOptions,
                    rng: np.random.Generator) -> ProbeData:
    """Read the train rows (only) of a capture folder at ``options.position``."""
    path = check_positions(capture_dir, options.position)
    index = read_index(capture_dir)
    arr = load_activations(path)
    if arr.shape[0] != len(index):
        raise ArtifactError(f"{path}: {arr.shape[0]} rows but the index has {len(index)}")
    rows = [r for r in index if r.split == "train" and (options.rows == "all" or r.correct)]
    if not rows:
        raise UsageError(f"{capture_dir}: no usable train rows (rows={options.rows!r})")
    take = np.array([r.row for r in rows], dtype=np.int64)
    x = torch.from_numpy(np.ascontiguousarray(arr[take]))  # [n, L, H, d] fp16
    n_layers, n_heads = x.shape[1], x.shape[2]
    fit, val = split_by_main(rows, options.val_fraction, rng)
    functions = sorted({r.function for r in rows})
    return ProbeData(rows, x.view(x.shape[0], n_layers * n_heads, -1), fit, val, functions,
                     n_layers, n_heads)


@dataclass
class FunctionSplit:
    fit: np.ndarray
    fit_y: np.ndarray
    val: np.ndarray
    val_y: np.ndarray


def function_splits(data: ProbeData, options: ProbeOptions,
                    rng: np.random.Generator) -> dict[str, FunctionSplit | None]:
    """Balanced one-vs-rest fit/validation rows per function (None: too few rows)."""
    labels = np.array([r.function for r in data.rows])
    out: dict[str, FunctionSplit | None] = {}
    for f in data.functions:
        fit, fit_y = balanced(data.fit, (labels[data.fit] == f).astype(np.int64), rng)
        val, val_y = balanced(data.val, (labels[data.val] == f).astype(np.int64), rng)
        enough = min(len(fit), len(val)) >= 2 * options.min_per_class
        if not enough:
            log.warning("function %r: too few balanced rows (fit %d, val %d); skipped", f,
                        len(fit), len(val))
        out[f] = FunctionSplit(fit, fit_y, val, val_y) if enough else None
    return out


def head_batches(n: int, chunk: int) -> list[slice]:
    step = chunk or n
    return [slice(s, min(s + step, n)) for s in range(0, n, step)]


def per_head_scores(data: ProbeData, splits: Mapping[str, S | None], options: ProbeOptions,
                    score: Callable[[S, slice, torch.device], torch.Tensor]) -> np.ndarray:
    """``score(split, heads, device)`` (one value per head) for every function and batch of heads,
    as [functions, layers, heads]; NaN for a function without a split."""
    device = resolve_device(options.device)
    n_total = data.x.shape[1]
    scores = np.full((len(data.functions), n_total), np.nan, dtype=np.float32)
    for fi, f in enumerate(data.functions):
        split = splits[f]
        if split is None:
            continue
        for heads in head_batches(n_total, options.head_chunk):
            scores[fi, heads] = score(split, heads, device).cpu().numpy()
    return scores.reshape(len(data.functions), data.n_layers, data.n_heads)


def logistic_scores(data: ProbeData, splits: dict[str, FunctionSplit | None],
                    options: ProbeOptions) -> np.ndarray:
    """Validation accuracy [functions, layers, heads] of per-head one-vs-rest probes."""

    def score(split: FunctionSplit, heads: slice, device: torch.device) -> torch.Tensor:
        x_fit = heads_major(data.x, split.fit, heads, device)  # [h, n_fit, d]
        w = fit_logistic(x_fit, torch.from_numpy(split.fit_y).to(device), lam=options.l2,
                         max_iter=options.max_iter, tol=options.tol)
        del x_fit
        x_val = heads_major(data.x, split.val, heads, device)
        return accuracy(w, x_val, torch.from_numpy(split.val_y).to(device))

    return per_head_scores(data, splits, options, score)


def heads_major(x: torch.Tensor, rows: np.ndarray, heads: slice,
                 device: torch.device) -> torch.Tensor:
    """x[rows][:, heads] as float32 [heads, rows, d] on ``device``."""
    picked = x[torch.from_numpy(rows), heads]  # [n, h, d] fp16
    return picked.to(device).permute(1, 0, 2).to(torch.float32).contiguous()


def question_features(data: ProbeData) -> torch.Tensor:
    """Bag-of-words features [rows, vocabulary] of the questions, vocabulary from the fit rows."""
    fit_text = [data.rows[i].question for i in data.fit]
    return lexical_features(fit_text, [r.question for r in data.rows])


def lexical_by_function(data: ProbeData, splits: Mapping[str, R | None],
                        score: Callable[[torch.Tensor, torch.Tensor, R], float],
                        ) -> dict[str, float | None]:
    """``score(fit features, validation features, split)`` of every function with a split, on
    bag-of-words features of the question text ([1, rows, vocabulary]; no image, no model)."""
    feats = question_features(data)
    out: dict[str, float | None] = {}
    for f in data.functions:
        split = splits.get(f)
        out[f] = None if split is None else score(
            feats[torch.from_numpy(split.fit)][None], feats[torch.from_numpy(split.val)][None],
            split)
    return out


def lexical_accuracy(data: ProbeData, splits: dict[str, FunctionSplit | None],
                     options: ProbeOptions) -> dict[str, float | None]:
    """Validation accuracy of the same probe on bag-of-words features of the question text."""
    def score(x_fit: torch.Tensor, x_val: torch.Tensor, split: FunctionSplit) -> float:
        w = fit_logistic(x_fit, torch.from_numpy(split.fit_y), lam=options.l2)
        return float(accuracy(w, x_val, torch.from_numpy(split.val_y))[0])

    return lexical_by_function(data, splits, score)


ScoreFn = Callable[[ProbeData, dict[str, FunctionSplit | None], ProbeOptions,
                    np.random.Generator], tuple[np.ndarray, dict[str, Any]]]


def _logistic(data: ProbeData, splits: dict[str, FunctionSplit | None], options: ProbeOptions,
              rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    return logistic_scores(data, splits, options), {"score": "validation accuracy"}


def _joint(data: ProbeData, splits: dict[str, FunctionSplit | None], options: ProbeOptions,
           rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    from cogvision.harness.joint_mlp import joint_mlp_scores

    return joint_mlp_scores(data, options, rng)


PROBE_METHODS: dict[str, ScoreFn] = {"logistic": _logistic, "joint_mlp": _joint}


class FitResult(BaseModel):
    out: str
    method: str
    functions: list[str]
    n_rows: int
    best: dict[str, str]
    best_score: dict[str, float]
    lexical: dict[str, float | None]


def fit_probes(capture_dir: str | Path, out: str | Path, options: ProbeOptions, *,
               config: dict[str, Any] | None = None) -> FitResult:
    """Fit probes on a capture folder's train rows; write scores, rows used and a manifest."""
    from cogvision.harness.heads import HeadId

    if options.method not in PROBE_METHODS:
        raise UsageError(f"unknown probe method {options.method!r}; known: "
                         f"{', '.join(PROBE_METHODS)}")
    if options.target == "answer" and options.method != "logistic":
        raise UsageError(f"probe target 'answer' is fitted with method 'logistic', not "
                         f"{options.method!r}")
    out = Path(out)
    rng = np.random.default_rng(options.seed)
    data = load_probe_data(capture_dir, options, rng)
    if options.target == "answer":
        from cogvision.harness import answer_probe

        answer_splits = answer_probe.answer_splits(data, options)
        scores, info = answer_probe.answer_scores(data, answer_splits, options)
        lexical = (answer_probe.lexical_answer_accuracy(data, answer_splits, options)
                   if options.lexical_baseline else {})
    else:
        splits = function_splits(data, options, rng)
        scores, info = PROBE_METHODS[options.method](data, splits, options, rng)
        lexical = lexical_accuracy(data, splits, options) if options.lexical_baseline else {}
        info["counts"] = _counts(data, splits)
    out.mkdir(parents=True, exist_ok=True)
    with (out / SCORES).open("wb") as fh:
        np.save(fh, scores.astype(np.float32), allow_pickle=False)
    best, best_score = {}, {}
    for fi, f in enumerate(data.functions):
        if np.isnan(scores[fi]).all():
            continue
        flat = int(np.nanargmax(scores[fi]))
        best[f] = str(HeadId.from_flat(flat, data.n_heads))
        best_score[f] = float(scores[fi].reshape(-1)[flat])
    meta = {"method": options.method, "target": options.target, "position": options.position,
            "functions": data.functions,
            "n_layers": data.n_layers, "n_heads": data.n_heads, "capture": str(capture_dir),
            "lexical_accuracy": lexical, "best_head": best, "best_score": best_score, **info}
    write_text_atomic(out / PROBE_JSON, strict_json(meta, indent=2) + "\n")
    used = {"fit": [data.rows[i].id for i in data.fit], "val": [data.rows[i].id for i in data.val],
            "splits": sorted({r.split for r in data.rows})}
    write_text_atomic(out / ROWS_JSON, json.dumps(used) + "\n")
    capture_manifest = Path(capture_dir) / "manifest.json"
    write_manifest(out / MANIFEST, "probe.fit", config=config or options.model_dump(),
                   seed=options.seed, inputs=[Path(capture_dir) / "index.jsonl"],
                   outputs=[out / SCORES, out / PROBE_JSON, out / ROWS_JSON],
                   counts={"rows": len(data.rows), "functions": len(data.functions)},
                   extra={"capture_model": _capture_model(capture_manifest)})
    return FitResult(out=str(out), method=options.method, functions=data.functions,
                     n_rows=len(data.rows), best=best, best_score=best_score, lexical=lexical)


def _counts(data: ProbeData, splits: dict[str, FunctionSplit | None]) -> dict[str, Any]:
    return {f: None if s is None else {"fit": len(s.fit), "val": len(s.val)}
            for f, s in splits.items()}


def _capture_model(path: Path) -> Any:
    try:
        return read_manifest(path).extra.get("model")
    except Exception:  # an older or hand-made capture folder without a manifest
        return None


def read_probe(folder: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Scores [functions, layers, heads] and the probe metadata of a fit folder."""
    folder = Path(folder)
    for name in (SCORES, PROBE_JSON):
        if not (folder / name).is_file():
            raise ArtifactError(f"{folder / name}: not found (run `cogvision probe fit` first)")
    scores = np.load(folder / SCORES, allow_pickle=False)
    return scores, json.loads((folder / PROBE_JSON).read_text(encoding="utf-8"))
