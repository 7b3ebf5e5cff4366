"""`cogvision import`: bring existing datasets into the record format (thin shell over sources)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, Field
from rich.table import Table

from cogvision.cli.common import ConfigOption, OverrideOption, console, err_console, progress
from cogvision.config import resolve
from cogvision.errors import ArtifactError, UsageError
from cogvision.sources.common import ImportResult, ItemCallback

KINDS = ("recipe", "hf", "cogjson", "folder", "easy_vqa")


class ImportConfig(BaseModel):
    """Everything `cogvision import` can be told (defaults < --config YAML < flags < -C)."""

    model_config = ConfigDict(extra="forbid")

    out: Path | None = None
    recipe: str | None = None
    hf: Path | None = None
    cogjson: Path | None = None
    folder: Path | None = None
    easy_vqa: bool = False
    keep_going: bool = False
    source_path: list[str] = Field(default_factory=list)
    only: list[str] = Field(default_factory=list)
    sample: int | None = None
    seed: int | None = None
    limit: int | None = None
    splits: list[str] = Field(default_factory=lambda: ["train", "test"])
    taxonomy: str = "cogvision"
    image_root: Path | None = None
    dataset: str | None = None
    split: str | None = None
    license: str = "unknown"
    model: str | None = None
    cache_dir: Path | None = None

    def kind(self) -> str:
        chosen = [k for k in KINDS if getattr(self, k) not in (None, False)]
        if len(chosen) != 1:
            flags = ", ".join(f"--{k.replace('_', '-')}" for k in KINDS)
            raise UsageError(f"give exactly one source: {flags} (got {len(chosen)})")
        if self.out is None:
            raise UsageError("missing --out DIR")
        return chosen[0]


def run_import(cfg: ImportConfig, on_item: ItemCallback | None = None) -> ImportResult:
    """Call the importer the config names (the whole of `cogvision import`, without printing)."""
    kind, out = cfg.kind(), cfg.out
    assert out is not None
    keep = cfg.keep_going
    if kind == "easy_vqa":
        from cogvision.sources.easyvqa import import_easy_vqa

        return import_easy_vqa(out, splits=cfg.splits, limit=cfg.limit, keep_going=keep,
                               on_item=on_item)
    if kind == "folder":
        from cogvision.sources.folder import import_folder

        assert cfg.folder is not None
        return import_folder(cfg.folder, out, image_root=cfg.image_root, dataset=cfg.dataset,
                             split=cfg.split or "train", license=cfg.license, keep_going=keep,
                             on_item=on_item)
    if kind == "cogjson":
        from cogvision.sources.cogjson import import_cogvision_json

        assert cfg.cogjson is not None
        return import_cogvision_json(cfg.cogjson, out, taxonomy=cfg.taxonomy,
                                     image_root=cfg.image_root, dataset=cfg.dataset,
                                     split=cfg.split or "unknown", license=cfg.license,
                                     model=cfg.model, keep_going=keep, on_item=on_item)
    return _run_hub(kind, cfg, on_item)


def _run_hub(kind: str, cfg: ImportConfig, on_item: ItemCallback | None) -> ImportResult:
    from cogvision.sources.hf import import_hf, load_spec
    from cogvision.sources.recipe import import_recipe, parse_overrides

    overrides = parse_overrides(cfg.source_path)
    if kind == "recipe":
        return import_recipe(cfg.recipe or "", cfg.out or Path(), path_overrides=overrides,
                             only=cfg.only or None, sample=cfg.sample, seed=cfg.seed,
                             keep_going=cfg.keep_going, cache_dir=cfg.cache_dir, on_item=on_item)
    spec = load_spec(cfg.hf or Path())
    unknown = sorted(set(overrides) - {spec.name})
    if unknown:
        raise UsageError(f"--source-path names {', '.join(unknown)}; the spec's source is "
                         f"{spec.name}")
    return import_hf(spec, cfg.out or Path(), path=overrides.get(spec.name), sample=cfg.sample,
                     seed=cfg.seed, keep_going=cfg.keep_going, cache_dir=cfg.cache_dir,
                     on_item=on_item)


def _summary(result: ImportResult) -> None:
    console.print(f"imported {result.count} items ({result.images} images) into {result.out_dir} "
                  f"in {result.seconds:.1f} s; failures: {result.failed}")
    if result.stray_labels:
        table = Table(title="stray function labels (items kept out, see failures.jsonl)")
        table.add_column("label")
        table.add_column("count", justify="right")
        for label, count in result.stray_labels.items():
            table.add_row(label, str(count))
        console.print(table)
    for path in result.paths:
        console.print(f"wrote {path}")


def _run_with_progress(cfg: ImportConfig) -> ImportResult:
    """The import, with a live progress bar when stderr is a terminal (pipes stay clean)."""
    if not err_console.is_terminal:
        return run_import(cfg)
    with progress() as bar:
        task = bar.add_task(f"import {cfg.kind()}", total=None, failures=0, retries=0)

        def advance(done: int, failed: int) -> None:
            bar.update(task, completed=done, failures=failed)

        return run_import(cfg, advance)


def import_command(
    out: Annotated[Path | None, typer.Option("--out", help="Output folder.")] = None,
    recipe: Annotated[str | None, typer.Option(
        help="A built-in recipe (cogvision, cogvsr) or a recipe YAML: the papers' source pools "
             "from the Hugging Face hub.")] = None,
    hf: Annotated[Path | None, typer.Option(
        help="A source spec YAML for any dataset `datasets.load_dataset` can open.")] = None,
    cogjson: Annotated[Path | None, typer.Option(
        help="Decompositions in the CogVision/CogQA JSON shape (.json array or .jsonl).")] = None,
    folder: Annotated[Path | None, typer.Option(
        help="A JSONL of {image, question, answer, choices?, id?}; images relative to it.")] = None,
    easy_vqa: Annotated[bool, typer.Option(
        "--easy-vqa", help="The easy-VQA package (5,000 real images, offline, MIT).")] = False,
    keep_going: Annotated[bool, typer.Option(
        "--keep-going", help="Write the good items plus failures.jsonl instead of stopping.")
    ] = False,
    source_path: Annotated[list[str] | None, typer.Option(
        help="NAME=PATH: load source NAME from PATH (a local copy) instead of the hub "
             "(repeatable).")] = None,
    only: Annotated[list[str] | None, typer.Option(
        help="Recipe: import only this source (repeatable).")] = None,
    sample: Annotated[int | None, typer.Option(help="Override each source's sample size.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override each source's sampling seed.")] = None,
    limit: Annotated[int | None, typer.Option(help="easy-vqa: at most N questions per split.")]
    = None,
    taxonomy: Annotated[str | None, typer.Option(
        help="cogjson: taxonomy the labels map into (cogvision, cogvsr, cogqa).")] = None,
    image_root: Annotated[Path | None, typer.Option(
        help="cogjson/folder: folder image paths are relative to (default: the file's).")] = None,
    dataset: Annotated[str | None, typer.Option(help="cogjson/folder: source dataset name.")]
    = None,
    split: Annotated[str | None, typer.Option(help="cogjson/folder: source split name.")] = None,
    license: Annotated[str | None, typer.Option(help="cogjson/folder: licence of the items.")]
    = None,
    model: Annotated[str | None, typer.Option(
        help="cogjson: the model that wrote the decompositions (provenance).")] = None,
    config: ConfigOption = None,
    overrides: OverrideOption = None,
) -> None:
    """Import a source into DIR/questions.jsonl (+ decompositions.jsonl), images/ and a manifest.

    Examples:

      cogvision import --easy-vqa --out work/easyvqa

      cogvision import --recipe cogvision --out work/pool

      cogvision import --hf mathvista.yaml --sample 50 --out work/mathvista

      cogvision import --cogjson cogvision_train.json --image-root imgs --out work/cv --keep-going

      cogvision import --folder my/questions.jsonl --license CC-BY-4.0 --out work/mine
    """
    flags: dict[str, Any] = {
        "out": out, "recipe": recipe, "hf": hf, "cogjson": cogjson, "folder": folder,
        "easy_vqa": easy_vqa or None, "keep_going": keep_going or None,
        "source_path": source_path or None, "only": only or None, "sample": sample, "seed": seed,
        "limit": limit, "taxonomy": taxonomy, "image_root": image_root, "dataset": dataset,
        "split": split, "license": license, "model": model,
    }
    cfg = resolve(ImportConfig, path=config, overrides=overrides, flags=flags)
    cfg.kind()
    result = _run_with_progress(cfg)
    _summary(result)
    if result.count == 0:
        raise ArtifactError(f"no item could be imported; see {result.failures}")
    if result.failed:
        err_console.print(f"{result.failed} items failed: see {result.failures}")


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)
