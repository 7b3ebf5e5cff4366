"""``cogvision organism train`` as a library call: prepare, pre-train vision, train, checkpoint,
evaluate on held-out scenes, write the model folder and its manifest."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from cogvision.artifacts import file_digest, write_manifest, write_text_atomic
from cogvision.errors import UsageError
from cogvision.organism.config import TrainConfig
from cogvision.organism.evaluate import MANIFEST_NAME, evaluate_pool
from cogvision.organism.train import (
    AuxHeads,
    Pools,
    TrainState,
    aux_heads,
    describe_run,
    encode_pools,
    make_pools,
    prepare,
    realign,
    train_lm,
    vision_pretrain,
)
from cogvision.schema import FileDigest
from cogvision.schema.records import utc_now
from cogvision.sources.synth import VARIANTS

log = logging.getLogger(__name__)

HISTORY_NAME = "training_history.json"
STATE_NAME = "training_state.pt"
"""What a run needs to continue where it stopped (``resume_training``); removed when it ends."""
STATE_VERSION = 1


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

    Raises:
        UsageError: bad options, or ``config.out`` holds a run that did not finish (resume it
            with ``resume_training``).
    """
    check(config)
    out = Path(config.out)
    if (out / STATE_NAME).is_file():
        raise UsageError(f"{out / STATE_NAME}: {out} holds a run that did not finish; resume it "
                         f"(organism train --out {out} --resume) or remove that file")
    if config.threads:
        torch.set_num_threads(config.threads)
    # digested before training: ``init_from`` may be ``out`` itself, overwritten at the end
    inputs = [file_digest(Path(config.init_from) / "model.safetensors")] if config.init_from else []
    run = _Run(config, inputs, utc_now(), on_step)
    model, processor, heads, pools = prepare(config)
    log.info("organism: %s", describe_run(model, config)["parameters"])
    generator = torch.Generator().manual_seed(config.seed)
    run.state.vision_acc = vision_pretrain(model, heads, pools.full, config, generator)
    return run.stages(model, processor, heads, pools, generator, stage=1, resume=None)


def resume_training(out: Path, *, minutes: float | None = None,
                    on_step: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Continue a run that stopped (time cap, crash, kill) from its last checkpoint in ``out``,
    with the options it recorded (a new ``minutes`` cap if given) and the saved optimiser,
    generator and batch streams, as if it had never stopped (tested to the last bit on tiny runs;
    full-size runs differ in the last bits from run to run, see benchmarks/organism.md); returns
    the held-out evaluation.

    Raises:
        UsageError: ``out`` holds no unfinished run, or its training state cannot be read.
    """
    saved = load_training_state(out)
    config = TrainConfig.model_validate(  # ``out`` may have been moved since
        saved["config"] | {"out": str(out)} | ({"minutes": minutes} if minutes is not None else {}))
    check(config)
    # the cap and the seconds count this session's set-up too, as a fresh run's do
    run = _Run(config, [FileDigest.model_validate(d) for d in saved["inputs"]],
               datetime.fromisoformat(saved["started_at"]), on_step)
    if config.threads:
        torch.set_num_threads(config.threads)
    from cogvision.harness.loading import load_model

    model, processor = load_model(out, dtype="float32")
    model.load_state_dict(saved["model"])
    realign(model)
    model.to(config.device)  # type: ignore[arg-type]
    stage = config if saved["stage"] == 1 else config.second_stage()
    pools = make_pools(stage)
    encode_pools(processor, pools, stage)
    heads = aux_heads(stage)
    heads.load_state_dict(saved["heads"])
    generator = torch.Generator()
    run.state = TrainState(step=saved["step"], history=saved["history"], offset=saved["offset"],
                           vision_acc=saved["vision_acc"])
    run.seconds_before = saved["seconds"]
    run.resumed = [*saved["resumed"], saved["offset"] + saved["step"]]
    log.info("resuming %s at step %d of stage %d", out, saved["step"], saved["stage"])
    return run.stages(model, processor, heads, pools, generator, stage=saved["stage"],
                      resume=saved)


def load_training_state(out: Path) -> dict[str, Any]:
    """The training state a stopped run left in ``out`` (``STATE_NAME``)."""
    path = Path(out) / STATE_NAME
    if not path.is_file():
        raise UsageError(f"{path}: no unfinished run to resume (a run that finishes removes it)")
    try:
        saved: dict[str, Any] = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line error
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UsageError(f"{path}: cannot read the training state ({type(exc).__name__}: "
                         f"{first}); the run cannot be resumed from it") from None
    if saved.get("version") != STATE_VERSION:
        raise UsageError(f"{path}: training state version {saved.get('version')!r}, this "
                         f"cogvision writes {STATE_VERSION}")
    return saved


class _Run:
    """One training run's stages, checkpoints (weights, history, training state) and manifest."""

    def __init__(self, config: TrainConfig, inputs: list[FileDigest], started: datetime,
                 on_step: Callable[[int, int], None] | None) -> None:
        self.config, self.inputs, self.started, self.on_step = config, inputs, started, on_step
        self.out = Path(config.out)
        self.start = time.monotonic()
        self.deadline = self.start + 60 * config.minutes
        self.state = TrainState()
        self.seconds_before = 0.0  # of the earlier sessions of a resumed run
        self.resumed: list[int] = []  # the steps it was resumed at

    def seconds(self) -> float:
        return round(self.seconds_before + time.monotonic() - self.start, 1)

    def stages(self, model: Any, processor: Any, heads: AuxHeads, pools: Pools,
               generator: torch.Generator, *, stage: int, resume: dict[str, Any] | None
               ) -> dict[str, Any]:
        """Stage ``stage`` from ``self.state`` (and ``resume``), then the second stage if the
        config has one; then the final model, held-out evaluation and manifest."""
        config, state = self.config, self.state
        if stage == 1:
            train_lm(model, heads, pools, config, generator, self.deadline,
                     self._on_checkpoint(model, processor, config, pools, 1), state, resume)
        if config.restart_steps and not state.stopped_early:
            stage2 = config.second_stage()
            if stage == 1:  # a fresh second stage: its pools, heads and generator
                pools = make_pools(stage2)
                encode_pools(processor, pools, stage2)
                heads = aux_heads(stage2)
                generator = torch.Generator().manual_seed(stage2.seed)
                second = TrainState(history=state.history, vision_acc=state.vision_acc,
                                    offset=config.steps)
                resume = None
            else:
                second = state
            train_lm(model, heads, pools, stage2, generator, self.deadline,
                     self._on_checkpoint(model, processor, stage2, pools, 2), second, resume)
            state.step = config.steps + second.step  # (second is state when stage 2 resumes)
            state.stopped_early = second.stopped_early
        save_checkpoint(model, processor, self.out)
        state.seconds = self.seconds()
        result = evaluate_pool(model, processor, pools.val)
        write_text_atomic(self.out / HISTORY_NAME, json.dumps(state.history, indent=1))
        _write_manifest(self.out, config, model, state, result, self.started, self.inputs,
                        self.resumed)
        if not state.stopped_early:
            (self.out / STATE_NAME).unlink(missing_ok=True)
        return result

    def _on_checkpoint(self, model: Any, processor: Any, config: TrainConfig, pools: Pools,
                       stage: int) -> Callable[[TrainState, dict[str, Any]], None]:
        """Save the weights, a quick validation, the history and the training state."""
        offset = 0 if stage == 1 else self.config.steps
        total = self.config.steps + self.config.restart_steps

        def on_checkpoint(s: TrainState, snapshot: dict[str, Any]) -> None:
            save_checkpoint(model, processor, self.out)
            if s.step % config.eval_every == 0 and s.step < config.steps:
                quick = evaluate_pool(model, processor, pools.val.head(60))
                s.history.append({"step": offset + s.step, "val": {
                    k: v["accuracy"] for k, v in quick["per_function"].items()}})
                log.info("step %d val %s", offset + s.step, s.history[-1]["val"])
            write_text_atomic(self.out / HISTORY_NAME, json.dumps(s.history, indent=1))
            self._save_state(model, s, stage, offset, snapshot)
            if self.on_step:
                self.on_step(offset + s.step, total)
        return on_checkpoint

    def _save_state(self, model: Any, s: TrainState, stage: int, offset: int,
                    snapshot: dict[str, Any]) -> None:
        """Write the training state atomically: the weights with it, so the two always match."""
        path = self.out / STATE_NAME
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save({"version": STATE_VERSION, "config": self.config.model_dump(),
                    "stage": stage, "step": s.step, "offset": offset, "history": s.history,
                    "vision_acc": s.vision_acc, "seconds": self.seconds(),
                    "started_at": self.started.isoformat(), "resumed": self.resumed,
                    "inputs": [d.model_dump(mode="json") for d in self.inputs],
                    "model": model.state_dict(), **snapshot}, tmp)
        tmp.replace(path)


def _write_manifest(out: Path, config: TrainConfig, model: Any, state: TrainState,
                    result: dict[str, Any], started: Any, inputs: list[FileDigest],
                    resumed: list[int]) -> None:
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
            # a resumed run's steps it was resumed at; its seconds are the sessions' sum
            **({"resumed_at_steps": resumed} if resumed else {}),
            "train_seconds": state.seconds,
            "torch_threads": torch.get_num_threads(),
            # the kernels' instruction set: runs agree to the last bit only on the same one
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "vision_pretrain_accuracy": dict(zip(
                ["colour", "shape", "size", "row", "col"], state.vision_acc, strict=False)),
            "held_out": result,
        },
    )
