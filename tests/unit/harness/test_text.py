"""Prompts, answer parsing and scoring, token selectors (heuristic and LLM over a local server)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from cogvision.errors import AdapterError
from cogvision.harness.adapters import adapter_for
from cogvision.harness.answer import exact_match, normalize, parse_answer
from cogvision.harness.data import MainItem, SubItem
from cogvision.harness.lexical import lexical_features, terms
from cogvision.harness.prompts import PromptOptions, prefix_text, prompt_text, suffix_text
from cogvision.harness.tokensel import HeuristicSelector, LLMSelector, parse_indices
from cogvision.testing.openai_server import OpenAIServer, Reply

SUB = SubItem("m-s2", "m", "train", 2, "How many red cubes?", "3", "Math Reasoning",
              (("What objects are there?", "cubes"), ("Which are red?", "two of them")))
ITEM = MainItem("m", "train", "Is the number of red cubes odd?", (SUB,))


def test_prompt_has_main_question_and_context_and_options_drop_them() -> None:
    full = prompt_text(ITEM, SUB, PromptOptions())
    assert full.startswith("Main question: Is the number of red cubes odd?\n")
    assert "Q1: What objects are there?\nA1: cubes" in full and "A2: two of them" in full
    assert full.index("Previous steps") < full.index("Sub-question: How many red cubes?")
    no_main = prompt_text(ITEM, SUB, PromptOptions(include_main_question=False))
    assert "Main question" not in no_main and "A1: cubes" in no_main
    no_context = prompt_text(ITEM, SUB, PromptOptions(include_context=False))
    assert "Previous steps" not in no_context and "Main question" in no_context
    assert full == prefix_text(ITEM, PromptOptions()) + suffix_text(SUB, PromptOptions())


@pytest.mark.parametrize(("response", "correct"), [
    ("3", True), ("Answer: 3.", True), (" The answer is 3\nbecause ...", True),
    ("three", False), ("33", False), ("", False),
])
def test_exact_match_after_parsing(response: str, correct: bool) -> None:
    assert exact_match(SUB, response) is correct


def test_normalize_and_parse() -> None:
    assert normalize("  The  Red, CUBE! ") == "red cube"
    assert parse_answer("\n\nFinal answer: a dog\nmore") == "a dog"


def test_heuristic_selector_prefers_content_tokens() -> None:
    tokens = ["The", " answer", " is", " 42", "."]
    assert HeuristicSelector().select("q", ["A", " red", " cube", ","], 2) == [1, 2]
    assert HeuristicSelector().select("q", tokens, 1) == [3]
    assert HeuristicSelector().select("q", tokens, 10) == [0, 1, 2, 3, 4]


def test_parse_indices_validates() -> None:
    assert parse_indices('sure: {"indices": [3, 1, 3]}', 5, 3) == [1, 3]
    for bad in ('{"indices": [9]}', '{"idx": [1]}', "no json", '{"indices": [0,1,2,3]}'):
        with pytest.raises(ValueError):
            parse_indices(bad, 5, 3)


def test_llm_selector_re_asks_then_falls_back() -> None:
    with OpenAIServer() as server:
        server.enqueue(Reply('{"indices": [7]}'), Reply('{"indices": [1, 3]}'))
        selector = LLMSelector(model="judge", base_url=server.url, max_attempts=2)
        tokens = ["The", " answer", " is", " 42"]
        assert selector.select("What is 6*7?", tokens, 2) == [1, 3]
        assert server.count == 2
        second = server.requests[1]["messages"]
        assert second[-1]["role"] == "user" and "out of range" in second[-1]["content"]
        assert "What is 6*7?" in second[0]["content"]
        server.enqueue(Reply("nothing useful"), Reply("still nothing"))
        assert selector.select("q", tokens, 1) == [3]  # the heuristic's choice
        assert selector.fallbacks == 1


def test_unsupported_model_type_lists_supported_ones() -> None:
    fake = SimpleNamespace(config=SimpleNamespace(model_type="mllama"))
    with pytest.raises(AdapterError) as info:
        adapter_for(fake, None)
    message = str(info.value)
    assert "mllama" in message and "qwen2_5_vl" in message and "register_family" in message


def test_lexical_features_use_the_fit_vocabulary_only() -> None:
    x = lexical_features(["red cube", "blue cube"], ["red cube", "green ball"])
    assert x.shape[0] == 2 and x[1].sum() == 0  # nothing of row 2 is in the fit vocabulary
    assert "red cube" in terms("Red cube?") and json.dumps(terms("a b")) == '["a", "b", "a b"]'
