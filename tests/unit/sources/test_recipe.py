"""Recipes: the built-in pools' contents, and the mechanics on local parquet stand-ins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cogvision.artifacts import read_jsonl
from cogvision.errors import SchemaError, UsageError
from cogvision.schema import SourceQuestion
from cogvision.sources.recipe import import_recipe, load_recipe, parse_overrides
from tests.unit.sources.helpers import mc_features, mc_rows, mc_spec, write_hub_dataset

COGVISION_SOURCES = {"ClevrMath": 200, "MathVision": 200, "MathVista": 200, "MMMU": 200,
                     "ScienceQA": 200, "VCR": 200, "VisuLogic": 200, "Super-CLEVR": 200,
                     "OK-VQA": 400}
COGVSR_SOURCES = {"VSR": 400, "SpatialEval": 400, "3DSRBench": 400, "Spatial457": 400}


@pytest.mark.parametrize(("name", "expected", "taxonomy"),
                         [("cogvision", COGVISION_SOURCES, "cogvision"),
                          ("cogvsr", COGVSR_SOURCES, "cogvsr")])
def test_builtin_recipes_match_the_papers(name: str, expected: dict[str, int],
                                          taxonomy: str) -> None:
    recipe = load_recipe(name)
    assert {s.name: s.sample for s in recipe.sources} == expected
    assert recipe.taxonomy == taxonomy
    for spec in recipe.sources:
        assert spec.license and spec.card and spec.card.startswith("https://huggingface.co/")
        assert "/" in spec.path  # a hub id
    if name == "cogvision":
        assert sum(expected.values()) == 2000


def test_builtin_recipe_yaml_says_what_was_not_checked() -> None:
    from importlib import resources

    for name in ("cogvision", "cogvsr"):
        text = resources.files("cogvision.sources").joinpath("recipes", f"{name}.yaml").read_text()
        for spec in load_recipe(name).sources:
            if not spec.card_checked:
                block = text.split(f"- name: {spec.name}\n", 1)[1].split("- name:", 1)[0]
                assert "NOT CHECKED" in block, spec.name


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("standins")
    write_hub_dataset(base / "one", {("main", "test"): mc_rows(8)}, mc_features())
    write_hub_dataset(base / "two", {("main", "test"): mc_rows(6, start=50)}, mc_features())
    recipe = {"name": "mini", "description": "two local sources", "sources": [
        mc_spec("org/one", name="One", sample=3, seed=1),
        mc_spec("org/two", name="Two", sample=10, seed=2, license="MIT")]}
    (base / "mini.yaml").write_text(yaml.safe_dump(recipe))
    return base


def test_recipe_on_local_stand_ins(stand_ins: Path, tmp_path: Path) -> None:
    overrides = {"One": str(stand_ins / "one"), "Two": str(stand_ins / "two")}
    result = import_recipe(stand_ins / "mini.yaml", tmp_path / "pool", path_overrides=overrides,
                           cache_dir=tmp_path / "cache")
    questions = read_jsonl(result.questions, SourceQuestion)
    by_source = [q.source.dataset for q in questions]
    assert by_source.count("One") == 3 and by_source.count("Two") == 6  # Two has only 6 rows
    assert {q.license for q in questions if q.source.dataset == "Two"} == {"MIT"}
    manifest = json.loads(result.manifest.read_text())
    done = {s["name"]: s for s in manifest["extra"]["sources"]}
    assert done["One"]["path"] == overrides["One"] and done["Two"]["imported"] == 6
    assert manifest["counts"]["source:One"] == 3 and manifest["config"]["recipe"] == "mini"


def test_recipe_only_and_sample_override(stand_ins: Path, tmp_path: Path) -> None:
    result = import_recipe(stand_ins / "mini.yaml", tmp_path / "pool", only=["Two"], sample=2,
                           path_overrides={"Two": str(stand_ins / "two")},
                           cache_dir=tmp_path / "cache")
    assert [q.source.dataset for q in read_jsonl(result.questions, SourceQuestion)] == ["Two"] * 2


def test_unknown_source_names_and_bad_overrides(stand_ins: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="has no source Three; its sources: One, Two"):
        import_recipe(stand_ins / "mini.yaml", tmp_path / "pool", path_overrides={"Three": "x"})
    with pytest.raises(UsageError, match="must look like NAME=PATH"):
        parse_overrides(["just-a-path"])
    with pytest.raises(UsageError, match="unknown recipe 'nope'"):
        load_recipe("nope")
    assert not (tmp_path / "pool").exists()


def test_invalid_recipe_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "sources": [{"name": "x"}]}))
    with pytest.raises(SchemaError, match=r"bad\.yaml: sources\.0\.path: Field required"):
        load_recipe(bad)
    dup = tmp_path / "dup.yaml"
    spec = mc_spec("a/b")
    dup.write_text(yaml.safe_dump({"name": "dup", "sources": [spec, spec]}))
    with pytest.raises(SchemaError, match="duplicate source names"):
        load_recipe(dup)
