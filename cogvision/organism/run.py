"""``cogvision organism train`` as a library call: prepare, pre-train vision, train, checkpoint,
evaluate on held-out scenes, write the model folder and its manifest."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from cogvision.artifacts import file_digest, write_manifest, write_text_atomic
from cogvision.errors import UsageError
from cogvision.organism.config import TrainConfig
from cogvision.organism.evaluate import MANIFEST_NAME, evaluate_pool
from cogvision.organism.train import (
    Pools,
    TrainState,
    aux_heads,
    describe_run,
    encode_pools,
    make_pools,
    prepare,
    train_lm,
    vision_pretrain,
)
from cogvision.schema import FileDigest
from cogvision.schema.records import utc_now
from cogvision.sources.synth import VARIANTS

log = logging.getLogger(__name__)

HISTORY_NAME = "training_history.json"


def save_checkpoint(model: Any, processor: Any, out: Path) -> None:
    """``save_pretrained`` into a fresh sibling folder, then swap it in file by file."""
    tmp = out.with_name(f".{out.name}.saving")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    out.mkdir(parents=True, exist_ok=True)
    for path in tmp.iterdir():
        path.replace(out / path.name)
    tmp.rmdir()


def check(config: TrainConfig) -> None:
    if config.variant not in VARIANTS:
        raise UsageError(f"unknown variant {config.variant!r}; valid: {', '.join(VARIANTS)}")
    config.spec().check()
    if config.drill_mix > 0 and config.drill_batch > config.full_items:
        raise UsageError(f"drill_batch {config.drill_batch} is more than full_items "
                         f"{config.full_items}: drills are one per scene of the full pool")
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")


def run_training(config: TrainConfig, *, on_step: Callable[[int, int], None] | None = None
                 ) -> dict[str, Any]:
    """Train an organism into ``config.out``; returns the held-out evaluation.

    Args:
        config: the run's options (seed, sizes, schedule, time cap).
        on_step: called as ``(step, total)`` at each checkpoint (progress display).
    """
    check(config)
    started, start = utc_now(), time.monotonic()
    deadline = start + 60 * config.minutes
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    # digested before training: ``init_from`` may be ``out`` itself, overwritten at the end
    inputs = [file_digest(Path(config.init_from) / "model.safetensors")] if config.init_from else []
    model, processor, heads, pools = prepare(config)
    log.info("organism: %s", describe_run(model, config)["parameters"])
    generator = torch.Generator().manual_seed(config.seed)
    state = TrainState()
    state.vision_acc = vision_pretrain(model, heads, pools.full, config, generator)
    total = config.steps + config.restart_steps
    hooks = _Checkpoints(model, processor, out, state.history, total, on_step)
    train_lm(model, heads, pools, config, generator, deadline, hooks.stage(config, pools, 0),
             state)
    if config.restart_steps and not state.stopped_early:
        stage2 = config.second_stage()
        pools = make_pools(stage2)
        encode_pools(processor, pools, stage2)
        second = TrainState(history=state.history, vision_acc=state.vision_acc,
                            offset=config.steps)
        train_lm(model, aux_heads(stage2), pools, stage2, torch.Generator().manual_seed(
            stage2.seed), deadline, hooks.stage(stage2, pools, config.steps), second)
        state.step += second.step
        state.stopped_early = second.stopped_early
    save_checkpoint(model, processor, out)
    state.seconds = round(time.monotonic() - start, 1)
    result = evaluate_pool(model, processor, pools.val)
    write_text_atomic(out / HISTORY_NAME, json.dumps(state.history, indent=1))
    _write_manifest(out, config, model, state, result, started, inputs)
    return result


class _Checkpoints:
    """Checkpoint callbacks of the stages: save, quick validation, history, progress."""

    def __init__(self, model: Any, processor: Any, out: Path, history: list[dict[str, Any]],
                 total: int, on_step: Callable[[int, int], None] | None) -> None:
        self.model, self.processor, self.out = model, processor, out
        self.history, self.total, self.on_step = history, total, on_step

    def stage(self, config: TrainConfig, pools: Pools, offset: int
              ) -> Callable[[TrainState], None]:
        def on_checkpoint(s: TrainState) -> None:
            save_checkpoint(self.model, self.processor, self.out)
            if s.step % config.eval_every == 0 and s.step < config.steps:
                quick = evaluate_pool(self.model, self.processor, pools.val.head(60))
                self.history.append({"step": offset + s.step, "val": {
                    k: v["accuracy"] for k, v in quick["per_function"].items()}})
                log.info("step %d val %s", offset + s.step, self.history[-1]["val"])
            write_text_atomic(self.out / HISTORY_NAME, json.dumps(self.history, indent=1))
            if self.on_step:
                self.on_step(offset + s.step, self.total)
        return on_checkpoint


def _write_manifest(out: Path, config: TrainConfig, model: Any, state: TrainState,
                    result: dict[str, Any], started: Any, inputs: list[FileDigest]) -> None:
    write_manifest(
        out / MANIFEST_NAME,
        "organism-train",
        config=config.model_dump(),
        inputs=inputs,
        seed=config.seed,
        outputs=[out / "model.safetensors"],
        counts={"steps_done": state.step, "steps_planned": config.steps + config.restart_steps,
                "val_subquestions": result["overall"]["n"]},
        started_at=started,
        extra={
            **describe_run(model, config),
            **({"second_stage_pool_seeds": describe_run(model, config.second_stage())[
                "pool_seeds"]} if config.restart_steps else {}),
            "stopped_early": state.stopped_early,
            "train_seconds": state.seconds,
            "torch_threads": torch.get_num_threads(),
            # the kernels' instruction set: runs agree to the last bit only on the same one
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "vision_pretrain_accuracy": dict(zip(
                ["colour", "shape", "size", "row", "col"], state.vision_acc, strict=False)),
            "held_out": result,
        },
    )
