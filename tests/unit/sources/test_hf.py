"""Hugging Face importer on local hub-style parquet datasets (real `datasets` round trips)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cogvision.artifacts import read_jsonl
from cogvision.errors import SchemaError
from cogvision.images import verify_image
from cogvision.schema import FailureRecord, SourceQuestion, sha256_bytes
from cogvision.sources.hf import SourceSpec, import_hf, load_spec, sample_rows
from tests.unit.sources.helpers import (
    mc_features,
    mc_rows,
    mc_spec,
    png_bytes,
    write_hub_dataset,
)


@pytest.fixture(scope="module")
def mc_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hub") / "LocalMC"
    return write_hub_dataset(root, {("main", "test"): mc_rows(12),
                                    ("other", "test"): mc_rows(4, start=100)}, mc_features())


def test_letter_answers_images_and_metadata_round_trip(mc_dataset: Path, tmp_path: Path) -> None:
    spec = SourceSpec.model_validate(mc_spec(mc_dataset, sample=None))
    result = import_hf(spec, tmp_path / "out", cache_dir=tmp_path / "cache")
    questions = read_jsonl(result.questions, SourceQuestion)
    assert result.count == 12 and result.images == 12
    for q, row in zip(questions, mc_rows(12), strict=True):
        assert q.question == row["prompt"] and q.choices == row["options"]
        assert q.answer == row["options"]["ABC".index(row["letter"])]
        assert q.source.dataset == "LocalMC" and q.source.config == "main"
        assert q.source.split == "test" and q.source.index == row["qid"]
        assert q.metadata == {"kind": row["kind"]} and q.license == "CC-BY-4.0"
        assert q.image is not None and q.image.sha256 == sha256_bytes(row["picture"]["bytes"])
        verify_image(q.image, tmp_path / "out")


def test_sampling_is_seeded_filtered_and_in_source_order(mc_dataset: Path, tmp_path: Path) -> None:
    spec = SourceSpec.model_validate(mc_spec(mc_dataset, sample=4, seed=7,
                                             where={"kind": "multi_choice"}))
    first = import_hf(spec, tmp_path / "a", cache_dir=tmp_path / "cache")
    again = import_hf(spec, tmp_path / "b", cache_dir=tmp_path / "cache")
    other = import_hf(spec, tmp_path / "c", seed=8, cache_dir=tmp_path / "cache")
    ids = [q.source.index for q in read_jsonl(first.questions, SourceQuestion)]
    assert ids == [q.source.index for q in read_jsonl(again.questions, SourceQuestion)]
    assert ids != [q.source.index for q in read_jsonl(other.questions, SourceQuestion)]
    numbers = [int(i[1:]) for i in ids]
    assert len(ids) == 4 and numbers == sorted(numbers)
    assert all(n % 2 == 0 for n in numbers)  # only multi_choice rows pass the filter
    assert first.questions.read_bytes() == again.questions.read_bytes()


def test_pooled_configs(mc_dataset: Path, tmp_path: Path) -> None:
    spec = SourceSpec.model_validate(mc_spec(mc_dataset, config=None, configs=["main", "other"],
                                             sample=None))
    result = import_hf(spec, tmp_path / "out", cache_dir=tmp_path / "cache")
    configs = [q.source.config for q in read_jsonl(result.questions, SourceQuestion)]
    assert configs.count("main") == 12 and configs.count("other") == 4


def test_index_majority_columns_and_fixed_choices(tmp_path: Path) -> None:
    from datasets import Features, Image, List, Value

    rows = [{"q": "Which?", "opts": ["x", "y", "z"], "idx": 2, "votes": ["cat", "dog", "cat"],
             "A": "up", "B": "down", "C": "nan", "L": "B", "flag": 1,
             "img": {"bytes": png_bytes((1, 2, 3)), "path": None}}]
    features = Features({"q": Value("string"), "opts": List(Value("string")),
                         "idx": Value("int32"), "votes": List(Value("string")),
                         "A": Value("string"), "B": Value("string"), "C": Value("string"),
                         "L": Value("string"), "flag": Value("int32"), "img": Image()})
    root = write_hub_dataset(tmp_path / "ds", {("default", "train"): rows}, features)
    base = {"name": "T", "path": str(root), "split": "train", "license": "MIT"}
    cases = [
        ({"question": "q", "answer": "idx", "image": "img", "choices": "opts"},
         {"answer_format": "index"}, "z", ["x", "y", "z"]),
        ({"question": "q", "answer": "votes", "image": "img"}, {"answer_format": "majority"},
         "cat", None),
        ({"question": "q", "answer": "L", "image": "img", "choices": ["A", "B", "C"]},
         {"answer_format": "letter"}, "down", ["up", "down"]),
        ({"question": "q", "answer": "flag", "image": "img"},
         {"answer_format": "index", "fixed_choices": ["False", "True"]}, "True",
         ["False", "True"]),
    ]
    for n, (fields, extra, answer, choices) in enumerate(cases):
        spec = SourceSpec.model_validate({**base, "fields": fields, **extra})
        result = import_hf(spec, tmp_path / f"out{n}", cache_dir=tmp_path / "cache")
        (q,) = read_jsonl(result.questions, SourceQuestion)
        assert (q.answer, q.choices) == (answer, choices)


def test_rows_without_image_are_skipped_before_sampling(tmp_path: Path) -> None:
    from datasets import Features, Image, Value

    rows = [{"q": f"q{i}", "a": "a", "img": ({"bytes": png_bytes((i, 0, 0)), "path": None}
                                             if i % 3 else None)} for i in range(9)]
    features = Features({"q": Value("string"), "a": Value("string"), "img": Image()})
    root = write_hub_dataset(tmp_path / "ds", {("default", "test"): rows}, features)
    spec = SourceSpec(name="S", path=str(root), split="test", license="MIT",
                      fields={"question": "q", "answer": "a", "image": "img"})
    result = import_hf(spec, tmp_path / "out", cache_dir=tmp_path / "cache")
    kept = [q.question for q in read_jsonl(result.questions, SourceQuestion)]
    assert kept == ["q1", "q2", "q4", "q5", "q7", "q8"]


def test_bad_answer_names_source_row_and_field(mc_dataset: Path, tmp_path: Path) -> None:
    spec = SourceSpec.model_validate(mc_spec(mc_dataset, answer_format="index", sample=None))
    out = tmp_path / "out"
    with pytest.raises(SchemaError) as info:
        import_hf(spec, out, cache_dir=tmp_path / "cache")
    assert str(info.value).startswith("LocalMC/main/test:0: letter: answer does not point into "
                                      "the 3 choices (value: 'A')")
    assert not out.exists()
    result = import_hf(spec, out, keep_going=True, cache_dir=tmp_path / "cache")
    assert result.count == 0 and result.failed == 12
    assert read_jsonl(result.failures, FailureRecord)[0].item_id == "LocalMC:main:test:0"


def test_image_paths_stay_inside_the_local_copy(tmp_path: Path) -> None:
    from datasets import Features, Value

    root = tmp_path / "ds"
    (root / "pics").mkdir(parents=True)
    (root / "pics" / "ok.png").write_bytes(png_bytes((3, 3, 3)))
    (tmp_path / "secret.png").write_bytes(png_bytes((4, 4, 4)))
    rows = [{"q": "ok?", "a": "y", "file": "ok.png"},
            {"q": "bad?", "a": "y", "file": "../../secret.png"}]
    features = Features({"q": Value("string"), "a": Value("string"), "file": Value("string")})
    write_hub_dataset(root, {("default", "test"): rows}, features)
    spec = SourceSpec(name="P", path="someone/on-the-hub", split="test", license="MIT",
                      image_root="pics", fields={"question": "q", "answer": "a", "image": "file"})
    with pytest.raises(SchemaError, match=r"P/default/test:1: image: image path escapes"):
        import_hf(spec, tmp_path / "out", path=str(root), cache_dir=tmp_path / "cache")
    result = import_hf(spec, tmp_path / "out", path=str(root), keep_going=True,
                       cache_dir=tmp_path / "cache")
    assert result.count == 1 and result.failed == 1


def test_spec_file_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"name": "X", "path": "p", "split": "s", "license": "MIT",
                                    "fields": {"question": "q"}}))
    with pytest.raises(SchemaError, match=r"spec\.yaml: fields\.answer: Field required"):
        load_spec(path)


def test_sample_rows_reads_only_what_it_needs() -> None:
    class Table(list):
        reads = 0

        def __getitem__(self, i):  # type: ignore[override]
            Table.reads += 1
            return super().__getitem__(i)

    table = Table({"x": i} for i in range(1000))
    spec = SourceSpec(name="S", path="p", split="s", license="MIT",
                      fields={"question": "x", "answer": "x"})
    rows = sample_rows([(None, table)], spec, 10, seed=0)
    assert len(rows) == 10 and Table.reads == 10
    assert [i for _, i, _ in rows] == sorted(i for _, i, _ in rows)


def test_unloadable_source_is_one_clear_error(mc_dataset: Path, tmp_path: Path) -> None:
    from cogvision.errors import ArtifactError

    missing = SourceSpec.model_validate(mc_spec(tmp_path / "no-such-folder"))
    with pytest.raises(ArtifactError, match=r"LocalMC: cannot load .*no-such-folder.*"
                                            r"--source-path LocalMC=DIR"):
        import_hf(missing, tmp_path / "out", cache_dir=tmp_path / "cache")
    wrong_split = SourceSpec.model_validate(mc_spec(mc_dataset, split="validation"))
    with pytest.raises(ArtifactError, match=r"split validation\): ValueError"):
        import_hf(wrong_split, tmp_path / "out", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out").exists()
