from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cogvision.errors import UnknownLabelError
from cogvision.schema import (
    Decomposition,
    FailureRecord,
    Manifest,
    Provenance,
    SourceQuestion,
    SourceRef,
    SubQuestion,
)

from .conftest import make_decomposition

text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40).filter(
    lambda s: s.strip() != ""
)


def test_question_id_is_a_stable_content_hash(question: SourceQuestion) -> None:
    # Pinned: ids must not change across versions, machines or Python releases.
    assert question.id == SourceQuestion.model_validate(question.model_dump()).id
    assert question.id.startswith("q-") and len(question.id) == 18
    changed = question.model_copy(update={"id": ""}).model_dump()
    changed["answer"] = "3"
    assert SourceQuestion.model_validate(changed).id != question.id


def test_known_id_value() -> None:
    q = SourceQuestion(
        question="What colour is the ball?",
        answer="red",
        source=SourceRef(dataset="toy", split="train", index="0"),
        license="CC0-1.0",
    )
    identity = (
        '{"answer":"red","choices":null,"image":null,"question":"What colour is the ball?",'
        '"source":{"config":null,"dataset":"toy","index":"0","split":"train"}}'
    )
    assert q.id == "q-" + hashlib.sha256(identity.encode()).hexdigest()[:16]
    assert q.id == "q-9f04d7a8fd62c9a0"  # pinned: a change here breaks every published id


def test_tampered_id_is_rejected(question: SourceQuestion) -> None:
    data = question.model_dump()
    data["id"] = "q-0000000000000000"
    with pytest.raises(ValidationError, match="does not match the content"):
        SourceQuestion.model_validate(data)


def test_records_are_frozen_and_forbid_unknown_fields(question: SourceQuestion) -> None:
    with pytest.raises(ValidationError):
        question.question = "changed"  # type: ignore[misc]
    data = question.model_dump()
    data["surprise"] = 1
    with pytest.raises(ValidationError, match="Extra inputs"):
        SourceQuestion.model_validate(data)


def test_answer_must_be_one_of_the_choices() -> None:
    with pytest.raises(ValidationError, match="not one of the choices"):
        SourceQuestion(
            question="q?",
            answer="4",
            choices=["1", "2"],
            source=SourceRef(dataset="t", split="s", index="0"),
            license="x",
        )


def test_unsupported_schema_version_is_rejected(question: SourceQuestion) -> None:
    data = question.model_dump()
    data["schema_version"] = 99
    with pytest.raises(ValidationError, match="schema_version 99"):
        SourceQuestion.model_validate(data)


def test_decomposition_id_survives_content_corrections(decomposition: Decomposition) -> None:
    data = decomposition.model_dump()
    data["subquestions"][1]["answer"] = "two"
    data["id"] = ""
    corrected = Decomposition.model_validate(data)
    assert corrected.id == decomposition.id
    assert corrected.content_hash != decomposition.content_hash


def test_decomposition_rejects_alias_unknown_label_and_forward_dependency(
    decomposition: Decomposition,
) -> None:
    base = decomposition.model_dump()
    alias = json.loads(json.dumps(base, default=str))
    alias["subquestions"][0]["function"] = "Semantic Understanding"
    with pytest.raises(ValidationError, match="canonical name"):
        Decomposition.model_validate(alias)
    unknown = json.loads(json.dumps(base, default=str))
    unknown["subquestions"][0]["function"] = "Telepathy"
    with pytest.raises(UnknownLabelError, match="Telepathy"):
        Decomposition.model_validate(unknown)
    forward = json.loads(json.dumps(base, default=str))
    forward["subquestions"][1]["depends_on"] = [2]
    with pytest.raises(ValidationError, match="point backwards"):
        Decomposition.model_validate(forward)


def test_decomposition_rejects_duplicate_and_misnumbered_steps(
    decomposition: Decomposition,
) -> None:
    data = json.loads(decomposition.model_dump_json())
    data["subquestions"][2]["question"] = " which objects are RED? "
    with pytest.raises(ValidationError, match="repeats"):
        Decomposition.model_validate(data)
    data = json.loads(decomposition.model_dump_json())
    data["subquestions"][2]["index"] = 5
    with pytest.raises(ValidationError, match="expected 2"):
        Decomposition.model_validate(data)


@settings(max_examples=40, deadline=None)
@given(question=text, answer=text, choices=st.lists(text, max_size=4), index=st.integers(0, 10**6))
def test_source_question_json_round_trip(
    question: str, answer: str, choices: list[str], index: int
) -> None:
    record = SourceQuestion(
        question=question,
        answer=answer,
        choices=[answer, *choices] if choices else None,
        source=SourceRef(dataset="d", split="train", index=str(index)),
        license="MIT",
        metadata={"k": [1, 2, {"x": question}]},
    )
    again = SourceQuestion.model_validate_json(record.model_dump_json())
    assert again == record and again.id == record.id


@settings(max_examples=30, deadline=None)
@given(
    steps=st.lists(st.tuples(text, text), min_size=1, max_size=6, unique_by=lambda t: t[0].lower()),
    data=st.data(),
)
def test_decomposition_json_round_trip(steps: list[tuple[str, str]], data: st.DataObject) -> None:
    from .conftest import make_question

    functions = ["Inference", "Math Reasoning", "High-level Visual Reception"]
    folded = {" ".join(q.lower().split()) for q, _ in steps}
    if len(folded) != len(steps):
        return
    subs = [
        SubQuestion(
            index=i,
            question=q,
            answer=a,
            function=functions[i % 3],
            depends_on=sorted(data.draw(st.sets(st.integers(0, max(i - 1, 0))))) if i else [],
        )
        for i, (q, a) in enumerate(steps)
    ]
    record = Decomposition(
        question=make_question(),
        taxonomy="cogvision",
        subquestions=subs,
        provenance=Provenance(generator="test"),
    )
    again = Decomposition.model_validate_json(record.model_dump_json())
    assert again == record and again.content_hash == record.content_hash


def test_failure_and_manifest_round_trip() -> None:
    failure = FailureRecord(
        item_id="q-1",
        stage="decompose",
        error_type="LLMError",
        message="bad",
        errors=["a", "b"],
        attempts=3,
        raw_response="{",
    )
    assert FailureRecord.model_validate_json(failure.model_dump_json()) == failure
    manifest = Manifest(stage="synth", config={"n": 3}, counts={"items": 3}, seed=1)
    assert Manifest.model_validate_json(manifest.model_dump_json()) == manifest


def test_decomposition_built_from_helper_is_valid() -> None:
    from .conftest import make_question

    assert make_decomposition(make_question()).id.startswith("d-")
