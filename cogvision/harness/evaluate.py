"""The reference evaluation ``cogvision eval``: answer -> capture -> probe -> select on TRAIN, then
intervene and score on TEST.

Run folder (``--out RUN``): ``capture/`` (train activations, resumable), ``plan.json`` (head
importance, conditions and their specs), ``generations.jsonl`` (the resumable generation cache),
``samples.jsonl`` (one lmms-eval-like record per condition and test sub-question: ``doc_id``,
``input``, ``target``, ``resps``, ``response`` and one field per metric value), ``results.json``,
``report.md`` with PNG plots, and ``manifest.json``. Head selection reads only the train split.

``--shard i/n`` runs the train steps and the i-th n-th of the test sub-questions into
``RUN/shard-i-of-n/``; ``merge`` unions the shards' generations and writes the results into RUN.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, Field

from cogvision.artifacts import file_digest, read_jsonl, write_manifest, write_text_atomic
from cogvision.errors import ArtifactError, UsageError
from cogvision.harness.adapters import ModelAdapter, adapter_for
from cogvision.harness.capture import (
    capture,
    read_index,
)
from cogvision.harness.data import MainItem, SubItem, load_items
from cogvision.harness.eval_config import EvalConfig
from cogvision.harness.experiments import (
    DOWNSTREAM,
    Condition,
)
from cogvision.harness.intervene import Edit
from cogvision.harness.loading import load_model
from cogvision.harness.plan import (
    TrainActivations,
    condition_from_json,
    make_edits_for,
    make_plan,
    measure_fhi,
    probe_importance,
)
from cogvision.harness.shards import (
    launcher_shard,
    parse_shard,
    shard_batches,
    shard_dir,
    wait_for_shards,
)
from cogvision.harness.sweep import (
    GenerationCache,
    Sweeper,
    Work,
    build_work,
    decode_chains,
)
from cogvision.images import load_image
from cogvision.schema import ImageRef, SourceQuestion
from cogvision.schema.ids import content_hash
from cogvision.schema.records import utc_now

log = logging.getLogger(__name__)

PLAN, GENERATIONS, WORK, CHAINS = "plan.json", "generations.jsonl", "work.jsonl", "chains.jsonl"


# --------------------------------------------------------------------------- model


def fingerprint(adapter: ModelAdapter, config: EvalConfig, data_digest: str) -> str:
    """Identity of what generations depend on besides prompt and specs: model, data, capture."""
    model_config = adapter.model.config.to_json_string(use_diff=False)
    weights = sum(float(p.detach().sum(dtype=torch.float64)) for p in adapter.model.parameters())
    return content_hash(
        [
            config.model,
            model_config,
            f"{weights:.10e}",
            data_digest,
            config.capture.model_dump(mode="json"),
            config.probe,
            config.split_seed,
            config.test_fraction,
        ]
    )


# --------------------------------------------------------------------------- train side


def split_items(config: EvalConfig) -> tuple[list[MainItem], list[MainItem]]:
    items = load_items(config.data, test_fraction=config.test_fraction, seed=config.split_seed)
    train = [i for i in items if i.split == "train"]
    test = [i for i in items if i.split == "test"]
    if not train or not test:
        raise UsageError(
            f"{config.data}: need train and test items, got {len(train)} and "
            f"{len(test)} (change test_fraction)"
        )
    return train, test


ImportanceFn = Callable[[Path, EvalConfig], dict[str, np.ndarray]]


def downstream_work(adapter: ModelAdapter, data: str | Path, instruction: str) -> list[Work]:
    """Main questions of a VQA set (``SourceQuestion`` records) as one-step work items."""
    path = Path(data)
    path = path / "questions.jsonl" if path.is_dir() else path
    work = []
    for q in read_jsonl(path, SourceQuestion):
        ref = q.image

        def loader(ref: ImageRef | None = ref) -> Image.Image | None:
            return load_image(ref, path.parent) if ref is not None else None

        sub = SubItem(q.id, q.id, DOWNSTREAM, 0, q.question, q.answer, DOWNSTREAM)
        options = f"Options: {', '.join(q.choices)}\n" if q.choices else ""
        text = f"Question: {q.question}\n{options}{instruction}"
        item = MainItem(q.id, DOWNSTREAM, q.question, (sub,), loader)
        work.append(Work(item, sub, adapter.chat_text(text, image=ref is not None)))
    return work


def _sweeper(
    adapter: ModelAdapter,
    plan: dict[str, Any],
    config: EvalConfig,
    run: Path,
    edits_for: Callable[[Condition], list[Edit]],
) -> Sweeper:
    """The run's decoder over its resumable generation cache (shared by sweep and chains)."""
    return Sweeper(
        adapter,
        GenerationCache(run / GENERATIONS),
        fingerprint=plan["fingerprint"],
        edits_for=edits_for,
        max_new_tokens=config.max_new_tokens,
        reuse=config.reuse_prompt_cache,
    )


def sweep(
    adapter: ModelAdapter,
    work: Sequence[Sequence[tuple[int, Work]]],
    plan: dict[str, Any],
    config: EvalConfig,
    run: Path,
    edits_for: Callable[[Condition], list[Edit]],
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Decode every condition on its functions' test sub-questions; returns rows decoded now."""
    conditions = [
        c
        for c in map(condition_from_json, plan["conditions"])
        if c.meta.get("experiment") != "hierarchy"  # decoded as chains, see ``chains``
    ]
    sweeper = _sweeper(adapter, plan, config, run, edits_for)
    for numbered in work:
        batch = [w for _, w in numbered]
        function = batch[0].sub.function
        sweeper.run_batch(batch, [c for c in conditions if function in c.functions])
        if on_batch:
            on_batch(len(batch))
    return sweeper.generated


# --------------------------------------------------------------------------- the run


def prepare(
    config: EvalConfig,
    *,
    importance_fn: ImportanceFn = probe_importance,
    on_capture: Callable[[int, bool], None] | None = None,
    on_capture_total: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Load, split, capture and probe on train, build the plan; returns the pieces for the sweep."""
    run = shard_dir(config.out, config.shard)
    run.mkdir(parents=True, exist_ok=True)
    adapter = adapter_for(*load_model(config.model, dtype=config.dtype,
                                      device_map=config.device_map))
    train, test = split_items(config)
    if on_capture_total:
        on_capture_total(sum(len(item.subs) for item in train))
    capture_dir = run / "capture"
    capture(
        adapter,
        train,
        capture_dir,
        config.capture,
        on_item=on_capture,
        config=config.model_dump(mode="json"),
    )
    importance = importance_fn(capture_dir, config)
    data_digest = _data_digest(config.data)
    fp = fingerprint(adapter, config, data_digest)
    train_work = build_work(adapter, train, config.capture.prompt)
    fhi = (
        measure_fhi(adapter, train_work, config)
        if "fhi" in config.experiments.experiments
        else None
    )
    plan = make_plan(importance, config, fhi, fp, read_index(capture_dir))
    write_text_atomic(run / PLAN, json.dumps(plan, indent=1) + "\n")
    all_work = build_work(adapter, test, config.capture.prompt)
    functions = list(plan["functions"])
    if "downstream" in config.experiments.experiments:
        if not config.downstream_data:
            raise UsageError("experiment downstream needs downstream_data (a questions.jsonl)")
        all_work += downstream_work(adapter, config.downstream_data, config.downstream_instruction)
        functions.append(DOWNSTREAM)
    work = shard_batches(all_work, functions, config.batch_size, config.shard)
    needs_acts = any(
        s["kind"] in {"patch_random", "patch_mean", "steer"}
        for c in plan["conditions"]
        for s in c["specs"]
    )
    acts = (
        TrainActivations(capture_dir, config.capture.positions[0], adapter.d_head)
        if needs_acts
        else None
    )
    return {
        "run": run,
        "adapter": adapter,
        "plan": plan,
        "work": work,
        "edits_for": make_edits_for(acts),
        "train": len(train),
        "test": len(test),
        "test_items": test,
    }


def _data_digest(data: str) -> str:
    path = Path(data)
    if path.is_dir() and (path / "decompositions.jsonl").is_file():
        path = path / "decompositions.jsonl"
    return file_digest(path).sha256 if path.is_file() else content_hash(str(path.resolve()))


def write_work(run: Path, work: Sequence[Sequence[tuple[int, Work]]]) -> None:
    """The test sub-questions this job decodes (the results step scores exactly these)."""
    rows = [
        {
            "position": k,
            "doc_id": w.sub.id,
            "function": w.sub.function,
            "question": w.sub.question,
            "target": w.sub.answer,
            "input": w.text,
        }
        for batch in work
        for k, w in batch
    ]
    write_text_atomic(run / WORK, "".join(json.dumps(r) + "\n" for r in rows))


def chains(
    adapter: ModelAdapter,
    items: Sequence[MainItem],
    plan: dict[str, Any],
    config: EvalConfig,
    run: Path,
    edits_for: Callable[[Condition], list[Edit]],
) -> int:
    """Hierarchy: decode this shard's chunks of test items as chains with own answers.

    Items are chunked by ``batch_size`` over the whole test set and chunks dealt round-robin to
    shards, like the sweep's batches. Writes ``chains.jsonl`` (one row per decoded step).
    """
    conditions = [
        c
        for c in map(condition_from_json, plan["conditions"])
        if c.meta.get("experiment") == "hierarchy"
    ]
    if not conditions:
        return 0
    i, n = parse_shard(config.shard)
    size = config.batch_size
    chunks = [items[k : k + size] for k in range(0, len(items), size)][i::n]
    sweeper = _sweeper(adapter, plan, config, run, edits_for)
    rows = []
    for chunk in chunks:
        for condition in conditions:
            decoded = decode_chains(sweeper, adapter, chunk, condition, config.capture.prompt)
            for w, decoded_under in decoded:
                rows.append(
                    {
                        "condition": condition.name,
                        "masked": decoded_under is condition,
                        "doc_id": w.sub.id,
                        "main_id": w.sub.main_id,
                        "index": w.sub.index,
                        "function": w.sub.function,
                        "question": w.sub.question,
                        "target": w.sub.answer,
                        "input": w.text,
                    }
                )
    write_text_atomic(run / CHAINS, "".join(json.dumps(r) + "\n" for r in rows))
    return sweeper.generated


class EvalSummary(BaseModel):
    """What one ``eval`` (or ``eval merge``) call did."""

    out: str
    train_items: int = 0
    test_items: int = 0
    conditions: int = 0
    decoded: int = 0
    samples: int = 0
    finished: bool = False
    results: dict[str, Any] = Field(default_factory=dict)


def run_eval(
    config: EvalConfig,
    *,
    importance_fn: ImportanceFn = probe_importance,
    on_capture: Callable[[int, bool], None] | None = None,
    on_capture_total: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> EvalSummary:
    """The whole evaluation; with ``shard`` only this shard's decoding (then ``merge``).

    Resumable: capture continues after its last row and decoding skips cached generations.
    """
    from cogvision.harness.eval_report import finalize

    started = utc_now()
    auto = config.shard == "auto"
    shard = launcher_shard(config.shard)
    updates: dict[str, Any] = {"shard": shard}
    if auto and config.device_map is None and torch.cuda.is_available():
        updates["device_map"] = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    config = config.model_copy(update=updates)
    manifest = shard_dir(config.out, config.shard) / "manifest.json"
    if config.shard is not None and manifest.is_file():
        manifest.unlink()  # a stale shard manifest must not let rank 0 merge early
    p = prepare(
        config,
        importance_fn=importance_fn,
        on_capture=on_capture,
        on_capture_total=on_capture_total,
    )
    run, plan, work = p["run"], p["plan"], p["work"]
    write_work(run, work)
    if on_start:
        on_start(sum(len(b) for b in work))
    decoded = sweep(p["adapter"], work, plan, config, run, p["edits_for"], on_batch)
    decoded += chains(p["adapter"], p["test_items"], plan, config, run, p["edits_for"])
    summary = EvalSummary(
        out=str(run),
        train_items=p["train"],
        test_items=p["test"],
        conditions=len(plan["conditions"]),
        decoded=decoded,
    )
    if config.shard is None:
        results = finalize(Path(config.out), [run], config, started=started)
        summary.finished, summary.results = True, results["summary"]
        summary.samples = results["summary"]["samples"]
    else:
        write_manifest(
            run / "manifest.json",
            "eval.shard",
            config=config.model_dump(mode="json"),
            counts={"work": len(work), "decoded": decoded},
            outputs=[run / PLAN, run / WORK],
            seed=config.experiments.seed,
            started_at=started,
        )
        i, n = parse_shard(config.shard)
        if auto and i == 0:  # results gathered on rank 0
            wait_for_shards(Path(config.out), n, config.merge_timeout_s)
            merged = merge(config.out, config.model_copy(update={"shard": None}))
            summary.finished, summary.results = True, merged.results
            summary.samples = merged.samples
    return summary


def merge(out: str | Path, config: EvalConfig | None = None) -> EvalSummary:
    """Union the shards' generations under ``out`` and write results, report and manifest."""
    from cogvision.harness.eval_report import finalize

    out = Path(out)
    shards = sorted(out.glob("shard-*-of-*"))
    if not shards:
        raise ArtifactError(f"{out}: no shard-i-of-n folders to merge")
    totals = {int(d.name.rsplit("-", 1)[1]) for d in shards}
    if len(totals) != 1:
        raise ArtifactError(f"{out}: shard folders of different splits: {[d.name for d in shards]}")
    n = totals.pop()
    present = {int(d.name.split("-")[1]) for d in shards}
    missing = sorted(set(range(n)) - present)
    if missing:
        raise ArtifactError(f"{out}: shards {missing} of {n} are missing; run them first")
    if config is None:  # the shards' own config, as recorded in their plan
        plan = json.loads((shards[0] / PLAN).read_text(encoding="utf-8"))
        config = EvalConfig.model_validate({**plan["config"], "shard": None, "out": str(out)})
    results = finalize(out, shards, config)
    s = results["summary"]
    return EvalSummary(
        out=str(out), conditions=s["conditions"], samples=s["samples"], finished=True, results=s
    )
