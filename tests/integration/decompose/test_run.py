"""decompose_file against a real OpenAI-compatible HTTP server on loopback, scripted per request."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cogvision.artifacts import read_jsonl, write_jsonl_atomic
from cogvision.checks import validate_file
from cogvision.decompose import decompose_file
from cogvision.errors import LLMError, UsageError
from cogvision.schema import Decomposition, Provenance, SourceQuestion, SourceRef, SubQuestion
from cogvision.testing.openai_server import GroundTruthResponder, OpenAIServer, Reply

from .conftest import Dataset, fast_config, for_item, read_outputs

WRONG_LAST = json.dumps({"subquestions": [
    {"question": "What is drawn?", "answer": "a bar", "function": "High-level Visual Reception",
     "depends_on": []},
    {"question": "How many marks?", "answer": "99", "function": "Math Reasoning",
     "depends_on": [1]}]})


def test_valid_answers_reproduce_the_ground_truth(dataset: Dataset, server: OpenAIServer,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = decompose_file(dataset.questions_path, out, fast_config(server.url, tmp_path / "c"))
    done, failed = read_outputs(out, dataset)
    assert failed == {} and result.counts["decompositions"] == 6
    for truth in dataset.truth:
        got = done[truth.question.id]
        assert [(s.question, s.answer, s.function, s.depends_on) for s in got.subquestions] == [
            (s.question, s.answer, s.function, s.depends_on) for s in truth.subquestions]
        assert got.provenance.generator == "llm" and got.provenance.model == "scripted-gt"
        assert got.provenance.prompt_version == result.stats["prompt_version"]
        assert got.chain_of_thought and got.chain_of_thought.startswith("1. ")
    # two requests per item, each with the image as a data URL and a strict json_schema
    assert server.count == 12
    cot = [r for r in server.requests if "ChainOfThought" in json.dumps(r["response_format"])]
    assert len(cot) == 6 and all(
        r["messages"][1]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
        for r in cot)
    assert all(r["response_format"]["json_schema"]["strict"] for r in server.requests)
    records, problems = validate_file(out / "decompositions.jsonl", check_images=True)
    assert problems == [] and len(records) == 6  # images were copied next to the output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["decompositions"] == 6
    assert manifest["extra"]["usage"]["scripted-gt"]["requests"] == 12
    assert manifest["extra"]["usage"]["scripted-gt"]["prompt_tokens"] > 0
    assert os.environ["OPENAI_API_KEY"] not in (out / "manifest.json").read_text()


def test_invalid_json_and_unknown_labels_are_re_asked(dataset: Dataset, server: OpenAIServer,
                                                      tmp_path: Path) -> None:
    server.when(for_item(dataset, 0, "plan"), Reply(content='{"subquestions": [ oops'))
    truth = GroundTruthResponder.answer(dataset.truth[2], "plan", "")
    truth["subquestions"][0]["function"] = "Induction"
    server.when(for_item(dataset, 2, "plan"), Reply(content=json.dumps(truth)))
    out = tmp_path / "out"
    decompose_file(dataset.questions_path, out, fast_config(server.url, tmp_path / "c"))
    done, failed = read_outputs(out, dataset)
    assert failed == {}
    for index in (0, 2):
        assert done[dataset.questions[index].id].provenance.parameters["attempts"] == {
            "cot": 1, "plan": 2}
    reasks = [r for r in server.requests if len(r["messages"]) == 4]
    assert len(reasks) == 2
    texts = sorted(r["messages"][3]["content"] for r in reasks)
    assert any("not valid JSON" in t for t in texts)
    assert any("'Induction' is not in the taxonomy; use exactly one of: Low-level" in t
               for t in texts)
    assert server.count == 14


def test_semantically_wrong_answers_fail_after_max_attempts(dataset: Dataset, server: OpenAIServer,
                                                            tmp_path: Path) -> None:
    server.when(for_item(dataset, 1, "plan"), *[Reply(content=WRONG_LAST)] * 5)
    out = tmp_path / "out"
    decompose_file(dataset.questions_path, out,
                   fast_config(server.url, tmp_path / "c", max_attempts=3))
    done, failed = read_outputs(out, dataset)
    assert len(done) == 5
    failure = failed[dataset.questions[1].id]
    assert failure.error_type == "InvalidReply" and failure.attempts == 4  # 1 cot + 3 plan
    assert failure.raw_response == WRONG_LAST
    assert len([e for e in failure.errors if "reference answer is '2'" in e]) == 3
    assert [e.split(":")[0] for e in failure.errors] == [
        "plan attempt 1", "plan attempt 2", "plan attempt 3"]
    assert failure.input is not None and failure.input["id"] == dataset.questions[1].id


def test_429_honours_retry_after(dataset: Dataset, server: OpenAIServer, tmp_path: Path) -> None:
    server.enqueue(Reply(status=429, headers={"Retry-After": "0.4"}))
    out = tmp_path / "out"
    result = decompose_file(dataset.questions_path, out,
                            fast_config(server.url, tmp_path / "c", concurrency=1))
    read_outputs(out, dataset)
    assert result.stats["retries_by_reason"] == {"http_429": 1}
    assert server.arrivals[1] - server.arrivals[0] >= 0.38  # backoff alone would be ~0.01 s
    assert server.count == 13


def test_500_retries_are_bounded(dataset: Dataset, server: OpenAIServer, tmp_path: Path) -> None:
    server.when(for_item(dataset, 3, "cot"), *[Reply(status=500)] * 10)
    out = tmp_path / "out"
    result = decompose_file(dataset.questions_path, out,
                            fast_config(server.url, tmp_path / "c", max_retries=2))
    done, failed = read_outputs(out, dataset)
    failure = failed[dataset.questions[3].id]
    assert failure.error_type == "RequestFailed:http_500"
    assert "gave up after 2 retries" in failure.message
    matching = [r for r in server.requests if for_item(dataset, 3, "cot")(r)]
    assert len(matching) == 3  # the first try and exactly two retries
    assert result.stats["retries"] == 2 and len(done) == 5


def test_slow_response_times_out_and_is_retried(dataset: Dataset, server: OpenAIServer,
                                                tmp_path: Path) -> None:
    server.when(for_item(dataset, 4, "plan"), Reply(delay_s=1.5))
    out = tmp_path / "out"
    result = decompose_file(dataset.questions_path, out,
                            fast_config(server.url, tmp_path / "c", timeout_s=0.3))
    done, failed = read_outputs(out, dataset)
    assert failed == {} and result.stats["retries_by_reason"] == {"timeout": 1}


@pytest.mark.parametrize(("flag", "fallbacks"), [
    ("ignore_response_format", []), ("reject_json_schema", ["json_schema->json_object"])])
def test_servers_without_structured_output(dataset: Dataset, tmp_path: Path, flag: str,
                                           fallbacks: list[str]) -> None:
    with OpenAIServer(GroundTruthResponder(dataset.truth), **{flag: True}) as srv:
        out = tmp_path / "out"
        result = decompose_file(dataset.questions_path, out,
                                fast_config(srv.url, tmp_path / "c", concurrency=1))
        done, failed = read_outputs(out, dataset)
        assert len(done) == 6 and failed == {}
        assert result.stats["format_fallbacks"] == fallbacks
        formats = [(r.get("response_format") or {}).get("type") for r in srv.requests]
    if flag == "reject_json_schema":
        assert formats[0] == "json_schema" and set(formats[1:]) == {"json_object"}
        assert len(formats) == 13


def test_warm_cache_rerun_sends_zero_requests(dataset: Dataset, server: OpenAIServer,
                                              tmp_path: Path) -> None:
    cfg = fast_config(server.url, tmp_path / "cache")
    decompose_file(dataset.questions_path, tmp_path / "first", cfg)
    sent = server.count
    result = decompose_file(dataset.questions_path, tmp_path / "second", cfg)
    assert server.count == sent == 12
    assert result.stats["usage"]["scripted-gt"]["cached_replies"] == 12
    first, _ = read_outputs(tmp_path / "first", dataset)
    second, _ = read_outputs(tmp_path / "second", dataset)
    assert {k: v.content_hash for k, v in first.items()} == {
        k: v.content_hash for k, v in second.items()}
    # resuming a finished folder does nothing at all
    again = decompose_file(dataset.questions_path, tmp_path / "second", cfg)
    assert again.counts["skipped_already_done"] == 6 and server.count == 12
    assert len((tmp_path / "second" / "decompositions.jsonl").read_text().splitlines()) == 6


def test_verifier_disagreements_are_flagged(dataset: Dataset, server: OpenAIServer,
                                            tmp_path: Path) -> None:
    server.when(lambda b: for_item(dataset, 0, "verify")(b) and "Sub-question: How many" in
                json.dumps(b), Reply(content='{"answer": "7"}'))
    out = tmp_path / "out"
    result = decompose_file(dataset.questions_path, out,
                            fast_config(server.url, tmp_path / "c", verify_model="checker"))
    done, _ = read_outputs(out, dataset)
    flags = [(s.verification.answer, s.verification.agrees) for s in
             done[dataset.questions[0].id].subquestions if s.verification]
    assert flags == [("a bar", True), ("the left ones", True), ("7", False)]
    assert result.stats["verified_subquestions"] == 18
    assert result.stats["verifier_disagreement_rate"] == pytest.approx(1 / 18)
    assert result.stats["usage"]["checker"]["requests"] == 18


def test_parameters_a_model_refuses_are_dropped(dataset: Dataset, server: OpenAIServer,
                                                tmp_path: Path) -> None:
    refuses = "Unsupported value: 'temperature' does not support 0 with this model."
    server.when(lambda b: b["model"] == "o-checker" and "temperature" in b,
                *[Reply(status=400, error=refuses)] * 30)
    out = tmp_path / "out"
    result = decompose_file(dataset.questions_path, out,
                            fast_config(server.url, tmp_path / "c", verify_model="o-checker"))
    done, failed = read_outputs(out, dataset)
    assert failed == {} and len(done) == 6
    assert result.stats["dropped_parameters"] == {"o-checker": ["temperature"]}
    checker = [r for r in server.requests if r["model"] == "o-checker"]
    assert len([r for r in checker if "temperature" in r]) <= 4  # only those already in flight
    assert all("temperature" in r for r in server.requests if r["model"] == "scripted-gt")


def test_refused_key_stops_the_run_and_missing_images_fail_items(
        dataset: Dataset, server: OpenAIServer, tmp_path: Path) -> None:
    (dataset.questions_path.parent / "images" / "q0005.png").unlink()
    server.enqueue(Reply(status=401, error="invalid api key"))
    out = tmp_path / "out"
    with pytest.raises(LLMError, match="HTTP 401"):
        decompose_file(dataset.questions_path, out,
                       fast_config(server.url, tmp_path / "c", concurrency=1))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extra"]["status"].startswith("aborted: LLMError")
    assert manifest["extra"]["usage"] == {} and manifest["counts"]["pending"] == 6
    decompose_file(dataset.questions_path, out, fast_config(server.url, tmp_path / "c"))
    done, failed = read_outputs(out, dataset)
    assert list(failed) == [dataset.questions[5].id] and len(done) == 5
    assert failed[dataset.questions[5].id].error_type == "ImageError"
    assert "questions.jsonl:6: image.path: image file not found" in failed[
        dataset.questions[5].id].message


def test_retry_failures_and_settings_guard(dataset: Dataset, server: OpenAIServer,
                                           tmp_path: Path) -> None:
    server.when(for_item(dataset, 2, "cot"), Reply(status=400, error="context length exceeded"))
    out, cfg = tmp_path / "out", fast_config(server.url, tmp_path / "c")
    decompose_file(dataset.questions_path, out, cfg)
    _, failed = read_outputs(out, dataset)
    failure = failed[dataset.questions[2].id]
    assert failure.error_type == "RequestFailed:http_error"  # a plain 400 is not retried
    assert len([r for r in server.requests if for_item(dataset, 2, "cot")(r)]) == 1
    result = decompose_file(dataset.questions_path, out, cfg, retry_failures=True)
    done, failed = read_outputs(out, dataset)
    assert failed == {} and len(done) == 6 and result.counts["skipped_already_done"] == 5
    other = fast_config(server.url, tmp_path / "c", model="another-model")
    with pytest.raises(UsageError, match=r"decompositions.jsonl:1: made by model 'scripted-gt'"):
        decompose_file(dataset.questions_path, out, other)


def test_text_only_and_multiple_choice_questions(tmp_path: Path) -> None:
    question = SourceQuestion(question="Which is a mammal?", answer="whale",
                              choices=["shark", "whale"], license="MIT",
                              source=SourceRef(dataset="hand", split="test", index="0"))
    subs = [SubQuestion(index=0, question="What class does a whale belong to?",
                        answer="mammals", function="Language Knowledge Recall"),
            SubQuestion(index=1, question="Which option is a mammal?", answer="B",
                        function="Decision-Making", depends_on=[0])]
    truth = Decomposition(question=question, taxonomy="cogvision", subquestions=subs,
                          provenance=Provenance(generator="hand"))
    path = tmp_path / "q.jsonl"
    write_jsonl_atomic(path, [question])
    with OpenAIServer(GroundTruthResponder([truth])) as srv:
        decompose_file(path, tmp_path / "out", fast_config(srv.url, tmp_path / "c"))
        prompt = srv.requests[0]["messages"][1]["content"]
    assert isinstance(prompt, str) and "Options:\n(A) shark\n(B) whale" in prompt
    (record,) = read_jsonl(tmp_path / "out" / "decompositions.jsonl", Decomposition)
    assert record.question.image is None and record.subquestions[-1].answer == "B"


def test_run_killed_mid_image_copy_resumes_to_the_same_records(
        dataset: Dataset, server: OpenAIServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy cut short (by SIGKILL, a full disk) must not leave a torn image under the final
    name: the resumed run would take it for another image and store the item under another
    path (seen once in CI as a flaky test_sigkilled_run_resumes_to_the_same_output)."""
    import shutil

    from cogvision.decompose import runner

    reference = decompose_file(dataset.questions_path, tmp_path / "ref",
                               fast_config(server.url, tmp_path / "c1", cache=False))
    real_copy = shutil.copyfile

    def torn_copy(src: str | Path, dst: str | Path) -> None:
        Path(dst).write_bytes(Path(src).read_bytes()[:40])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner.shutil, "copyfile", torn_copy)
    config = fast_config(server.url, tmp_path / "c2", cache=False, concurrency=1)
    with pytest.raises(OSError, match="No space left"):
        decompose_file(dataset.questions_path, tmp_path / "out", config)
    assert not (tmp_path / "out" / "images" / "q0000.png").exists()
    monkeypatch.setattr(runner.shutil, "copyfile", real_copy)
    decompose_file(dataset.questions_path, tmp_path / "out", config)
    done, failed = read_outputs(tmp_path / "out", dataset)
    expected, _ = read_outputs(reference.out_dir, dataset)
    assert failed == {} and {k: d.question.image.path for k, d in done.items()} == {
        k: d.question.image.path for k, d in expected.items()}
    assert {k: d.content_hash for k, d in done.items()} == {
        k: d.content_hash for k, d in expected.items()}
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == sorted(
        p.name for p in (reference.out_dir / "images").iterdir())
