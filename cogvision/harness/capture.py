"""Capture per-head activations of answered sub-questions (``cogvision probe capture``).

Each sub-question is answered greedily (see ``trace``); the o_proj input of every layer, viewed as
``[heads, d_head]``, is kept at the chosen token positions (always recorded):

- ``last_prompt``: the last prompt token (ITI);
- ``first_generated``: the first generated answer token;
- ``answer_mean``: the mean over the generated answer tokens;
- ``topk_answer``: the mean over the k answer tokens picked by a token selector (CogVision).

Rows whose answer is empty fall back to ``last_prompt`` for the generated positions (counted in the
manifest). With ``layer_bias`` every head vector is concatenated with its layer's mean head vector
(``[x_lh ; mean_h x_lh]``, d -> 2d). Output folder: ``activations/<position>.npy`` fp16
``[items, layers, heads, d]`` written per main item, ``index.jsonl`` (one ``CaptureRow`` per array
row), ``failures.jsonl``, ``manifest.json``. A rerun resumes after the last indexed row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cogvision.artifacts import JsonlAppender, read_jsonl, write_manifest
from cogvision.errors import ArtifactError, UsageError
from cogvision.harness.adapters import ModelAdapter
from cogvision.harness.answer import Answer, Scorer, decode_answers, exact_match
from cogvision.harness.data import MainItem, SubItem
from cogvision.harness.prompts import PROMPT_VERSION, PromptOptions, prefix_text, suffix_text
from cogvision.harness.store import NpyAppender
from cogvision.harness.tokensel import HeuristicSelector, TokenSelector
from cogvision.harness.trace import (
    PrefixMismatch,
    Trace,
    compute_prefix,
    suffix_ids,
    trace_full,
    trace_shared_prefix,
)
from cogvision.schema import FailureRecord

log = logging.getLogger(__name__)

POSITIONS = ("last_prompt", "first_generated", "answer_mean", "topk_answer")
INDEX, FAILURES, MANIFEST = "index.jsonl", "failures.jsonl", "manifest.json"


class CaptureOptions(BaseModel):
    """What to capture and how (recorded in the manifest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    positions: list[str] = Field(default_factory=lambda: ["last_prompt"])
    layer_bias: bool = False
    top_k: int = Field(default=3, ge=1)
    batch_size: int = Field(default=8, ge=1)
    max_new_tokens: int = Field(default=16, ge=1)
    reuse_prefix: bool = True
    prompt: PromptOptions = Field(default_factory=PromptOptions)

    @field_validator("positions")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [p for p in value if p not in POSITIONS]
        if unknown or not value:
            raise ValueError(f"unknown position(s) {unknown}; known: {', '.join(POSITIONS)}")
        return value


class CaptureRow(BaseModel):
    """One row of the activation arrays."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    row: int
    id: str
    main_id: str
    index: int
    function: str
    split: str
    question: str
    correct: bool
    answer: str
    gold: str
    n_answer_tokens: int
    selected_tokens: list[int] = Field(default_factory=list)


def activation_path(folder: str | Path, position: str) -> Path:
    return Path(folder) / "activations" / f"{position}.npy"


# --------------------------------------------------------------------------- features


def _mean_at(answer: torch.Tensor, idx: Sequence[int], fallback: torch.Tensor) -> torch.Tensor:
    """Mean of answer[idx] ([steps, L, HD] -> [L, HD]); ``fallback`` when idx is empty."""
    return answer[list(idx)].mean(0) if len(idx) else fallback


def position_features(trace: Trace, n_tokens: Sequence[int], selected: Sequence[Sequence[int]],
                      positions: Sequence[str], n_heads: int,
                      layer_bias: bool) -> dict[str, torch.Tensor]:
    """Per-position features ``[batch, layers, heads, d]`` (d doubles with ``layer_bias``)."""
    out: dict[str, torch.Tensor] = {}
    for position in positions:
        rows = []
        for b, n in enumerate(n_tokens):
            prompt = trace.prompt[b]  # [L, HD]
            if position == "last_prompt":
                rows.append(prompt)
            elif position == "first_generated":
                rows.append(_mean_at(trace.answer[b], range(min(n, 1)), prompt))
            elif position == "answer_mean":
                rows.append(_mean_at(trace.answer[b], range(n), prompt))
            else:
                rows.append(_mean_at(trace.answer[b], selected[b], prompt))
        x = torch.stack(rows)  # [B, L, HD]
        x = x.view(*x.shape[:2], n_heads, -1)  # [B, L, H, D]
        if layer_bias:
            x = torch.cat([x, x.mean(dim=2, keepdim=True).expand_as(x)], dim=-1)  # [B, L, H, 2D]
        out[position] = x
    return out


# --------------------------------------------------------------------------- one main item


def _texts(adapter: ModelAdapter, item: MainItem, subs: Sequence[SubItem], has_image: bool,
           options: PromptOptions) -> tuple[str, list[str]]:
    """The templated prefix text and the full templated text of each sub-question."""
    prefix = prefix_text(item, options)
    fulls = [adapter.chat_text(prefix + suffix_text(s, options), image=has_image) for s in subs]
    first_user = prefix + suffix_text(subs[0], options)
    cut = fulls[0].index(first_user) + len(prefix)
    return fulls[0][:cut], fulls


def trace_item(adapter: ModelAdapter, item: MainItem, subs: Sequence[SubItem],
               options: CaptureOptions) -> Trace:
    """Trace some sub-questions of one main item (shared-prefix reuse when enabled)."""
    image = item.image()
    prefix, fulls = _texts(adapter, item, subs, image is not None, options.prompt)
    if options.reuse_prefix:
        try:
            suffixes = suffix_ids(adapter, prefix, fulls)
            computed = compute_prefix(adapter, prefix, image)
            total = computed.ids.shape[1] + max(len(s) for s in suffixes) + options.max_new_tokens
            window = adapter.sliding_window
            # Padding between prefix and suffix is exact only inside the attention window.
            if window is None or total < window:
                return trace_shared_prefix(adapter, computed, suffixes, options.max_new_tokens)
            log.info("%s: prompt exceeds the sliding window; recomputing in full", item.main_id)
        except PrefixMismatch:
            log.info("%s: prompt does not split at the prefix; recomputing in full", item.main_id)
    return trace_full(adapter, [image] * len(subs), fulls, options.max_new_tokens)


def _selected(adapter: ModelAdapter, subs: Sequence[SubItem], trace: Trace, answers: list[Answer],
              selector: TokenSelector, k: int) -> list[list[int]]:
    out = []
    for sub, row, ans in zip(subs, trace.tokens, answers, strict=True):
        pieces = [adapter.tokenizer.decode([t]) for t in row[: ans.n_tokens].tolist()]
        out.append(selector.select(sub.question, pieces, k) if pieces else [])
    return out


# --------------------------------------------------------------------------- the run


class CaptureResult(BaseModel):
    rows: int
    resumed: int
    failures: int
    correct: int
    empty_answers: int
    out: str


def _resume_state(out: Path) -> tuple[set[str], set[str], int]:
    index = out / INDEX
    if not index.exists() or index.stat().st_size == 0:
        return set(), set(), 0
    rows = read_jsonl(index, CaptureRow, allow_empty=True)
    for expected, row in enumerate(rows):
        if row.row != expected:
            raise ArtifactError(f"{index}: row {row.row} at position {expected}; cannot resume")
    return {r.id for r in rows}, {r.main_id for r in rows}, len(rows)


def capture(adapter: ModelAdapter, items: Sequence[MainItem], out: str | Path,
            options: CaptureOptions, *, selector: TokenSelector | None = None,
            scorer: Scorer = exact_match, config: dict[str, Any] | None = None,
            inputs: Sequence[str | Path] = (),
            on_item: Callable[[int, bool], None] | None = None) -> CaptureResult:
    """Capture activations of every sub-question of ``items`` into ``out``.

    Args:
        adapter: the model.
        items: main items (all their sub-questions are captured, in order).
        out: output folder (resumes when it holds an earlier run's index).
        options: positions, layer bias, batching, prompt options.
        selector: token selector for ``topk_answer`` (default: heuristic).
        scorer: decides whether an answer is correct (default: normalised exact match).
        config: the resolved run config for the manifest.
        inputs: input files to fingerprint in the manifest.
        on_item: called after each main item with (number of sub-questions, failed).
    """
    out = Path(out)
    selector = selector or HeuristicSelector()
    done_ids, done_mains, resumed = _resume_state(out)
    d = adapter.d_head * (2 if options.layer_bias else 1)
    row_shape = (adapter.n_layers, adapter.n_heads, d)
    counts = {"rows": resumed, "failures": 0, "correct": 0, "empty_answers": 0}
    with ExitStack() as stack:
        arrays = {p: stack.enter_context(NpyAppender(activation_path(out, p), row_shape,
                                                     resume_rows=resumed))
                  for p in options.positions}
        index = stack.enter_context(JsonlAppender(out / INDEX))
        failures = stack.enter_context(JsonlAppender(out / FAILURES))
        for item in items:
            if item.main_id in done_mains and all(s.id in done_ids for s in item.subs):
                continue
            todo = [s for s in item.subs if s.id not in done_ids]
            try:
                rows = _capture_item(adapter, item, todo, options, selector, scorer)
            except Exception as exc:  # one bad item never kills the run
                log.warning("%s: capture failed: %s", item.main_id, exc)
                failures.write(FailureRecord(item_id=item.main_id, stage="probe.capture",
                                             error_type=type(exc).__name__, message=str(exc)))
                counts["failures"] += 1
                if on_item:
                    on_item(len(todo), True)
                continue
            feats, answers = rows
            for position, x in feats.items():
                arrays[position].write(x.cpu().numpy())
            for sub, ans in zip(todo, answers, strict=True):
                index.write(CaptureRow(row=counts["rows"], id=sub.id, main_id=sub.main_id,
                                       index=sub.index, function=sub.function, split=sub.split,
                                       question=sub.question,
                                       correct=ans[0].correct, answer=ans[0].parsed,
                                       gold=sub.answer, n_answer_tokens=ans[0].n_tokens,
                                       selected_tokens=ans[1]))
                counts["rows"] += 1
                counts["correct"] += int(ans[0].correct)
                counts["empty_answers"] += int(ans[0].n_tokens == 0)
            if on_item:
                on_item(len(todo), False)
    outputs = [out / INDEX] + [activation_path(out, p) for p in options.positions]
    write_manifest(out / MANIFEST, "probe.capture", config=config or {}, counts=counts,
                   inputs=inputs,
                   outputs=outputs if counts["rows"] < 50_000 else [out / INDEX],
                   extra={"model": adapter.describe(), "options": options.model_dump(),
                          "prompt_version": PROMPT_VERSION, "selector": selector.name,
                          "row_shape": list(row_shape), "resumed_rows": resumed})
    return CaptureResult(rows=counts["rows"], resumed=resumed, failures=counts["failures"],
                         correct=counts["correct"], empty_answers=counts["empty_answers"],
                         out=str(out))


def _capture_item(adapter: ModelAdapter, item: MainItem, subs: Sequence[SubItem],
                  options: CaptureOptions, selector: TokenSelector, scorer: Scorer,
                  ) -> tuple[dict[str, torch.Tensor], list[tuple[Answer, list[int]]]]:
    feats: dict[str, list[torch.Tensor]] = {p: [] for p in options.positions}
    results: list[tuple[Answer, list[int]]] = []
    for start in range(0, len(subs), options.batch_size):
        chunk = subs[start : start + options.batch_size]
        trace = trace_item(adapter, item, chunk, options)
        answers = decode_answers(adapter, chunk, trace.tokens, options.max_new_tokens, scorer)
        selected = (_selected(adapter, chunk, trace, answers, selector, options.top_k)
                    if "topk_answer" in options.positions else [[] for _ in chunk])
        x = position_features(trace, [a.n_tokens for a in answers], selected, options.positions,
                              adapter.n_heads, options.layer_bias)
        for position, value in x.items():
            feats[position].append(value)
        results.extend(zip(answers, selected, strict=True))
    return {p: torch.cat(v) for p, v in feats.items()}, results


def read_index(folder: str | Path) -> list[CaptureRow]:
    """The capture index of ``folder``."""
    path = Path(folder) / INDEX
    rows = read_jsonl(path, CaptureRow)
    if [r.row for r in rows] != list(range(len(rows))):
        raise ArtifactError(f"{path}: rows are not numbered 0..{len(rows) - 1}")
    return rows


def check_positions(folder: str | Path, position: str) -> Path:
    path = activation_path(folder, position)
    if not path.is_file():
        raise UsageError(f"{folder}: no activations for position {position!r} (captured: "
                         f"{sorted(p.stem for p in (Path(folder) / 'activations').glob('*.npy'))})")
    return path
