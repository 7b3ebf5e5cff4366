"""Held-out accuracy of an organism per function (and per program-step kind), through the harness's
own answer path: ``adapter_for`` -> ``build_inputs`` (chat template, processor) -> greedy
``generate`` -> normalised exact match (``cogvision.harness.answer``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cogvision.harness.adapters import ModelAdapter, adapter_for
from cogvision.harness.answer import answer_batch
from cogvision.harness.data import MainItem, SubItem
from cogvision.harness.prompts import PromptOptions, prompt_text
from cogvision.organism import data as od

MANIFEST_NAME = "organism_manifest.json"


def _rate(hits: Sequence[bool]) -> dict[str, float | int]:
    return {"n": len(hits), "accuracy": round(sum(hits) / len(hits), 4) if hits else 0.0}


def evaluate_items(adapter: ModelAdapter, items: Sequence[MainItem],
                   kinds: Sequence[Sequence[str]] | None = None, *, batch_size: int = 64,
                   max_new_tokens: int = 24) -> dict[str, Any]:
    """Accuracy overall, per function and (when ``kinds`` is given) per step kind."""
    options = PromptOptions()
    work: list[tuple[MainItem, SubItem, str]] = []
    for i, item in enumerate(items):
        for sub in item.subs:
            work.append((item, sub, kinds[i][sub.index] if kinds else ""))
    by_function: dict[str, list[bool]] = defaultdict(list)
    by_kind: dict[str, list[bool]] = defaultdict(list)
    hits: list[bool] = []
    errors: list[dict[str, str]] = []
    for at in range(0, len(work), batch_size):
        chunk = work[at: at + batch_size]
        answers = answer_batch(adapter, [s for _, s, _ in chunk], [m.image() for m, _, _ in chunk],
                               [prompt_text(m, s, options) for m, s, _ in chunk],
                               max_new_tokens=max_new_tokens)
        for (_, sub, kind), ans in zip(chunk, answers, strict=True):
            hits.append(ans.correct)
            by_function[sub.function].append(ans.correct)
            if kind:
                by_kind[kind].append(ans.correct)
            if not ans.correct and len(errors) < 20:
                errors.append({"question": sub.question, "gold": sub.answer, "got": ans.parsed})
    return {
        "overall": _rate(hits),
        "per_function": {f: _rate(v) for f, v in sorted(by_function.items())},
        "per_kind": {k: _rate(v) for k, v in sorted(by_kind.items())},
        "examples_wrong": errors,
    }


def function_items(items: Sequence[MainItem], function: str) -> list[MainItem]:
    """The items restricted to their sub-questions of ``function`` (items without one dropped)."""
    kept = [replace(i, subs=tuple(s for s in i.subs if s.function == function)) for i in items]
    return [i for i in kept if i.subs]


def evaluate_masked(adapter: ModelAdapter, items: Sequence[MainItem], heads: Sequence[str], *,
                    epsilon: float = 0.001, **kwargs: Any) -> dict[str, Any]:
    """:func:`evaluate_items` with ``heads`` (``L{layer}H{head}``) scaled by ``epsilon`` at every
    position (the harness's ``scale`` intervention, as ``cogvision eval`` masks)."""
    from cogvision.harness.heads import HeadId
    from cogvision.harness.intervene import compile_edit, intervene, spec_for

    spec = spec_for("scale", [HeadId.parse(h) for h in heads], epsilon=epsilon, scope="all")
    with intervene(adapter.model, [compile_edit(spec)]):
        return evaluate_items(adapter, items, **kwargs)


def evaluate_pool(model: Any, processor: Any, pool: od.Pool, **kwargs: Any) -> dict[str, Any]:
    """Accuracy of an in-memory model on a pool of synthetic scenes."""
    return evaluate_items(adapter_for(model, processor), pool.items, pool.kinds, **kwargs)


def evaluate_model(model_dir: str | Path, *, variant: str = "cogvision", n: int = 100,
                   seed: int = 10_000, image_size: int = 96, grid: int = 3,
                   threads: int | None = None) -> dict[str, Any]:
    """Load a saved organism like any HF model and score it on ``n`` fresh synthetic scenes."""
    import torch

    from cogvision.harness.loading import load_model

    if threads:
        torch.set_num_threads(threads)
    model, processor = load_model(str(model_dir), dtype="float32")
    pool = od.build_pool(variant, n, seed, od.organism_scenes(image_size, grid))
    result = evaluate_pool(model, processor, pool)
    result["sample"] = {"variant": variant, "n": n, "seed": seed, "image_size": image_size,
                        "grid": grid}
    return result
