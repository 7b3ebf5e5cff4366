"""Recipes: the papers' source pools as lists of Hugging Face source specs.

``recipes/cogvision.yaml`` samples the nine CogVision sources (200 each, 400 from OK-VQA) and
``recipes/cogvsr.yaml`` the four CogVSR sources (400 each). ``import_recipe`` imports every source
into one folder; ``path_overrides`` point a source at another location (a local mirror or, in the
tests, a parquet stand-in), so the recipe's mechanics run without the hub.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cogvision.config import load_yaml
from cogvision.errors import SchemaError, UsageError
from cogvision.sources.common import ImportResult, ImportSession, ItemCallback
from cogvision.sources.hf import SourceSpec, import_source

BUILTIN = ("cogvision", "cogvsr")


class Recipe(BaseModel):
    """A named list of source specs that together make a source pool."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    taxonomy: str | None = Field(default=None, description="Taxonomy the pool is decomposed into.")
    sources: list[SourceSpec] = Field(min_length=1)

    def names(self) -> list[str]:
        return [s.name for s in self.sources]


def recipe_path(name_or_path: str | Path) -> Path:
    """The YAML of a built-in recipe (``cogvision``, ``cogvsr``) or a recipe file's path."""
    if str(name_or_path) in BUILTIN:
        ref = resources.files("cogvision.sources").joinpath("recipes", f"{name_or_path}.yaml")
        return Path(str(ref))
    path = Path(name_or_path)
    if not path.is_file():
        raise UsageError(f"unknown recipe {str(name_or_path)!r}: use one of {', '.join(BUILTIN)} "
                         "or the path of a recipe YAML file")
    return path


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Load and validate a recipe; errors name the file and the field."""
    path = recipe_path(name_or_path)
    data: dict[str, Any] = load_yaml(path)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SchemaError(str(first["msg"]), path=path,
                          field=".".join(str(p) for p in first["loc"])) from None
    names = recipe.names()
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SchemaError("duplicate source names", path=path, field="sources", value=duplicates)
    return recipe


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """``NAME=PATH`` strings from the command line as a dict."""
    result = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UsageError(f"source path override {item!r} must look like NAME=PATH")
        result[name.strip()] = path.strip()
    return result


def import_recipe(recipe: Recipe | str | Path, out_dir: str | Path, *,
                  path_overrides: dict[str, str] | None = None, only: list[str] | None = None,
                  sample: int | None = None, seed: int | None = None, keep_going: bool = False,
                  cache_dir: str | Path | None = None,
                  on_item: ItemCallback | None = None) -> ImportResult:
    """Import every source of a recipe into one folder.

    Args:
        recipe: A Recipe, a built-in recipe name or a recipe file.
        out_dir: Output folder.
        path_overrides: Source name -> path to load instead of the hub id.
        only: Import just these sources (by name).
        sample: Override every source's sample size (e.g. a small trial run).
        seed: Override every source's seed.
        keep_going: Record bad rows in ``failures.jsonl`` instead of stopping.
        cache_dir: ``datasets`` cache folder.
        on_item: Called after each row with (handled, failures), e.g. for a progress bar.

    Returns:
        The ImportResult; the manifest lists what each source contributed.

    Raises:
        UsageError: An override or ``only`` names a source the recipe does not have.
    """
    source_file = None
    if not isinstance(recipe, Recipe):
        source_file = recipe_path(recipe)
        recipe = load_recipe(recipe)
    overrides = path_overrides or {}
    unknown = sorted((set(overrides) | set(only or [])) - set(recipe.names()))
    if unknown:
        raise UsageError(f"recipe {recipe.name!r} has no source {', '.join(unknown)}; "
                         f"its sources: {', '.join(recipe.names())}")
    if sample is not None and sample <= 0:
        raise UsageError(f"sample must be positive (got {sample})")
    chosen = [s for s in recipe.sources if not only or s.name in only]
    done = []
    with ImportSession(out_dir, source=recipe.name, keep_going=keep_going,
                       on_item=on_item) as session:
        for spec in chosen:
            done.append(import_source(session, spec, path=overrides.get(spec.name), sample=sample,
                                      seed=seed, cache_dir=cache_dir))
        config = {"kind": "recipe", "recipe": recipe.name, "path_overrides": overrides,
                  "only": only, "sample": sample, "seed": seed, "keep_going": keep_going}
        return session.commit(config=config, inputs=[source_file] if source_file else [],
                              extra={"recipe": recipe.model_dump(mode="json"), "sources": done},
                              seed=seed)
