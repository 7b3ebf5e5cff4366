"""`cogvision probe capture|fit|select|report`: find functional heads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cogvision.cli.common import ConfigOption, OverrideOption, console, progress

probe_app = typer.Typer(help="Find functional heads: capture -> fit -> select -> report.",
                        no_args_is_help=True)


@probe_app.command("capture")
def capture_cmd(
    model: Annotated[str | None, typer.Option(help="Model folder or Hub id.")] = None,
    data: Annotated[str | None, typer.Option(
        help="decompositions.jsonl (or its folder) or a published dataset folder.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (resumes if it exists).")] = None,
    position: Annotated[list[str] | None, typer.Option(
        "--position", help="last_prompt | first_generated | answer_mean | topk_answer "
        "(repeatable). \\[default: last_prompt]")] = None,
    split: Annotated[list[str] | None, typer.Option(
        "--split", help="Splits to capture (repeatable). \\[default: train]")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N main questions.")] = None,
    config: ConfigOption = None,
    overrides: OverrideOption = None,
) -> None:
    """Answer every sub-question greedily and store per-head o_proj inputs.

    Options under `capture.` (-C): layer_bias, top_k, batch_size, max_new_tokens, reuse_prefix,
    prompt.include_main_question, prompt.include_context. Token selector: -C selector=llm
    -C selector_model=... -C selector_base_url=... (key from $OPENAI_API_KEY).

    Example: cogvision probe capture --model work/tiny --data work/synth --out work/cap
    --position last_prompt --position answer_mean -C capture.layer_bias=true
    """
    from cogvision.config import resolve
    from cogvision.harness.pipeline import CaptureRunConfig, run_capture

    flags = {"model": model, "data": data, "out": str(out) if out else None,
             "splits": split or None, "limit": limit}
    if position:
        overrides = [*(overrides or []), f"capture.positions={position}"]
    cfg = resolve(CaptureRunConfig, path=config, overrides=overrides, flags=flags)
    with progress() as bar:
        task = bar.add_task("capture", total=None, failures=0, retries=0)

        def advance(n: int, failed: bool) -> None:
            bar.advance(task, n)
            if failed:
                bar.update(task, failures=bar.tasks[task].fields["failures"] + 1)

        result = run_capture(cfg, on_start=lambda n: bar.update(task, total=n), on_item=advance)
    console.print(f"captured {result.rows} rows ({result.resumed} resumed, {result.correct} "
                  f"correct, {result.failures} failed main items) into {result.out}")


@probe_app.command("fit")
def fit_cmd(
    capture_dir: Annotated[Path, typer.Argument(help="A capture folder.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    method: Annotated[str | None, typer.Option(
        help="logistic | joint_mlp. \\[default: logistic]")] = None,
    target: Annotated[str | None, typer.Option(
        help="function (one-vs-rest over functions, CogVision) | answer (which answer, within "
             "each function). \\[default: function]")] = None,
    position: Annotated[str | None, typer.Option(
        help="Captured position to probe. \\[default: last_prompt]")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for balancing and splits.")] = None,
    config: ConfigOption = None,
    overrides: OverrideOption = None,
) -> None:
    """Fit probes for every head and function on the train split.

    --target function asks whether a head tells one function's sub-questions from the rest;
    --target answer asks whether it tells which answer comes, within each function.

    Other options (-C): rows=correct|all, val_fraction, l2, max_iter, head_chunk, device,
    lexical_baseline, mlp_epochs.

    Example: cogvision probe fit work/cap --out work/fit
    """
    from cogvision.config import resolve
    from cogvision.harness.probe import ProbeOptions, fit_probes

    flags = {"method": method, "target": target, "position": position, "seed": seed}
    cfg = resolve(ProbeOptions, path=config, overrides=overrides, flags=flags)
    with console.status("fitting probes"):
        result = fit_probes(capture_dir, out, cfg)
    table = Table(title=f"{result.method} probes of the {cfg.target} on {result.n_rows} train rows")
    for column in ("function", "best head", "score", "lexical baseline"):
        table.add_column(column)
    for f in result.functions:
        lex = result.lexical.get(f)
        table.add_row(f, result.best.get(f, "-"), f"{result.best_score.get(f, float('nan')):.3f}",
                      "-" if lex is None else f"{lex:.3f}")
    console.print(table)
    console.print(f"wrote {out}")


@probe_app.command("select")
def select_cmd(
    fit_dir: Annotated[Path, typer.Argument(help="A fit folder.")],
    out: Annotated[Path, typer.Option(help="Output folder.")],
    method: Annotated[str | None, typer.Option(
        help="top_p | top_k | elbow | threshold. \\[default: top_p]")] = None,
    top_p: Annotated[float | None, typer.Option(help="Fraction of heads. \\[default: 0.1]")] = None,
    top_k: Annotated[int | None, typer.Option(help="Heads per function. \\[default: 48]")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the random control.")] = None,
    config: ConfigOption = None,
    overrides: OverrideOption = None,
) -> None:
    """Choose functional heads per function, plus random and lowest-ranked controls.

    Refuses a fit whose rows are not all from the train split.

    Example: cogvision probe select work/fit --out work/heads --method top_p --top-p 0.1
    """
    from cogvision.config import resolve
    from cogvision.harness.select import SelectOptions, select_heads

    flags = {"method": method, "top_p": top_p, "top_k": top_k, "seed": seed}
    cfg = resolve(SelectOptions, path=config, overrides=overrides, flags=flags)
    result = select_heads(fit_dir, out, cfg)
    for f, size in result.sizes.items():
        console.print(f"{f}: {size} heads, top {', '.join(result.top[f])}")
    console.print(f"wrote {out / 'heads.json'}")


@probe_app.command("report")
def report_cmd(
    fit_dir: Annotated[Path, typer.Argument(help="A fit folder.")],
    select_dir: Annotated[Path, typer.Argument(help="A select folder.")],
    out: Annotated[Path, typer.Option(help="Results folder.")],
    threshold: Annotated[float, typer.Option(help="Sparsity threshold.")] = 0.9,
) -> None:
    """Heatmaps, sparsity, overlap between functions and layer histograms.

    Example: cogvision probe report work/fit work/heads --out work/report
    """
    from cogvision.harness.report import make_report

    summary = make_report(fit_dir, select_dir, out, threshold=threshold)
    console.print(f"heads above {threshold} for any function: "
                  f"{summary['sparsity']['any_function']:.3f}; selected heads shared: "
                  f"{summary['overlap']['shared_share']:.3f}")
    console.print(f"wrote {out}")


@probe_app.command("tiny")
def tiny_cmd(
    out: Annotated[Path, typer.Option(help="Folder for the model and processor.")],
    family: Annotated[str, typer.Option(help="A model_type: qwen2_vl, qwen2_5_vl, qwen3_vl, "
                                        "llava, idefics3, smolvlm, gemma3, internvl.")
                      ] = "qwen2_5_vl",
    seed: Annotated[int, typer.Option(help="Weight initialisation seed.")] = 0,
    image_tokens: Annotated[int, typer.Option(help="Image tokens per image (a square).")] = 4,
) -> None:
    """Save a tiny random-weight model of FAMILY (offline demos and tests; no download).

    Example: cogvision probe tiny --family llava --out work/tiny-llava
    """
    from cogvision.errors import UsageError
    from cogvision.harness.tiny import FAMILIES, build_tiny, save_tiny

    if family not in FAMILIES:
        raise UsageError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    model, processor = build_tiny(family, seed=seed, image_tokens=image_tokens)
    save_tiny(model, processor, out)
    n_params = sum(p.numel() for p in model.parameters())
    console.print(f"wrote a tiny {family} model ({n_params:,} parameters) to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(probe_app, name="probe")
