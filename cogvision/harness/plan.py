"""The plan of an evaluation: head importance from train probes, the conditions to decode and the
tensors their specs need (patch donors, steering directions from train activations), FHI heads.

Everything here reads the TRAIN split only (the capture folder holds train sub-questions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from cogvision.errors import UsageError
from cogvision.harness.adapters import ModelAdapter
from cogvision.harness.capture import CaptureRow, activation_path, read_index
from cogvision.harness.experiments import Condition, HeadSets, build_conditions, fhi_condition
from cogvision.harness.fhi import fhi_specs, measure_visual_ratios, select_fhi_heads
from cogvision.harness.intervene import Edit, InterventionSpec, compile_edit
from cogvision.harness.store import load_activations
from cogvision.harness.sweep import Work, batches

if TYPE_CHECKING:
    from cogvision.harness.eval_config import EvalConfig

log = logging.getLogger(__name__)


def probe_importance(capture_dir: Path, config: EvalConfig) -> dict[str, np.ndarray]:
    """Per-function head importance ``[layers, heads]``: validation accuracy of probes fitted on
    the train captures (``cogvision.harness.probe``); functions without enough rows are left out."""
    from cogvision.harness.probe import ProbeOptions, fit_probes, read_probe

    options = ProbeOptions(**{"position": config.capture.positions[0], **config.probe})
    fit_dir = capture_dir.parent / "probe"
    fit_probes(capture_dir, fit_dir, options, config=config.model_dump(mode="json"))
    scores, meta = read_probe(fit_dir)
    importance = {
        f: scores[i] for i, f in enumerate(meta["functions"]) if not np.isnan(scores[i]).all()
    }
    if not importance:
        raise UsageError(f"{fit_dir}: no function had enough train rows to fit probes")
    return importance


class TrainActivations:
    """Captured train activations ``[items, layers, heads, d_head]``, functions and correctness."""

    def __init__(self, capture_dir: Path, position: str, d_head: int) -> None:
        rows = read_index(capture_dir)
        acts = np.asarray(load_activations(activation_path(capture_dir, position)))
        self.acts = torch.from_numpy(acts[..., :d_head].astype(np.float32))  # drop layer-bias half
        self.functions = np.array([r.function for r in rows])
        self.correct = torch.tensor([r.correct for r in rows])

    def of(self, function: str) -> torch.Tensor:
        return torch.from_numpy(self.functions == function)


def make_edits_for(train: TrainActivations | None) -> Callable[[Condition], list[Edit]]:
    """Compile a condition's specs, with patch/steer tensors from train activations (memoised)."""
    memo: dict[str, list[Edit]] = {}

    def compile_spec(spec: InterventionSpec) -> Edit:
        if not spec.needs_values():
            return compile_edit(spec)
        if train is None or spec.source is None:
            raise UsageError(f"{spec.kind} needs train activations and a source function")
        if spec.kind == "steer":
            mask = train.of(spec.source)
            return compile_edit(spec, acts=train.acts[mask], correct=train.correct[mask])
        rng = np.random.default_rng(spec.seed)
        return compile_edit(spec, acts=train.acts, donor=train.of(spec.source), rng=rng)

    def edits_for(condition: Condition) -> list[Edit]:
        if condition.key not in memo:
            memo[condition.key] = [compile_spec(s) for s in condition.specs]
        return memo[condition.key]

    return edits_for


def measure_fhi(adapter: ModelAdapter, work: Sequence[Work], config: EvalConfig) -> dict[str, Any]:
    """Visual-attention ratios on train prompts, the selected heads and their gain specs."""
    chosen = list(work)[: config.fhi_items]
    inputs = [
        adapter.encode([w.text for w in batch], [w.item.image() for w in batch])
        for batch in batches(chosen, config.batch_size)
    ]
    ratios = measure_visual_ratios(adapter.model, inputs, adapter.image_token_id)
    perception, reasoning = select_fhi_heads(ratios, config.fhi)
    specs = fhi_specs(perception, reasoning, config.fhi)
    return {
        "ratios": ratios.tolist(),
        "perception": [str(h) for h in perception],
        "reasoning": [str(h) for h in reasoning],
        "specs": [s.model_dump(mode="json") for s in specs],
    }


# --------------------------------------------------------------------------- plan


def condition_json(c: Condition) -> dict[str, Any]:
    return {
        "name": c.name,
        "functions": list(c.functions),
        "meta": c.meta,
        "specs": [s.model_dump(mode="json") for s in c.specs],
    }


def condition_from_json(data: dict[str, Any]) -> Condition:
    specs = tuple(InterventionSpec.model_validate(s) for s in data["specs"])
    return Condition(data["name"], specs, tuple(data["functions"]), data["meta"])


def infeasible(condition: Condition, rows: Sequence[CaptureRow]) -> str | None:
    """Why a patch/steer condition cannot be built from the train captures, or None."""
    for spec in condition.specs:
        of_source = [r for r in rows if r.function == spec.source]
        if spec.kind in {"patch_random", "patch_mean"} and not of_source:
            return f"no captured train items of donor {spec.source!r}"
        if spec.kind == "steer" and len({r.correct for r in of_source}) < 2:
            n_ok = sum(r.correct for r in of_source)
            return f"steering needs correct and incorrect items ({n_ok}/{len(of_source)} correct)"
    return None


def make_plan(
    importance: dict[str, np.ndarray],
    config: EvalConfig,
    fhi: dict[str, Any] | None,
    fp: str,
    rows: Sequence[CaptureRow],
) -> dict[str, Any]:
    """Conditions to decode (infeasible ones listed under ``skipped`` with the reason)."""
    conditions = build_conditions(HeadSets(importance), config.experiments)
    if fhi is not None and fhi["specs"]:
        specs = [InterventionSpec.model_validate(s) for s in fhi["specs"]]
        conditions.append(fhi_condition(specs, list(importance)))
    skipped = {c.name: why for c in conditions if (why := infeasible(c, rows)) is not None}
    for name, why in skipped.items():
        log.warning("condition %s skipped: %s", name, why)
    conditions = [c for c in conditions if c.name not in skipped]
    return {
        "skipped": skipped,
        "config": config.model_dump(mode="json"),
        "fingerprint": fp,
        "max_new_tokens": config.max_new_tokens,
        "functions": list(importance),
        "importance": {f: v.tolist() for f, v in importance.items()},
        "fhi": fhi,
        "conditions": [condition_json(c) for c in conditions],
    }
