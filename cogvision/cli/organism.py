"""`cogvision organism train|eval`: the model organism, a small VLM trained here on the synthetic
benchmark so the harness can be validated end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cogvision.cli.common import ConfigOption, OverrideOption, console, progress

organism_app = typer.Typer(help="Train or evaluate the model organism (a small LLaVA).",
                           no_args_is_help=True)


@organism_app.command("train")
def train_cmd(
    out: Annotated[Path, typer.Option(help="Model folder to write (save_pretrained + manifest).")],
    variant: Annotated[str | None, typer.Option(
        help="Synthetic template set: cogvision or cogvsr. \\[default: cogvision]")] = None,
    seed: Annotated[int | None, typer.Option(
        help="Seed of weights, data pools and batch order. \\[default: 0]")] = None,
    minutes: Annotated[float | None, typer.Option(
        help="Wall-time cap; a capped run saves its place, and --resume continues it. "
             "\\[default: 60]")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the unfinished run in --out (stopped by the time cap, a crash "
                         "or a kill) with its recorded options; only --minutes may be given.")
                      ] = False,
    config: ConfigOption = None,
    overrides: OverrideOption = None,
) -> None:
    """Build a small LLaVA (CLIP patch = scene grid cell, Llama decoder, word-level tokenizer),
    pre-train its vision side on per-patch attributes, train it on the synthetic sub-questions in
    the harness's prompt format on CPU, and score it per function on held-out scenes.

    The defaults train the shipped organism's first stages (W1: seed 0, 73-115 minutes on 2 CPU
    cores; pass --minutes 100, and --resume if the cap stops it all the same); the shipped weights
    (models/organism-cogvision) are W1 fine-tuned for 3,000 steps on count drills (44 minutes):
    --config benchmarks/configs/organism_count_finetune.yaml --seed 5 -C init_from=<W1's folder>.
    -C options (recorded in the manifest): steps, lr, init_from, threads, ...; a few of them:

    -C restart_steps=4000: a second stage in the same run (as a second run with -C init_from).

    -C pack=160: packed batches, the same loss on a third fewer tokens (0: one padded row each).

    -C drill_mix=0.25 -C drill_batch=16 -C drill_positions=9 -C drill_counts=3: drills (many
    position and count steps about one scene).

    -C lookup_weight=0.25: supervise head L1H0's look-up of the object each question names.

    -C chain_weight=0.25: supervise head L2H0's look-up of objects reached through the steps
    ("that hexagon", "the object directly below it", each object of a listed answer).

    -C tally_weight=0.25 -C tally_readout_weight=0.25: supervise head L1H2's attention from a
    count's answer to every image token, and read the scene's colour and shape counts from its
    output.

    -C count_weight=0.25: supervise head L1H1's attention from a count's answer to the objects
    counted and the first token (the sink whose weight tells the count; default 0: off).

    -C members_weight=0.25 -C members_count_weight=0.5 -C members_readout_weight=0.5: supervise
    each step of "How many of those colours are <colours>?" (head L2H1 from the answer to the
    colour words, each word's count, the sum from L2H1's output; default 0: off; on in the
    shipped model's fine-tune, which took held-out counting from 90% to 95%).

    A run saves its place (training_state.pt in --out) at every checkpoint and when the time cap
    stops it; --resume continues it from the saved optimiser, batch order and generator, as if it
    had never stopped, so the recipe can be trained in sessions of any length.

    Example: cogvision organism train --out work/organism --seed 0 --minutes 100
    """
    from cogvision.config import resolve
    from cogvision.errors import UsageError
    from cogvision.organism.config import TrainConfig
    from cogvision.organism.run import (
        STATE_NAME,
        check,
        load_training_state,
        resume_training,
        run_training,
    )

    if resume:
        given = [name for name, value in (("--variant", variant), ("--seed", seed),
                                          ("--config", config), ("-C", overrides)) if value]
        if given:
            raise UsageError(f"--resume continues with the run's recorded options; "
                             f"{', '.join(given)} cannot be given with it (only --minutes)")
        saved = load_training_state(out)
        total = saved["config"]["steps"] + saved["config"]["restart_steps"]
        done = saved["offset"] + saved["step"]
    else:
        flags = {"out": str(out), "variant": variant, "seed": seed, "minutes": minutes}
        cfg = resolve(TrainConfig, path=config, overrides=overrides, flags=flags)
        check(cfg)
        total, done = cfg.steps + cfg.restart_steps, 0
    with progress(failures=False) as bar:
        task = bar.add_task("train", total=total, completed=done)

        def on_step(step: int, _: int) -> None:
            bar.update(task, completed=step)

        result = (resume_training(out, minutes=minutes, on_step=on_step) if resume
                  else run_training(cfg, on_step=on_step))
    console.print(f"saved the organism to {out}")
    _print(result)
    if (out / STATE_NAME).is_file():
        console.print(f"[bold]the time cap stopped the run before its last step[/]; continue "
                      f"it with: cogvision organism train --out {out} --resume (--minutes M: "
                      f"a new cap)")


@organism_app.command("eval")
def eval_cmd(
    model: Annotated[Path, typer.Option(help="Organism folder (or any compatible VLM folder).")],
    n: Annotated[int, typer.Option("--n", help="Fresh synthetic scenes to score.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the fresh sample (not a training seed).")
                    ] = 10_000,
    variant: Annotated[str, typer.Option(help="cogvision or cogvsr.")] = "cogvision",
    image_size: Annotated[int, typer.Option(help="Scene side in pixels.")] = 96,
    grid: Annotated[int, typer.Option(help="Cells per side.")] = 3,
) -> None:
    """Score a saved organism per function on fresh synthetic scenes, through the harness's own
    loading and answering path.

    Example: cogvision organism eval --model models/organism-cogvision --n 100 --seed 10000
    """
    from cogvision.organism.evaluate import evaluate_model

    _print(evaluate_model(model, variant=variant, n=n, seed=seed, image_size=image_size,
                          grid=grid))


def _print(result: dict) -> None:  # type: ignore[type-arg]
    table = Table(title="held-out accuracy (normalised exact match)")
    table.add_column("function")
    table.add_column("n", justify="right")
    table.add_column("accuracy", justify="right")
    for name, row in result["per_function"].items():
        table.add_row(name, str(row["n"]), f"{100 * row['accuracy']:.1f}%")
    table.add_row("[bold]all", str(result["overall"]["n"]),
                  f"{100 * result['overall']['accuracy']:.1f}%")
    console.print(table)
    if result.get("per_kind"):  # issue 8's goals are per program-step kind
        kinds = Table(title="per program-step kind")
        for column, justify in (("kind", "left"), ("n", "right"), ("accuracy", "right")):
            kinds.add_column(column, justify=justify)  # type: ignore[arg-type]
        for name, row in result["per_kind"].items():
            kinds.add_row(name, str(row["n"]), f"{100 * row['accuracy']:.1f}%")
        console.print(kinds)


def register(app: typer.Typer) -> None:
    app.add_typer(organism_app, name="organism")
