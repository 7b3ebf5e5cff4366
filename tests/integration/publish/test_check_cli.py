"""`cogvision publish --check` finds damage with a clear message; the CLI's exit codes; review
filtering; failures; conversion of the authors' JSON release."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from cogvision.artifacts import read_jsonl, write_jsonl_atomic
from cogvision.cli.main import run
from cogvision.publish.build import PublishResult, publish_dataset
from cogvision.publish.check import check_dataset
from cogvision.schema import Decomposition, FailureRecord, ReviewOutcome


def cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["cogvision", *args])
    try:
        run()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture()
def copy(published: PublishResult, tmp_path: Path) -> Path:
    """A private copy of the published folder to damage."""
    return Path(shutil.copytree(published.out_dir, tmp_path / "copy"))


def _rewrite(shard: Path, edit) -> None:  # noqa: ANN001 - a row-list editing callable
    table = pq.read_table(shard)
    rows = table.to_pylist()
    edit(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)


def test_check_cli_ok(copy: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(monkeypatch, "publish", "--check", str(copy)) == 0
    assert "OK" in capsys.readouterr().out


def test_corrupt_parquet_fails_naming_the_file(copy: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    shard = copy / "data/subquestions/train-00000-of-00001.parquet"
    data = bytearray(shard.read_bytes())
    shard.write_bytes(bytes(data[: len(data) // 2]))
    assert cli(monkeypatch, "publish", "--check", str(copy)) == 1
    err = capsys.readouterr().err
    assert f"{shard}: corrupt parquet" in err


def test_missing_image_fails_naming_file_and_row(copy: Path) -> None:
    shard = copy / "data/main/test-00000-of-00001.parquet"

    def drop_image(rows: list[dict]) -> None:
        rows[1]["image"] = None

    _rewrite(shard, drop_image)
    report = check_dataset(copy)
    assert not report.ok
    assert any(p.startswith(f"{shard}:row 1") and "image is missing" in p
               for p in report.problems), report.problems


def test_corrupt_image_bytes_fail(copy: Path) -> None:
    shard = copy / "data/main/train-00000-of-00001.parquet"

    def garble(rows: list[dict]) -> None:
        rows[0]["image"] = {"bytes": b"\x89PNG not really", "path": "x.png"}

    _rewrite(shard, garble)
    report = check_dataset(copy)
    assert any(f"{shard}:row 0" in p and "corrupt or unreadable image" in p
               for p in report.problems), report.problems


def test_card_number_mismatch_fails(copy: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    stats = json.loads((copy / "stats.json").read_text())["stats"]
    card = copy / "README.md"
    line = f"| train | {stats['questions']['train']} | {stats['subquestions']['train']} |"
    forged = f"| train | {stats['questions']['train'] + 1} | {stats['subquestions']['train']} |"
    card.write_text(card.read_text().replace(line, forged))
    assert cli(monkeypatch, "publish", "--check", str(copy)) == 1
    err = capsys.readouterr().err
    assert "card statistics differ from the data" in err and forged in err


def test_stats_json_mismatch_fails(copy: Path) -> None:
    meta = json.loads((copy / "stats.json").read_text())
    meta["stats"]["by_function"]["Math Reasoning"]["train"] += 2
    (copy / "stats.json").write_text(json.dumps(meta))
    report = check_dataset(copy)
    assert any("stats differ" in p and "by_function.Math Reasoning.train" in p
               for p in report.problems), report.problems


def test_row_in_both_splits_fails(copy: Path) -> None:
    train = pq.read_table(copy / "data/main/train-00000-of-00001.parquet").to_pylist()
    _rewrite(copy / "data/main/test-00000-of-00001.parquet", lambda rows: rows.append(train[0]))
    report = check_dataset(copy)
    assert any(f"id {train[0]['id']} is in both train and test" in p for p in report.problems)


def test_usage_errors_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(monkeypatch, "publish", "--out", str(tmp_path / "x")) == 2
    assert "--name" in capsys.readouterr().err
    assert cli(monkeypatch, "publish", "--check", str(tmp_path), "--out", str(tmp_path)) == 2


def test_review_accepted_only_and_unreadable_images_become_failures(
        synth_dir: Path, tmp_path: Path) -> None:
    records = read_jsonl(synth_dir / "decompositions.jsonl", Decomposition)
    statuses = ["accepted", "pending", "dropped", None]
    reviewed = [r.model_copy(update={"review": None if statuses[i % 4] is None else
                                     ReviewOutcome(status=statuses[i % 4])})
                for i, r in enumerate(records)]
    folder = tmp_path / "reviewed"
    shutil.copytree(synth_dir / "images", folder / "images")
    write_jsonl_atomic(folder / "decompositions.jsonl", reviewed)
    accepted = [r for r in reviewed if r.review and r.review.status == "accepted"]
    (folder / accepted[0].question.image.path).unlink()  # one accepted item loses its image
    result = publish_dataset([folder / "decompositions.jsonl"], tmp_path / "out", name="cogvision")
    assert result.left_out == {"review_pending": 10, "review_dropped": 10, "unreviewed": 10,
                               "unreadable_image": 1}
    assert result.stats["questions"]["total"] == len(accepted) - 1
    failures = read_jsonl(tmp_path / "out/failures.jsonl", FailureRecord)
    assert [f.item_id for f in failures] == [accepted[0].id]
    assert "image file not found" in failures[0].message
    assert "review pending: 10" in (tmp_path / "out/README.md").read_text()
    assert check_dataset(tmp_path / "out").ok


def test_convert_the_authors_json_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = tmp_path / "release/images"
    images.mkdir(parents=True)
    items = []
    for i in range(8):
        Image.new("RGB", (16, 16), (30 * i, 0, 0)).save(images / f"{i}.png")
        items.append({"question": f"What colour is square {i}?", "answer": f"red {i}",
                      "image": f"images/{i}.png", "dataset": "MathVista",
                      "license": "CC-BY-SA-4.0",
                      "generated": [
                          {"subquestion": "What shape is shown?", "answer": "a square",
                           "cognitive_skill": "High-Level Visual Reception"},
                          {"subquestion": f"Which shade is square {i}?", "answer": f"red {i}",
                           "cognitive_skill": "Semantic Understanding"}]})
    items.append({**items[0], "question": "bad", "generated": [
        {"subquestion": "q", "answer": "a", "cognitive_skill": "Telepathy"}]})
    (tmp_path / "release/cogvision.json").write_text(json.dumps(items))
    out = tmp_path / "official"
    code = cli(monkeypatch, "publish", "--from-cogvision-json",
               str(tmp_path / "release/cogvision.json"), "--images", str(tmp_path / "release"),
               "--out", str(out), "--name", "cogvision")
    assert code == 0
    assert check_dataset(out).ok
    stats = json.loads((out / "stats.json").read_text())
    assert stats["stats"]["questions"]["total"] == 8
    assert stats["left_out"]["not_converted"] == 1
    assert stats["stats"]["by_function"]["Language Information Extraction and Understanding"][
        "total"] == 8
    assert stats["stats"]["licenses"] == {"CC-BY-SA-4.0": 8}
    failures = read_jsonl(out / "failures.jsonl", FailureRecord)
    assert len(failures) == 1 and "Telepathy" in failures[0].message


def test_text_only_questions_publish_and_check(synth_dir: Path, tmp_path: Path) -> None:
    records = read_jsonl(synth_dir / "decompositions.jsonl", Decomposition)[:6]
    text_only = []
    for r in records[:2]:
        data = r.model_dump(mode="json")
        data["question"].update(image=None, id="")
        data["id"] = ""
        text_only.append(Decomposition.model_validate(data))
    folder = tmp_path / "in"
    shutil.copytree(synth_dir / "images", folder / "images")
    write_jsonl_atomic(folder / "decompositions.jsonl", text_only + records[2:])
    result = publish_dataset([folder / "decompositions.jsonl"], tmp_path / "out", name="x",
                             test_fraction=0.0)
    assert list(result.stats["splits"]) == ["train"]
    report = check_dataset(tmp_path / "out")
    assert report.ok, report.problems
    table = pq.read_table(tmp_path / "out/data/main/train-00000-of-00001.parquet").to_pylist()
    by_id = {row["id"]: row for row in table}
    assert all(by_id[r.question.id]["image"] is None for r in text_only)
