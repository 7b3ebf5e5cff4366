"""`cogvision eval`: the reference intervention evaluation; `cogvision eval merge` for shards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cogvision.cli.common import ConfigOption, OverrideOption, console, err_console, progress

eval_app = typer.Typer(invoke_without_command=True)


@eval_app.callback()
def evaluate(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option(help="Model folder or hub id (AutoModelForImageTextToText).")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(help="decompositions.jsonl, a folder holding one, or a published dataset."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (resumes when it exists).")] = None,
    experiments: Annotated[
        list[str] | None,
        typer.Option(
            "--experiments",
            "-e",
            help="masking, dose, cross, patch, steer, fhi (repeatable). \\[default: masking]",
        ),
    ] = None,
    seeds: Annotated[int | None, typer.Option(help="Random-head draws. \\[default: 5]")] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="i/n: decode only this shard, then `eval merge OUT`; auto: RANK/WORLD_SIZE of "
            "accelerate launch / torchrun, rank 0 merges."
        ),
    ] = None,
    config: ConfigOption = None,
    overrides: OverrideOption = None,
) -> None:
    """Answer -> capture -> probe -> select on TRAIN, then intervene and score on TEST.

    Writes OUT/samples.jsonl, results.json, report.md (+ PNG plots) and manifest.json. A killed
    run continues where it stopped when run again with the same arguments.

    Useful -C options:

    probe.target=answer: probe the answer content instead of the function

    experiments.random_control=layer_matched: random heads from the same layers

    experiments.hierarchy_steps=early: mask only the early function's own chain steps

    scoring.primary=exact_match; capture.positions=\\[answer_mean]

    Example: cogvision eval --model work/tiny --data work/synth --out work/eval -e masking -e dose
    """
    if ctx.invoked_subcommand is not None:
        return
    from cogvision.config import resolve
    from cogvision.harness.eval_config import EvalConfig
    from cogvision.harness.evaluate import run_eval

    exp: dict[str, object] = {}
    if experiments:
        exp["experiments"] = [e for item in experiments for e in item.split(",") if e]
    if seeds is not None:
        exp["seeds"] = seeds
    flags = {
        "model": model,
        "data": data,
        "out": str(out) if out else None,
        "shard": shard,
        "experiments": exp or None,
    }
    cfg = resolve(EvalConfig, path=config, overrides=overrides, flags=flags)
    with progress() as bar:
        capture_task = bar.add_task("capture (train)", total=None, failures=0, retries=0)

        def on_capture(n: int, failed: bool) -> None:
            bar.advance(capture_task, n)
            if failed:
                bar.update(capture_task, failures=bar.tasks[capture_task].fields["failures"] + 1)

        decode_task = bar.add_task("decode (test)", total=None, failures=0, retries=0)
        summary = run_eval(
            cfg,
            on_capture=on_capture,
            on_capture_total=lambda n: bar.update(capture_task, total=n),
            on_start=lambda n: bar.update(decode_task, total=n),
            on_batch=lambda n: bar.advance(decode_task, n),
        )
    console.print(
        f"{summary.train_items} train / {summary.test_items} test items, "
        f"{summary.conditions} conditions, {summary.decoded} generations decoded now"
    )
    if summary.finished:
        _print_results(Path(cfg.out), summary.results)
    else:
        then = (
            "rank 0 gathers the results"
            if cfg.shard == "auto"
            else (f"run `cogvision eval merge {cfg.out}` when every shard has finished")
        )
        err_console.print(f"shard done: {summary.out}; {then}")


@eval_app.command("merge")
def merge_cmd(
    out: Annotated[Path, typer.Argument(help="The run folder holding shard-i-of-n folders.")],
) -> None:
    """Merge the shards of a `--shard i/n` run and write results, report and manifest into OUT."""
    from cogvision.harness.evaluate import merge

    summary = merge(out)
    _print_results(out, summary.results)


def _print_results(out: Path, summary: dict[str, object]) -> None:
    import json

    from cogvision.harness.stats import NO_VARIANCE

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    console.print(f"{summary['samples']} scored responses -> {out}/results.json, report.md")
    if "masking" in results:
        table = Table(title=f"masking ({summary['primary_metric']}, %)")
        for column in ("function", "baseline", "functional", "random", "p (Holm)"):
            table.add_column(column, justify="left" if column == "function" else "right")
        for r in results["masking"]:
            table.add_row(
                r["function"],
                f"{r['baseline']:.1f}",
                f"{r['functional']:.1f}",
                f"{r['random_mean']:.1f} ± {r['random_std']:.1f}",
                NO_VARIANCE if r.get("degenerate") else f"{r['p_holm']:.3g}",
            )
        console.print(table)
    if results.get("metric_warning"):
        console.print(f"[yellow]{results['metric_warning']}[/yellow]")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
