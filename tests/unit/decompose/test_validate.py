"""Reply parsing and the semantic checks that drive re-asking."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cogvision.decompose.responses import (
    ChainOfThought,
    PlannedSubQuestion,
    SubQuestionPlan,
    strict_json_schema,
)
from cogvision.decompose.validate import (
    answers_match,
    check_chain_of_thought,
    check_plan,
    extract_json,
    normalise_answer,
    parse_reply,
)
from cogvision.schema import get_taxonomy

TAX = get_taxonomy("cogvision")


def plan(*steps: tuple[str, str, str, list[int]]) -> SubQuestionPlan:
    return SubQuestionPlan(subquestions=[
        PlannedSubQuestion(question=q, answer=a, function=f, depends_on=d) for q, a, f, d in steps])


GOOD = [("What is shown?", "three apples", "High-level Visual Reception", []),
        ("How many apples are there?", "3", "math", [1])]


def test_extract_json_from_prose_and_fences() -> None:
    obj = {"a": [1, 2]}
    assert extract_json(json.dumps(obj)) == obj
    assert extract_json(f"Sure!\n```json\n{json.dumps(obj)}\n```\nDone.") == obj
    assert extract_json(f"The result is {json.dumps(obj)} as requested") == obj
    assert extract_json(f"<think>maybe {{x}} or {{y}}</think>\n{json.dumps(obj)}") == obj
    with pytest.raises(ValueError, match="not valid JSON"):
        extract_json("{'a': 1")


def test_parse_reply_reports_schema_errors_for_the_model() -> None:
    parsed, errors = parse_reply('{"steps": ["x"]}', ChainOfThought)
    assert parsed is None
    assert errors == ["JSON field 'final_answer': Field required"]
    parsed, errors = parse_reply("", ChainOfThought)
    assert parsed is None and "empty" in errors[0]


@pytest.mark.parametrize(("got", "want", "same"), [
    ("Three", "3", True), ("3.0", "3", True), ("The cat.", "cat", True), ("1,000", "1000", True),
    ("Café", "cafe", True), ("4", "3", False), ("red", "blue", False), ("no", "yes", False)])
def test_normalised_answers(got: str, want: str, same: bool) -> None:
    assert answers_match(got, want) is same


def test_option_letter_counts_for_multiple_choice() -> None:
    assert answers_match("B", "dog", ["cat", "dog"])
    assert not answers_match("A", "dog", ["cat", "dog"])
    assert normalise_answer("  An   Apple! ") == "apple"


def test_valid_plan_converts_to_zero_based_subquestions() -> None:
    subs, errors = check_plan(plan(*GOOD), TAX, "3", None)
    assert errors == []
    assert [s.function for s in subs] == ["High-level Visual Reception", "Math Reasoning"]
    assert subs[1].depends_on == [0] and subs[1].index == 1


def test_every_semantic_error_is_reported() -> None:
    bad = plan(("What is shown?", "apples", "Induction", []),
               ("what  is SHOWN?", "", "Math Reasoning", [2]),
               ("How many?", "4", "Math Reasoning", [0]))
    subs, errors = check_plan(bad, TAX, "3", None)
    assert subs == []
    text = "\n".join(errors)
    assert "function 'Induction' is not in the taxonomy" in text
    assert "sub-question 2 repeats sub-question 1" in text
    assert "sub-question 2: 'answer' is empty" in text
    assert "sub-question 2: depends_on [2]" in text
    assert "sub-question 3: depends_on [0]" in text
    assert "last sub-question's answer is '4' but the reference answer is '3'" in text


@pytest.mark.parametrize("n", [1, 9])
def test_step_count_bounds(n: int) -> None:
    steps = [(f"Step {i}?", "x", "Inference", []) for i in range(n - 1)]
    steps.append(("Final?", "3", "Decision-Making", []))
    _, errors = check_plan(plan(*steps), TAX, "3", None)
    assert errors == [f"there are {n} sub-questions; write between 2 and 8."]


def test_alias_labels_map_to_canonical_names() -> None:
    subs, errors = check_plan(plan(("Read the text?", "ok", "Semantic Understanding", []),
                                   ("Decide?", "3", "decision making", [1])), TAX, "3", None)
    assert errors == []
    assert [s.function for s in subs] == ["Language Information Extraction and Understanding",
                                          "Decision-Making"]


def test_chain_of_thought_must_reach_the_reference() -> None:
    good = ChainOfThought(steps=["a"], final_answer="three")
    assert check_chain_of_thought(good, "3", None) == []
    errors = check_chain_of_thought(ChainOfThought(steps=[], final_answer="4"), "3", None)
    assert len(errors) == 2


def test_strict_schema_closes_every_object() -> None:
    schema = strict_json_schema(SubQuestionPlan)
    item = schema["$defs"]["PlannedSubQuestion"]
    assert item["additionalProperties"] is False
    assert item["required"] == ["question", "answer", "function", "depends_on"]
    assert schema["required"] == ["subquestions"] and schema["additionalProperties"] is False


@given(st.text(max_size=40))
def test_normalisation_is_idempotent_and_reflexive(text: str) -> None:
    once = normalise_answer(text)
    assert normalise_answer(once) == once
    assert answers_match(text, text)


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4),
       st.text(max_size=20))
def test_json_is_found_inside_any_prose(obj: dict, prose: str) -> None:  # type: ignore[type-arg]
    prose = prose.replace("{", "").replace("}", "").replace("`", "")
    assert extract_json(f"{prose}```json\n{json.dumps(obj)}\n```{prose}") == obj
