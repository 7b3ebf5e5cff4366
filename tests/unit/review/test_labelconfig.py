"""The checked-in label configs, the names the code writes and reads, and result validation."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cogvision.review import labelconfig as lc
from cogvision.review.tasks import parse_result, prediction_result, task_data
from cogvision.schema.taxonomy import TAXONOMY_NAMES, get_taxonomy
from tests.unit.review.builders import make_decomposition

ANNOTATION = Path(__file__).resolve().parents[3] / "annotation"


@pytest.mark.parametrize("taxonomy", TAXONOMY_NAMES)
def test_checked_in_xml_is_the_generated_config(taxonomy: str) -> None:
    assert lc.config_file(taxonomy, ANNOTATION).read_text() == lc.build_label_config(taxonomy)


@pytest.mark.parametrize("taxonomy", TAXONOMY_NAMES)
def test_xml_tag_names_equal_the_names_the_code_uses(taxonomy: str) -> None:
    root = ET.fromstring(lc.config_file(taxonomy, ANNOTATION).read_text())
    repeater = root.find(".//Repeater")
    assert repeater is not None and repeater.get("indexFlag") == lc.INDEX_FLAG
    controls = {el.get("name"): el for el in repeater.iter() if el.tag in {"Choices", "TextArea"}}
    expected = {t.format(i=lc.INDEX_FLAG) for t in lc.CONTROL_TEMPLATES}
    assert set(controls) == expected
    sq = lc.SUBQUESTION.format(i=lc.INDEX_FLAG)
    assert {el.get("toName") for el in controls.values()} == {sq}
    texts = {el.get("name"): el.get("value") for el in root.iter("Text")}
    assert texts[sq] == "$subquestions[{{idx}}].text" and texts[lc.MAIN] == "$main"
    image = root.find(".//Image")
    assert image is not None and image.get("name") == lc.IMAGE
    choices = {name: [c.get("value") for c in el.iter("Choice")] for name, el in controls.items()}
    assert choices[lc.VALID.format(i=lc.INDEX_FLAG)] == list(lc.VALID_CHOICES)
    assert choices[lc.ANSWER.format(i=lc.INDEX_FLAG)] == list(lc.ANSWER_CHOICES)
    assert choices[lc.FUNCTION.format(i=lc.INDEX_FLAG)] == get_taxonomy(taxonomy).names
    # every $variable of the config is a key the task data provides
    variables = set(re.findall(r'value="\$(\w+)', lc.build_label_config(taxonomy)))
    assert variables <= {"question_header", "image", "main", "subquestions"}


def test_task_data_and_prediction_fit_the_config(tmp_path: Path) -> None:
    import numpy as np

    record = make_decomposition(0, tmp_path, np.random.default_rng(0), n_sub=4,
                                verifier_disagrees=True)
    data = task_data(record, "/data/upload/1/x.png")
    assert data["decomposition_id"] == record.id and data["content_hash"] == record.content_hash
    assert "DISAGREES" in data["subquestions"][0]["text"]
    config = lc.build_label_config("cogvision")
    result = prediction_result(record)
    assert lc.result_errors(config, 4, result) == []
    assert {r["from_name"] for r in result} <= lc.control_names(config, 4)
    verdict = parse_result(result, 4, "llm", None)
    assert [s.function for s in verdict.subs] == [s.function for s in record.subquestions]
    assert [s.answer_correct for s in verdict.subs] == [False, True, True, True]
    assert verdict.complete and verdict.valid_share == 1.0


def test_unknown_from_name_and_bad_values_are_reported() -> None:
    config = lc.build_label_config("cogvision")
    bad = [{"from_name": "confidence_0", "to_name": "sq_0", "type": "choices",
            "value": {"choices": ["high"]}},
           {"from_name": "valid_5", "to_name": "sq_5", "type": "choices",
            "value": {"choices": ["valid"]}},
           {"from_name": "function_0", "to_name": "sq_0", "type": "choices",
            "value": {"choices": ["Telepathy"]}}]
    errors = lc.result_errors(config, 2, bad)
    assert len(errors) == 3
    assert "confidence_0" in errors[0] and "valid_5" in errors[1] and "Telepathy" in errors[2]
    assert lc.result_errors(config, 2, "nope") == ["result is str, expected a list"]  # type: ignore[arg-type]


NAMES = get_taxonomy("cogvision").names
sub_strategy = st.tuples(st.sampled_from([None, True, False]), st.sampled_from([None, *NAMES]),
                         st.sampled_from([None, True, False]),
                         st.one_of(st.none(), st.text(alphabet="abc xyz019", min_size=1,
                                                      max_size=12).filter(lambda t: t.strip())))


@settings(max_examples=60, deadline=None)
@given(st.lists(sub_strategy, min_size=1, max_size=6))
def test_result_round_trip(subs: list[tuple]) -> None:
    """Verdicts -> Label Studio result -> validated -> parsed back unchanged."""
    n = len(subs)
    result = []
    for i, (valid, function, correct, text) in enumerate(subs):
        to_name = lc.SUBQUESTION.format(i=i)
        if valid is not None:
            result.append({"from_name": lc.VALID.format(i=i), "to_name": to_name, "type": "choices",
                           "value": {"choices": ["valid" if valid else "invalid"]}})
        if function is not None:
            result.append({"from_name": lc.FUNCTION.format(i=i), "to_name": to_name,
                           "type": "choices", "value": {"choices": [function]}})
        if correct is not None:
            result.append({"from_name": lc.ANSWER.format(i=i), "to_name": to_name,
                           "type": "choices",
                           "value": {"choices": ["correct" if correct else "incorrect"]}})
        if text is not None:
            result.append({"from_name": lc.CORRECTED.format(i=i), "to_name": to_name,
                           "type": "textarea", "value": {"text": [text]}})
    assert lc.result_errors(lc.build_label_config("cogvision"), n, result) == []
    parsed = parse_result(result, n, "r", None)
    for sub, (valid, function, correct, text) in zip(parsed.subs, subs, strict=True):
        assert (sub.valid, sub.function, sub.answer_correct) == (valid, function, correct)
        assert sub.corrected == (" ".join(text.split()) if text else None)


def test_guidelines_define_every_function_of_every_taxonomy() -> None:
    text = (ANNOTATION / "GUIDELINES.md").read_text()
    for name in TAXONOMY_NAMES:
        for fn in get_taxonomy(name).functions:
            assert fn.name in text, f"{name}: {fn.name} missing from GUIDELINES.md"
    assert "Worked example" in text


def test_expand_repeater_unrolls_and_rejects_foreign_configs() -> None:
    from cogvision.errors import ReviewError

    expanded = lc.expand_repeater(lc.build_label_config("cogqa"), 3)
    assert "{{idx}}" not in expanded and "<Repeater" not in expanded
    assert expanded.count('name="valid_') == 3 and 'name="corrected_2"' in expanded
    with pytest.raises(ReviewError, match="Repeater"):
        lc.expand_repeater('<View><Text name="t" value="$t"/></View>', 2)


def test_api_key_only_from_the_environment(monkeypatch) -> None:
    from cogvision.errors import UsageError
    from cogvision.review.client import api_key_from_env

    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(UsageError, match="LABEL_STUDIO_API_KEY"):
        api_key_from_env()
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", " abc ")
    assert api_key_from_env() == "abc"
