"""`cogvision synth`: the synthetic benchmark with exact ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cogvision.cli.common import ConfigOption, OverrideOption, console, progress


def synth(
    out: Annotated[
        Path, typer.Option("--out", help="Output folder (questions, decompositions, images).")
    ],
    variant: Annotated[
        str | None,
        typer.Option(help="Template set and taxonomy: cogvision or cogvsr. \\[default: cogvision]"),
    ] = None,
    n: Annotated[
        int | None,
        typer.Option("--n", help="Number of main questions, one scene each. \\[default: 100]"),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed: the same seed gives byte-identical files. \\[default: 0]"),
    ] = None,
    image_size: Annotated[
        int | None,
        typer.Option(help="Image side in pixels, a multiple of --grid. \\[default: 128]"),
    ] = None,
    grid: Annotated[
        int | None, typer.Option(help="Cells per side; one object per cell. \\[default: 4]")
    ] = None,
    jitter: Annotated[
        float | None,
        typer.Option(help="0..1: how far objects may move off their cell centre. \\[default: 0]"),
    ] = None,
    template: Annotated[
        list[str] | None,
        typer.Option(
            "--template", help="Only these templates (repeatable; default: all of the variant's)."
        ),
    ] = None,
    config: ConfigOption = None,
    overrides: OverrideOption = None,
) -> None:
    """Render scenes of coloured shapes on a grid and compile questions from small programs.

    Each question comes with a ground-truth decomposition: 2-8 sequentially dependent sub-questions
    with exact answers, labelled by the program step that computes them.

    Objects per scene: -C min_objects=1 -C max_objects=7 (defaults 3 and 7).

    Example: cogvision synth --variant cogvsr --n 200 --seed 1 --out work/synth-vsr
    """
    from cogvision.config import resolve
    from cogvision.sources.synth import SceneOptions, build_benchmark, check_request
    from cogvision.sources.synth.config import SynthConfig

    flags = {
        "variant": variant,
        "n": n,
        "seed": seed,
        "image_size": image_size,
        "grid": grid,
        "jitter": jitter,
        "templates": template or None,
    }
    cfg = resolve(SynthConfig, path=config, overrides=overrides, flags=flags)
    scene = SceneOptions(cfg.image_size, cfg.grid, cfg.jitter, cfg.min_objects, cfg.max_objects)
    check_request(cfg.variant, cfg.n, out, scene, cfg.templates)  # fail before the progress bar
    with progress(failures=False) as bar:
        task = bar.add_task(f"synth {cfg.variant}", total=cfg.n)
        result = build_benchmark(
            cfg.variant,
            cfg.n,
            cfg.seed,
            out,
            image_size=cfg.image_size,
            grid=cfg.grid,
            jitter=cfg.jitter,
            min_objects=cfg.min_objects,
            max_objects=cfg.max_objects,
            templates=cfg.templates,
            on_item=lambda: bar.advance(task),
        )
    console.print(
        f"wrote {result.questions} questions, {result.subquestions} sub-questions to {out}"
    )
    table = Table(title="sub-questions by function")
    table.add_column("function")
    table.add_column("count", justify="right")
    for name, count in result.by_function.most_common():
        table.add_row(name, str(count))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
