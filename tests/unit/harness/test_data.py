"""Harness inputs from decompositions.jsonl and from a published dataset folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cogvision.artifacts import write_jsonl_atomic
from cogvision.errors import UsageError
from cogvision.harness.data import items_from_dataset, load_items
from cogvision.images import image_ref_from_file
from cogvision.schema import Decomposition, Provenance, SourceQuestion, SourceRef, SubQuestion


def _decomposition(folder: Path, i: int) -> Decomposition:
    name = f"images/img{i}.png"
    (folder / "images").mkdir(exist_ok=True)
    Image.new("RGB", (16, 12), (10 * i, 0, 0)).save(folder / name)
    question = SourceQuestion(image=image_ref_from_file(folder / name, name),
                              question=f"How many objects in scene {i}?", answer="2",
                              source=SourceRef(dataset="synthetic", split="train", index=str(i)),
                              license="CC0-1.0")
    subs = [SubQuestion(index=0, question="What objects are there?", answer="a cube and a ball",
                        function="High-level Visual Reception"),
            SubQuestion(index=1, question="How many are there?", answer="2",
                        function="Math Reasoning", depends_on=[0])]
    return Decomposition(question=question, taxonomy="cogvision", subquestions=subs,
                         provenance=Provenance(generator="synth"))


def test_items_from_decompositions(tmp_path: Path) -> None:
    records = [_decomposition(tmp_path, i) for i in range(10)]
    write_jsonl_atomic(tmp_path / "decompositions.jsonl", records)
    train = load_items(tmp_path, splits=["train"], test_fraction=0.3)
    test = load_items(tmp_path / "decompositions.jsonl", splits=["test"], test_fraction=0.3)
    assert len(train) == 7 and len(test) == 3
    assert {i.main_id for i in train}.isdisjoint({i.main_id for i in test})
    item = train[0]
    assert [s.id for s in item.subs] == [f"{item.main_id}-s0", f"{item.main_id}-s1"]
    assert item.subs[1].context == (("What objects are there?", "a cube and a ball"),)
    assert item.image().size == (16, 12)
    with pytest.raises(UsageError, match="unknown split"):
        load_items(tmp_path, splits=["validation"])


def test_items_from_a_dataset_folder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = []
    for m in range(2):
        buf = tmp_path / f"i{m}.png"
        Image.fromarray(np.full((8, 8, 3), 50 * m, np.uint8)).save(buf)
        for s in range(2):
            rows.append({"id": f"q{m}-s{s}", "main_id": f"q{m}",
                         "image": {"bytes": buf.read_bytes(), "path": buf.name},
                         "main_question": f"main {m}?", "index": s, "question": f"sub {s}?",
                         "answer": "x", "function": "Inference",
                         "context": [{"index": 0, "question": "sub 0?", "answer": "x"}][:s]})
    feats = datasets.Features({
        "id": datasets.Value("string"), "main_id": datasets.Value("string"),
        "image": datasets.Image(), "main_question": datasets.Value("string"),
        "index": datasets.Value("int32"), "question": datasets.Value("string"),
        "answer": datasets.Value("string"), "function": datasets.Value("string"),
        "context": datasets.List({"index": datasets.Value("int32"),
                                  "question": datasets.Value("string"),
                                  "answer": datasets.Value("string")})})
    folder = tmp_path / "ds"
    (folder / "subquestions").mkdir(parents=True)
    datasets.Dataset.from_list(rows, features=feats).to_parquet(
        folder / "subquestions" / "train-00000.parquet")
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: subquestions\n  data_files:\n  - split: train\n"
        "    path: subquestions/train-*.parquet\n---\n")
    items = items_from_dataset(folder, splits=["train", "test"])
    assert [i.main_id for i in items] == ["q0", "q1"]
    assert items[1].subs[1].context == (("sub 0?", "x"),)
    assert items[1].image().getpixel((0, 0)) == (50, 50, 50)
