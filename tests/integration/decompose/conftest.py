"""Fixtures for the decompose stage: hand-made questions with real PNG images, their ground-truth
decompositions, and a real OpenAI-compatible server on loopback answering from that ground truth."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from cogvision.artifacts import read_jsonl, write_jsonl_atomic
from cogvision.decompose import DecomposeConfig
from cogvision.images import image_ref_from_bytes
from cogvision.schema import (
    Decomposition,
    FailureRecord,
    Provenance,
    SourceQuestion,
    SourceRef,
    SubQuestion,
)
from cogvision.testing.openai_server import (
    GroundTruthResponder,
    OpenAIServer,
    is_reask,
    request_kind,
    request_text,
)

COLOURS = ["red", "green", "blue", "yellow"]


@dataclass
class Dataset:
    questions_path: Path
    questions: list[SourceQuestion]
    truth: list[Decomposition]


def _png(index: int, count: int) -> bytes:
    img = Image.new("RGB", (32, 32), (index * 7 % 256, 255 - index * 5 % 256, 40))
    for k in range(count):
        for x in range(3 + 6 * k, 7 + 6 * k):
            for y in range(10, 14):
                img.putpixel((x, y), (255, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_dataset(folder: Path, n: int) -> Dataset:
    """``n`` questions with images under ``folder/images`` and their ground-truth decompositions."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    questions, truth = [], []
    for i in range(n):
        count, colour = 1 + i % 4, COLOURS[i % len(COLOURS)]
        data = _png(i, count)
        name = f"images/q{i:04d}.png"
        (folder / name).write_bytes(data)
        q = SourceQuestion(
            image=image_ref_from_bytes(data, name),
            question=f"In picture {i}, how many {colour} marks are on the bar?",
            answer=str(count), source=SourceRef(dataset="handmade", split="test", index=str(i)),
            license="CC0-1.0")
        subs = [
            SubQuestion(index=0, question=f"What object is drawn in picture {i}?", answer="a bar",
                        function="High-level Visual Reception"),
            SubQuestion(index=1, question=f"Which marks on the bar are {colour}?",
                        answer="the left ones", function="Low-level Visual Reception",
                        depends_on=[0]),
            SubQuestion(index=2, question=f"How many {colour} marks are there in total?",
                        answer=str(count), function="Math Reasoning", depends_on=[1]),
        ]
        questions.append(q)
        truth.append(Decomposition(question=q, taxonomy="cogvision", subquestions=subs,
                                   provenance=Provenance(generator="handmade")))
    path = folder / "questions.jsonl"
    write_jsonl_atomic(path, questions)
    return Dataset(path, questions, truth)


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    return make_dataset(tmp_path / "input", 6)


@pytest.fixture
def server(dataset: Dataset) -> Iterator[OpenAIServer]:
    with OpenAIServer(GroundTruthResponder(dataset.truth)) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def fast_config(url: str, cache_dir: Path, **overrides: object) -> DecomposeConfig:
    """Short timeouts and backoff so failure scenarios stay fast."""
    values: dict[str, object] = dict(model="scripted-gt", base_url=url, concurrency=4,
                                     cache_dir=cache_dir, timeout_s=2.0, max_retries=3,
                                     backoff_base_s=0.01, backoff_max_s=0.2)
    values.update(overrides)
    return DecomposeConfig.model_validate(values)


def read_outputs(out_dir: Path, dataset: Dataset) -> tuple[dict[str, Decomposition],
                                                              dict[str, FailureRecord]]:
    """Both output files, validated; asserts every input id is in exactly one of them."""
    done = {d.question.id: d for d in read_jsonl(out_dir / "decompositions.jsonl", Decomposition,
                                                 allow_empty=True)}
    failed = {f.item_id: f for f in read_jsonl(out_dir / "failures.jsonl", FailureRecord,
                                               allow_empty=True)}
    assert not set(done) & set(failed), "an item is in both files"
    assert set(done) | set(failed) == {q.id for q in dataset.questions}, "an item was lost"
    return done, failed


def for_item(dataset: Dataset, index: int, kind: str, *, reask: bool | None = None):  # noqa: ANN201
    """Predicate matching requests of one kind (cot/plan/verify) about question ``index``."""
    marker = f"In picture {index},"

    def predicate(body: dict) -> bool:  # type: ignore[type-arg]
        if request_kind(body) != kind or marker not in request_text(body):
            return False
        return reask is None or is_reask(body) == reask

    return predicate
