"""Unit tests of the publish pieces: features, rows, statistics, card, inputs, splits, lmms-eval."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cogvision.artifacts import read_jsonl, write_jsonl_atomic
from cogvision.errors import ArtifactError, SchemaError, UsageError
from cogvision.publish.build import read_inputs, select_reviewed
from cogvision.publish.card import (
    DATASHEET_SECTIONS,
    DEFAULT_DATASHEET,
    hub_licenses,
    read_datasheet,
    size_category,
)
from cogvision.publish.hub import push_to_hub
from cogvision.publish.lmms import write_lmms_tasks
from cogvision.publish.rows import (
    column_descriptions,
    features,
    main_row,
    subquestion_rows,
)
from cogvision.publish.stats import compute_stats, extract_stats_section, render_stats
from cogvision.schema import Decomposition, SourceQuestion, SubQuestion, assign_splits

from .conftest import make_decompositions


def test_features_use_list_of_records_not_sequence() -> None:
    main = features("main")
    assert type(main["subquestions"]).__name__ == "List"
    assert isinstance(main["subquestions"].feature, dict)
    assert set(main["subquestions"].feature) == {"index", "question", "answer", "function"}
    subs = features("subquestions")
    assert type(subs["context"]).__name__ == "List" and type(subs["image"]).__name__ == "Image"
    assert list(subs)[:4] == ["id", "main_id", "image", "main_question"]
    with pytest.raises(ValueError, match="known: main, subquestions"):
        features("other")


def test_rows_of_one_decomposition(bench: Path) -> None:
    item = read_jsonl(bench, Decomposition)[2]
    row = main_row(item, b"png-bytes")
    assert row["id"] == item.question.id and row["image"]["bytes"] == b"png-bytes"
    assert row["image"]["path"] == Path(item.question.image.path).name
    assert [s["function"] for s in row["subquestions"]] == [s.function for s in item.subquestions]
    rows = subquestion_rows(item, b"png-bytes")
    assert [r["id"] for r in rows] == [f"{item.question.id}-s{i}" for i in range(len(rows))]
    assert rows[0]["context"] == []
    last = rows[-1]
    assert last["context"] == [{"index": s.index, "question": s.question, "answer": s.answer}
                               for s in item.subquestions[:-1]]
    assert set(last) == set(features("subquestions"))
    assert set(row) == set(features("main"))


def test_column_descriptions_come_from_the_schema() -> None:
    main = column_descriptions("main")
    schema = SourceQuestion.model_json_schema()["properties"]
    assert main["question"] == schema["question"]["description"]
    assert main["subquestions[].function"] == \
        SubQuestion.model_json_schema()["properties"]["function"]["description"]
    for config in ("main", "subquestions"):
        described = column_descriptions(config)
        assert set(features(config)) <= set(described)
        assert all(text.strip() for text in described.values())


def _row(source: str, license_: str, answer: str, functions: list[str]) -> dict:
    steps = [{"index": i, "question": f"q{i}", "answer": "one two" if i else "x",
              "function": f} for i, f in enumerate(functions)]
    return {"source": source, "license": license_, "answer": answer, "subquestions": steps}


def test_stats_known_answer() -> None:
    rows = {"train": [_row("a", "MIT", "yes", ["Math Reasoning", "Decision-Making"]),
                      _row("b", "MIT", "three words here", ["Inference", "Math Reasoning",
                                                            "Decision-Making"])],
            "test": [_row("a", "CC-BY-4.0", "no", ["Math Reasoning", "Decision-Making"])]}
    order = ["Inference", "Math Reasoning", "Decision-Making"]
    stats = compute_stats(rows, order)
    assert stats["questions"] == {"train": 2, "test": 1, "total": 3}
    assert stats["subquestions"] == {"train": 5, "test": 2, "total": 7}
    assert list(stats["by_function"]) == order
    assert stats["by_function"]["Math Reasoning"] == {"train": 2, "test": 1, "total": 3}
    assert stats["by_source"] == {"a": {"train": 1, "test": 1, "total": 2},
                                  "b": {"train": 1, "test": 0, "total": 1}}
    assert stats["subquestions_per_question"]["histogram"] == {"2": 2, "3": 1}
    assert stats["subquestions_per_question"]["mean"] == round(7 / 3, 3)
    assert stats["answer_words"]["main"] == {"mean": round(5 / 3, 3), "median": 1.0, "min": 1,
                                             "max": 3}
    assert stats["answer_words"]["subquestions"]["max"] == 2
    assert stats["licenses"] == {"CC-BY-4.0": 1, "MIT": 2}
    section = render_stats(stats)
    assert "| Math Reasoning | 2 | 1 | 3 | 42.9% |" in section
    assert extract_stats_section(f"intro\n{section}\noutro") == section
    rows["test"].append(_row("a", "MIT", "no", ["Inference"]))
    assert render_stats(compute_stats(rows, order)) != section


def test_datasheet_sections_are_filtered_by_dataset(tmp_path: Path) -> None:
    text = "".join(f"## {s}\n\nCommon {s}.\n\n### CogVision\n\nOnly vision.\n\n### CogVSR\n\n"
                   f"Only spatial.\n\n" for s in DATASHEET_SECTIONS)
    sheet = tmp_path / "DATASHEET.md"
    sheet.write_text(text)
    vsr = read_datasheet(sheet, "cogvsr")
    assert "Only spatial." in vsr["Uses"] and "Only vision." not in vsr["Uses"]
    both = read_datasheet(sheet, "my-bench")
    assert "Only spatial." in both["Uses"] and "Only vision." in both["Uses"]
    sheet.write_text(text.replace("## Maintenance", "## Upkeep"))
    with pytest.raises(ArtifactError, match="lacks the section.*Maintenance"):
        read_datasheet(sheet, "cogvision")


def test_the_repository_datasheet_has_every_section() -> None:
    sections = read_datasheet(DEFAULT_DATASHEET, "cogvision")
    assert "must never be used for head selection" in sections["Uses"]
    assert "CogVSR" not in sections["Motivation"].split("### CogVision")[-1]


def test_hub_licence_ids_and_size_categories() -> None:
    assert hub_licenses(["MIT", "CC-BY-SA-4.0", "VCR research-only"]) == ["cc-by-sa-4.0", "mit",
                                                                          "other"]
    assert size_category(999) == "n<1K" and size_category(5744) == "1K<n<10K"


def test_review_selection_counts_what_is_left_out(tmp_path: Path) -> None:
    path = make_decompositions(tmp_path, 6, reviews=["accepted", "pending", "dropped", None,
                                                     "accepted", "dropped"])
    kept, left_out = select_reviewed(read_inputs([path]))
    assert len(kept) == 2
    assert left_out == {"review_pending": 1, "review_dropped": 2, "unreviewed": 1}
    unreviewed = make_decompositions(tmp_path / "plain", 3)
    kept, left_out = select_reviewed(read_inputs([unreviewed]))
    assert len(kept) == 3 and not any(left_out.values())


def test_inputs_duplicates_and_taxonomy_mix(tmp_path: Path) -> None:
    path = make_decompositions(tmp_path / "a", 4)
    assert len(read_inputs([path, path])) == 4  # the same records twice are kept once
    records = read_jsonl(path, Decomposition)
    changed = records[1].model_copy(update={"chain_of_thought": "different"})
    other = tmp_path / "b" / "decompositions.jsonl"
    write_jsonl_atomic(other, [changed])
    with pytest.raises(SchemaError, match=r"b/decompositions.jsonl:1: question.id: question "
                                          r"already decomposed differently at .*a/decomp"):
        read_inputs([path, other])
    vsr = make_decompositions(tmp_path / "c", 2, taxonomy="cogvsr", seed=9)
    with pytest.raises(SchemaError, match="taxonomy differs"):
        read_inputs([path, vsr])


def test_an_image_shared_by_two_sources_lands_in_one_split(tmp_path: Path) -> None:
    path = make_decompositions(tmp_path, 30)
    items = read_inputs([path])
    splits = assign_splits([x.item.question for x in items], test_fraction=0.2, seed=0)
    by_image: dict[str, set[str]] = {}
    for x in items:
        by_image.setdefault(x.item.question.image.sha256, set()).add(splits[x.item.question.id])
    assert all(len(found) == 1 for found in by_image.values())
    shared = [x for x in items if sum(y.item.question.image.sha256 == x.item.question.image.sha256
                                      for y in items) > 1]
    assert shared and {x.item.question.source.dataset for x in shared} == {"shapes", "charts"}


def test_push_to_hub_needs_a_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(UsageError, match="HF_TOKEN"):
        push_to_hub(tmp_path, "me/cogvision")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    with pytest.raises(UsageError, match="owner/name"):
        push_to_hub(tmp_path, "no-owner")


def test_lmms_utils_score_letters_and_text(tmp_path: Path) -> None:
    write_lmms_tasks(tmp_path, name="CogVSR test", load_path="me/data", splits=["train"])
    assert (tmp_path / "cogvsr_test_main.yaml").read_text().count("test_split: train") == 1
    spec = importlib.util.spec_from_file_location("lmms_utils_unit", tmp_path / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    doc = {"question": "Which?", "answer": "the red cube", "choices": ["blue ball", "red cube"],
           "image": None}
    assert utils.main_doc_to_text(doc, {"post_prompt": " P"}) == \
        "Which?\nOptions:\nA. blue ball\nB. red cube P"
    assert utils.process_results(doc, ["B"])["exact_match"] == 1.0
    assert utils.process_results(doc, ["A."])["exact_match"] == 0.0
    assert utils.process_results(doc, ["Red cube!"])["exact_match"] == 1.0
    assert utils.doc_to_visual(doc) == []


def test_a_known_name_must_match_the_taxonomy(tmp_path: Path) -> None:
    from cogvision.publish.build import publish_dataset

    path = make_decompositions(tmp_path / "in", 3)
    with pytest.raises(UsageError, match="--name cogvsr but the records use the 'cogvision'"):
        publish_dataset([path], tmp_path / "out", name="cogvsr")
    assert not (tmp_path / "out").exists()
