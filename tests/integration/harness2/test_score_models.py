"""Scoring with the real offline embedding model and an LLM judge behind a local HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cogvision.errors import LLMError
from cogvision.harness.judge import LLMJudge
from cogvision.harness.score import (
    EmbeddingCosine,
    IntegratedAccuracy,
    Sample,
    build_metric,
    score_samples,
)

from .conftest import JudgeServer


def test_embedding_cosine_is_real_and_ordered() -> None:
    samples = [
        Sample("q", "a red car", "a red car"),
        Sample("q", "a kitten was sitting", "the cat sat"),
        Sample("q", "quantum chromodynamics", "the cat sat"),
    ]
    values = [row["embedding_cosine"] for row in EmbeddingCosine().score(samples)]
    assert values[0] == pytest.approx(1.0, abs=1e-5)
    assert values[1] > 0.6 > values[2]  # paraphrase above the paper's threshold, unrelated below


def test_integrated_accuracy_ors_three_thresholds() -> None:
    samples = [
        Sample("Which animal?", "a kitten was sitting", "the cat sat"),  # only cosine passes
        Sample("Colour?", "red metal cube", "cube"),  # ROUGE-L 0.5, low BLEU, unrelated-ish
        Sample("Colour?", "red", "Red."),  # everything passes
    ]
    rows = IntegratedAccuracy().score(samples)
    assert set(rows[0]) == {"bleu", "rouge_l", "embedding_cosine", "integrated_accuracy"}
    assert rows[0]["rouge_l"] == 0.0 and rows[0]["integrated_accuracy"] == 1.0
    assert rows[1]["rouge_l"] == pytest.approx(0.5)
    assert rows[1]["integrated_accuracy"] == float(rows[1]["embedding_cosine"] > 0.6)
    assert rows[2]["integrated_accuracy"] == 1.0
    strict = IntegratedAccuracy(cosine_threshold=0.99).score(samples[:1])
    assert strict[0]["integrated_accuracy"] == 0.0  # thresholds are real options


def test_llm_judge_over_http_caches_on_disk(
    judge_server: JudgeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    samples = [
        Sample("Colour?", "red", "It is red."),
        Sample("Count?", "3", "two"),
        Sample("Shape?", "cube", "GARBLE"),
    ]
    judge = build_metric(
        "llm_judge", model="judge-model", base_url=judge_server.base_url, cache_dir=str(tmp_path)
    )
    rows = score_samples(samples, [judge])
    assert rows == [{"llm_judge": 1.0}, {"llm_judge": 0.0}, {"llm_judge": None}]
    first = judge_server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["body"]["model"] == "judge-model" and first["body"]["temperature"] == 0.0
    assert "Reference answer: red" in first["body"]["messages"][-1]["content"]
    assert first["auth"] == "Bearer sk-test-secret"
    cache_text = (tmp_path / "judge_cache.jsonl").read_text()
    assert "sk-test-secret" not in cache_text and len(cache_text.splitlines()) == 2

    again = LLMJudge(model="judge-model", base_url=judge_server.base_url, cache_dir=str(tmp_path))
    assert again.score(samples[:2]) == rows[:2]
    assert again.calls == 0  # answered from the disk cache
    assert len(judge_server.requests) == 3
    other_prompt_key = json.loads(cache_text.splitlines()[0])["key"]
    assert other_prompt_key == again._key(samples[0])


def test_llm_judge_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    judge = LLMJudge(model="m", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=2.0)
    with pytest.raises(LLMError, match="LLM judge m: APIConnectionError"):
        judge.score([Sample("q", "a", "b")])
