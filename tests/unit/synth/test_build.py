"""build_benchmark: files on disk, determinism, images, manifest, bad arguments, interruptions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cogvision.artifacts import read_jsonl, read_manifest
from cogvision.errors import UsageError
from cogvision.images import load_image, verify_image
from cogvision.schema import Decomposition, SourceQuestion
from cogvision.sources.synth import build_benchmark
from cogvision.sources.synth.scenes import COLOURS


def files_of(folder: Path) -> dict[str, bytes]:
    """Every output file except the manifest (which records wall-clock times)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "cogvision"
    build_benchmark("cogvision", 40, 11, out)
    return out


def test_outputs_validate_and_images_match_their_sha256(built):
    questions = read_jsonl(built / "questions.jsonl", SourceQuestion)
    decompositions = read_jsonl(built / "decompositions.jsonl", Decomposition)
    assert len(questions) == len(decompositions) == 40
    assert [d.question for d in decompositions] == questions
    for question in questions:
        assert question.image.path == f"images/{question.id}.png"
        verify_image(question.image, built)
        assert question.source.dataset == "synthetic-cogvision"
        assert question.license == "CC0-1.0"
    assert len(list((built / "images").glob("*.png"))) == 40
    assert (built / "failures.jsonl").read_text() == ""
    assert not list(built.rglob(".*tmp"))


def test_image_pixels_agree_with_the_scene_graph_in_metadata(built):
    for question in read_jsonl(built / "questions.jsonl", SourceQuestion):
        pixels = np.asarray(load_image(question.image, built))  # [128, 128, 3]
        assert pixels.shape == (128, 128, 3)
        for obj in question.metadata["scene"]["objects"]:
            assert tuple(pixels[int(obj["y"]), int(obj["x"])]) == COLOURS[obj["colour"]]


def test_provenance_and_manifest(built):
    decomposition = read_jsonl(built / "decompositions.jsonl", Decomposition)[0]
    provenance = decomposition.provenance
    assert (provenance.generator, provenance.model) == ("synth", "synth-programs")
    assert provenance.parameters["seed"] == 11 and provenance.parameters["grid"] == 4
    assert decomposition.taxonomy == "cogvision"
    manifest = read_manifest(built / "manifest.json")
    assert manifest.stage == "synth" and manifest.seed == 11
    assert manifest.counts["questions"] == 40
    subquestions = sum(
        len(d.subquestions) for d in read_jsonl(built / "decompositions.jsonl", Decomposition)
    )
    assert manifest.counts["subquestions"] == subquestions
    assert sum(manifest.extra["by_function"].values()) == subquestions
    assert manifest.config["variant"] == "cogvision" and manifest.config["image_size"] == 128
    assert {Path(o.path).name for o in manifest.outputs} == {
        "questions.jsonl",
        "decompositions.jsonl",
    }


def test_same_seed_gives_byte_identical_files_and_prefixes(tmp_path, built):
    build_benchmark("cogvision", 40, 11, tmp_path / "again")
    assert files_of(tmp_path / "again") == files_of(built)
    build_benchmark("cogvision", 7, 11, tmp_path / "short")
    short = (tmp_path / "short" / "decompositions.jsonl").read_text().splitlines()
    assert short == (built / "decompositions.jsonl").read_text().splitlines()[:7]
    build_benchmark("cogvision", 7, 12, tmp_path / "other")
    other = (tmp_path / "other" / "decompositions.jsonl").read_text().splitlines()
    assert all(a != b for a, b in zip(short, other, strict=True))


def test_templates_are_balanced_and_can_be_restricted(tmp_path):
    result = build_benchmark("cogvsr", 22, 0, tmp_path / "all")
    assert set(result.by_template.values()) == {2}  # 11 templates, round robin
    assert len(result.by_template) == 11
    result = build_benchmark("cogvsr", 5, 0, tmp_path / "one", templates=["closer_to"])
    assert result.by_template == {"closer_to": 5}


def test_small_grid_skips_templates_that_cannot_fit(tmp_path):
    result = build_benchmark("cogvsr", 27, 0, tmp_path, image_size=64, grid=2)
    assert result.questions == 27
    assert "leftmost_of_three" not in result.by_template  # needs three distinct columns
    question = read_jsonl(tmp_path / "questions.jsonl", SourceQuestion)[0]
    assert question.image.width == 64 and question.metadata["scene"]["cell_size"] == 32


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "--n must be a positive number"),
        ({"n": -3}, "--n must be a positive number"),
        ({"variant": "cogqa"}, "unknown variant 'cogqa'; valid: cogvision, cogvsr"),
        ({"grid": 5}, "--image-size 128 must be a multiple of --grid 5"),
        ({"grid": 1}, "--grid must be between 2 and 16"),
        ({"jitter": 1.5}, "--jitter must be between 0 and 1"),
        ({"templates": ["nope"]}, "unknown cogvision template 'nope'; valid: count_colour"),
    ],
)
def test_bad_arguments_are_usage_errors_and_write_nothing(tmp_path, kwargs, message):
    args = {"variant": "cogvision", "n": 3, "seed": 0, "out_dir": tmp_path / "out", **kwargs}
    with pytest.raises(UsageError, match=message.replace("(", r"\(")) as info:
        build_benchmark(**args)
    assert info.value.exit_code == 2
    assert not (tmp_path / "out").exists()


def test_refuses_a_folder_with_foreign_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not a synth output folder"):
        build_benchmark("cogvision", 2, 0, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_interrupted_run_leaves_no_partial_files_and_a_rerun_completes(tmp_path):
    calls = []

    def stop_after_three() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_benchmark("cogvsr", 10, 4, tmp_path / "out", on_item=stop_after_three)
    out = tmp_path / "out"
    assert not (out / "questions.jsonl").exists() and not (out / "decompositions.jsonl").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    build_benchmark("cogvsr", 10, 4, out)
    build_benchmark("cogvsr", 10, 4, tmp_path / "clean")
    assert files_of(out) == files_of(tmp_path / "clean")


def test_rerun_with_fewer_items_removes_stale_images(tmp_path):
    build_benchmark("cogvision", 6, 0, tmp_path)
    build_benchmark("cogvision", 2, 5, tmp_path)
    ids = {json.loads(line)["id"] for line in (tmp_path / "questions.jsonl").open()}
    assert {p.stem for p in (tmp_path / "images").glob("*.png")} == ids


def test_one_object_scenes_for_a_curriculum(tmp_path):
    result = build_benchmark("cogvision", 30, 0, tmp_path, min_objects=1, max_objects=1)
    assert result.questions == 30
    for question in read_jsonl(tmp_path / "questions.jsonl", SourceQuestion):
        assert len(question.metadata["scene"]["objects"]) == 1
    with pytest.raises(UsageError, match="1 <= min"):
        build_benchmark("cogvision", 3, 0, tmp_path / "bad", min_objects=0)
