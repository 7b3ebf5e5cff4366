"""`cogvision publish`: build, check, convert and push Hugging Face dataset repositories."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel, ConfigDict, Field

from cogvision.cli.common import ConfigOption, OverrideOption, console, err_console, progress
from cogvision.errors import UsageError

EPILOG = (
    "Examples: cogvision publish --in work/synth/decompositions.jsonl --out work/published "
    "--name cogvision | cogvision publish --check work/published | cogvision publish "
    "--from-cogvision-json cogvision.json --images imgs/ --out work/official --name cogvision"
)


class PublishConfig(BaseModel):
    """Settings of a publish run (defaults < --config YAML < flags < -C)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="cogvision, cogvsr or any dataset name.")
    test_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    seed: int = 0
    max_shard_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    datasheet: Path | None = None
    taxonomy: str = Field(default="cogvision", description="Taxonomy of a converted release.")
    license: str = Field(default="unknown", description="Licence of release items naming none.")
    source: str | None = Field(default=None, description="Source of release items naming none.")
    model: str | None = Field(default=None, description="Model that decomposed the release.")


def publish(
    inputs: Annotated[list[Path] | None, typer.Option(
        "--in", help="decompositions.jsonl to publish (repeatable); images relative to each file.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Dataset repository folder to write.")] = None,
    name: Annotated[str | None, typer.Option(help="cogvision, cogvsr or any dataset name.")] = None,
    test_fraction: Annotated[float | None, typer.Option(
        help="Share of each source's image groups in the test split (default 0.2).")] = None,
    seed: Annotated[int | None, typer.Option(help="Split seed (default 0).")] = None,
    check: Annotated[Path | None, typer.Option(
        "--check", help="Verify a published folder instead (load, validate, images, splits, "
        "card numbers); exit 1 with the first problems.")] = None,
    from_json: Annotated[Path | None, typer.Option(
        "--from-cogvision-json", help="The authors' released CogVision JSON to convert.")] = None,
    images: Annotated[Path | None, typer.Option(
        help="Image folder of --from-cogvision-json (paths in the JSON are relative to it).")
    ] = None,
    push_to_hub: Annotated[str | None, typer.Option(
        help="Also upload to this Hub dataset repo (owner/name); needs HF_TOKEN.")] = None,
    private: Annotated[bool, typer.Option(help="Create the Hub repo as private.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out folder.")] = False,
    config: ConfigOption = None,
    overrides: OverrideOption = None,
) -> None:
    """Publish decompositions as a Hugging Face dataset (configs `main` and `subquestions`).

    Only review-accepted decompositions are published when any input carries a review; the
    summary and the card count what was left out.
    """
    from cogvision.config import resolve

    if check is not None:
        if inputs or from_json or out:
            raise UsageError("--check DIR takes no --in, --from-cogvision-json or --out")
        _run_check(check)
        return
    settings = resolve(PublishConfig, path=config, overrides=overrides,
                       flags={"name": name, "test_fraction": test_fraction, "seed": seed})
    if out is None or settings.name is None:
        raise UsageError("publishing needs --out DIR and --name NAME (or --check DIR)")
    if bool(inputs) == bool(from_json):
        raise UsageError("give either --in FILE.jsonl (repeatable) or --from-cogvision-json FILE")
    if from_json is not None:
        with tempfile.TemporaryDirectory(prefix="cogvision-convert-") as work:
            _run_convert(from_json, images, Path(work), out, settings, overwrite, push_to_hub)
    else:
        _run_publish(list(inputs or []), out, settings, overwrite, push_to_hub)
    if push_to_hub:
        from cogvision.publish.hub import push_to_hub as push

        console.print(f"pushed to {push(out, push_to_hub, private=private)}")


def _run_convert(from_json: Path, images: Path | None, work: Path, out: Path,
                 settings: PublishConfig, overwrite: bool, hub_repo: str | None) -> None:
    from cogvision.publish.convert import convert_cogvision_json

    if images is None:
        raise UsageError("--from-cogvision-json needs --images DIR (the release's image folder)")
    path, failures = convert_cogvision_json(from_json, images, work, taxonomy=settings.taxonomy,
                                            dataset=settings.source, license=settings.license,
                                            model=settings.model)
    if failures:
        err_console.print(f"{len(failures)} release items could not be converted, e.g. "
                          f"{failures[0].message}", highlight=False, soft_wrap=True)
    _run_publish([path], out, settings, overwrite, hub_repo, failures)


def _run_publish(inputs: list[Path], out: Path, settings: PublishConfig, overwrite: bool,
                 hub_repo: str | None, earlier_failures: list | None = None) -> None:
    from cogvision.publish.build import check_out_dir, publish_dataset

    check_out_dir(out, overwrite)  # before the progress bar starts
    with progress(failures=False) as bar:
        task = bar.add_task("embedding images", total=None)
        result = publish_dataset(
            inputs, out, name=settings.name or "", test_fraction=settings.test_fraction,
            seed=settings.seed, datasheet=settings.datasheet, overwrite=overwrite,
            max_shard_bytes=settings.max_shard_bytes, load_path=hub_repo,
            earlier_failures=earlier_failures,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    stats = result.stats
    splits = ", ".join(f"{s} {stats['questions'][s]}/{stats['subquestions'][s]}"
                       for s in stats["splits"])
    console.print(f"{out}: {stats['questions']['total']} main questions, "
                  f"{stats['subquestions']['total']} sub-questions (questions/sub-questions: "
                  f"{splits})")
    left = {k: v for k, v in result.left_out.items() if v}
    if left:
        shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in left.items())
        console.print(f"left out: {shown}")


def _run_check(folder: Path) -> None:
    from cogvision.publish.check import check_dataset

    report = check_dataset(folder)
    for problem in report.problems:
        err_console.print(problem, highlight=False, soft_wrap=True)
    if report.n_problems > len(report.problems):
        err_console.print(f"... and {report.n_problems - len(report.problems)} more problems")
    if not report.ok:
        err_console.print(f"{folder}: {report.n_problems} problems")
        raise typer.Exit(1)
    rows = ", ".join(f"{k} {v}" for k, v in report.rows.items())
    console.print(f"{folder}: OK ({rows} rows loaded, validated, images decoded)")


def register(app: typer.Typer) -> None:
    app.command("publish", epilog=EPILOG)(publish)
