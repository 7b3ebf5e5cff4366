"""Publish the synthetic benchmark, load it back with plain `datasets.load_dataset`, compare."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from PIL import Image

from cogvision.artifacts import read_jsonl
from cogvision.publish.build import PublishResult, publish_dataset
from cogvision.publish.card import read_card_metadata
from cogvision.publish.check import check_dataset
from cogvision.publish.rows import features, subquestion_id
from cogvision.schema import Decomposition, assign_splits, sha256_bytes


def _load(root: Path, config: str) -> datasets.DatasetDict:
    return datasets.load_dataset(str(root), config, cache_dir=str(root.parent / f"cache-{config}"))


def test_main_rows_equal_the_source_records(published: PublishResult, synth_dir: Path) -> None:
    records = {d.question.id: d for d in read_jsonl(synth_dir / "decompositions.jsonl",
                                                    Decomposition)}
    expected_split = assign_splits([d.question for d in records.values()], test_fraction=0.25,
                                   seed=7)
    loaded = _load(published.out_dir, "main")
    assert set(loaded) == {"train", "test"}
    assert loaded["train"].features == features("main")
    seen = set()
    for split, ds in loaded.items():
        for row in ds:
            source = records[row["id"]]
            q = source.question
            assert expected_split[q.id] == split
            assert (row["question"], row["answer"], row["choices"]) == (q.question, q.answer,
                                                                        q.choices)
            assert (row["source"], row["source_split"], row["source_index"], row["license"]) == (
                q.source.dataset, q.source.split, q.source.index, q.license)
            assert row["decomposition_id"] == source.id
            assert row["subquestions"] == [
                {"index": s.index, "question": s.question, "answer": s.answer,
                 "function": s.function} for s in source.subquestions]
            assert isinstance(row["image"], Image.Image)
            assert row["image"].size == (q.image.width, q.image.height)
            on_disk = Image.open(synth_dir / q.image.path).convert("RGB")
            assert row["image"].convert("RGB").tobytes() == on_disk.tobytes()
            seen.add(row["id"])
    assert seen == set(records)


def test_subquestion_rows_carry_context_and_the_same_image(published: PublishResult,
                                                           synth_dir: Path) -> None:
    records = {d.question.id: d for d in read_jsonl(synth_dir / "decompositions.jsonl",
                                                    Decomposition)}
    loaded = _load(published.out_dir, "subquestions")
    total = 0
    for ds in loaded.values():
        raw = ds.cast_column("image", datasets.Image(decode=False))
        for row in raw:
            source = records[row["main_id"]]
            step = source.subquestions[row["index"]]
            assert row["id"] == subquestion_id(source.question.id, step.index)
            assert (row["question"], row["answer"], row["function"]) == (
                step.question, step.answer, step.function)
            assert row["main_question"] == source.question.question
            assert row["context"] == [
                {"index": e.index, "question": e.question, "answer": e.answer}
                for e in source.subquestions[: step.index]]
            assert sha256_bytes(row["image"]["bytes"]) == source.question.image.sha256
            total += 1
    assert total == sum(len(d.subquestions) for d in records.values())


def test_splits_are_disjoint_by_id_and_image(published: PublishResult) -> None:
    loaded = _load(published.out_dir, "main").cast_column("image", datasets.Image(decode=False))
    ids = {s: set(ds["id"]) for s, ds in loaded.items()}
    images = {s: {sha256_bytes(c["bytes"]) for c in ds["image"]} for s, ds in loaded.items()}
    assert ids["train"] and ids["test"]
    assert not ids["train"] & ids["test"]
    assert not images["train"] & images["test"]


def test_card_declares_configs_licences_and_stats_match(published: PublishResult) -> None:
    meta = read_card_metadata(published.out_dir / "README.md")
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert configs["main"]["default"] is True and "default" not in configs["subquestions"]
    assert meta["task_categories"] == ["visual-question-answering"]
    assert meta["license"] and all(lic == lic.lower() for lic in meta["license"])
    card = (published.out_dir / "README.md").read_text()
    assert "must never be used for head selection" in card
    from huggingface_hub import DatasetCard

    hub_card = DatasetCard.load(published.out_dir / "README.md")  # the Hub's own parser
    assert [c["config_name"] for c in hub_card.data.configs] == ["main", "subquestions"]
    assert hub_card.data.license == meta["license"]
    stats = json.loads((published.out_dir / "stats.json").read_text())["stats"]
    n_train = len(pq.read_table(published.out_dir / "data/main/train-00000-of-00001.parquet"))
    assert stats["questions"]["train"] == n_train
    assert f"| train | {stats['questions']['train']} | {stats['subquestions']['train']} |" in card
    # parquet shards hold the bytes, not paths: the folder of source images is not needed
    table = pq.read_table(published.out_dir / "data/main/train-00000-of-00001.parquet")
    assert all(cell["bytes"] for cell in table.column("image").to_pylist())


def test_check_passes_on_a_fresh_publish(published: PublishResult) -> None:
    report = check_dataset(published.out_dir)
    assert report.ok, report.problems
    assert report.rows["main/train"] + report.rows["main/test"] == \
        published.stats["questions"]["total"]


def test_many_small_shards_load_and_check(synth_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sharded"
    publish_dataset([synth_dir / "decompositions.jsonl"], out, name="cogvision",
                    max_shard_bytes=20_000)
    shards = sorted((out / "data/main").glob("train-*.parquet"))
    assert len(shards) > 1
    assert shards[0].name.endswith(f"-of-{len(shards):05d}.parquet")
    report = check_dataset(out)
    assert report.ok, report.problems
    assert len(_load(out, "main")["train"]) == json.loads((out / "stats.json").read_text())[
        "stats"]["questions"]["train"]


def test_existing_output_is_refused_then_replaced_with_overwrite(synth_dir: Path,
                                                                 tmp_path: Path) -> None:
    from cogvision.errors import UsageError

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(UsageError, match="--overwrite"):
        publish_dataset([synth_dir / "decompositions.jsonl"], out, name="cogvision")
    publish_dataset([synth_dir / "decompositions.jsonl"], out, name="cogvision", overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "README.md").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_lmms_eval_task_runs_on_loaded_rows(published: PublishResult) -> None:
    import importlib.util

    import yaml

    folder = published.out_dir / "lmms_eval"

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: ("function", node.value))
    task = yaml.load((folder / "cogvision_subquestions.yaml").read_text(), Loader=Loader)
    assert task["dataset_name"] == "subquestions" and task["test_split"] == "test"
    assert task["doc_to_text"] == ("function", "utils.subquestion_doc_to_text")
    spec = importlib.util.spec_from_file_location("lmms_utils", folder / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    doc = _load(published.out_dir, "subquestions")["test"].filter(lambda r: r["index"] == 1)[0]
    text = utils.subquestion_doc_to_text(doc)
    assert doc["context"][0]["question"] in text and text.endswith(f"Q: {doc['question']}")
    assert len(utils.doc_to_visual(doc)) == 1
    assert utils.process_results(doc, [doc["answer"].upper() + "."]) == {"exact_match": 1.0}
    assert utils.process_results(doc, ["certainly not " + doc["answer"]]) == {"exact_match": 0.0}


def test_interrupted_publish_leaves_nothing_and_reruns(synth_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from cogvision.publish import build

    calls = []
    real = build.write_shards

    def failing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - passes through
        calls.append(args[1:3])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "write_shards", failing)
    (tmp_path / ".out.tmp-999999").mkdir()  # as a killed run would leave it
    with pytest.raises(KeyboardInterrupt):
        publish_dataset([synth_dir / "decompositions.jsonl"], tmp_path / "out", name="cogvision")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    monkeypatch.setattr(build, "write_shards", real)
    publish_dataset([synth_dir / "decompositions.jsonl"], tmp_path / "out", name="cogvision")
    assert check_dataset(tmp_path / "out").ok


def test_inputs_from_two_folders_and_the_manifest(synth_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    monkeypatch.setenv("HF_TOKEN", "hf_do_not_leak_me")
    records = read_jsonl(synth_dir / "decompositions.jsonl", Decomposition)
    paths = []
    for part, chunk in (("a", records[:15]), ("b", records[15:])):
        folder = tmp_path / part
        (folder / "images").mkdir(parents=True)
        for r in chunk:
            shutil.copy(synth_dir / r.question.image.path, folder / r.question.image.path)
        from cogvision.artifacts import write_jsonl_atomic

        write_jsonl_atomic(folder / "decompositions.jsonl", chunk)
        paths.append(folder / "decompositions.jsonl")
    result = publish_dataset(paths, tmp_path / "out", name="my-bench", seed=1)
    assert result.stats["questions"]["total"] == len(records)
    assert check_dataset(tmp_path / "out").ok
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["stage"] == "publish" and manifest["seed"] == 1
    assert [Path(i["path"]).parent.name for i in manifest["inputs"]] == ["a", "b"]
    assert any(o["path"].endswith("README.md") for o in manifest["outputs"])
    assert manifest["counts"]["questions_total"] == len(records)
    assert "hf_do_not_leak_me" not in (tmp_path / "out/manifest.json").read_text()
