"""Decompositions <-> Label Studio tasks, predictions and annotation results.

A task's ``data`` carries the decomposition id and content hash (push is keyed by the id and updates
a task only when the hash changed), the display strings the label config shows, and the draft's
answers and labels. The LLM's draft becomes a prediction (pre-annotation): every sub-question
pre-marked valid, its function and answer pre-marked, so reviewers correct rather than type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cogvision.errors import ReviewError
from cogvision.review import labelconfig as lc
from cogvision.schema.records import Decomposition, ImageRef, SubQuestion


def image_file_name(image: ImageRef) -> str:
    """Content-addressed file name of an image (uploads, caches and pulled copies use it)."""
    return f"{image.sha256[:24]}{Path(image.path).suffix.lower() or '.png'}"


def _subquestion_text(sub: SubQuestion) -> str:
    lines = [f"Sub-question {sub.index + 1}: {sub.question}", f"Answer: {sub.answer}",
             f"Function: {sub.function}"]
    if sub.depends_on:
        lines.append("Uses steps: " + ", ".join(str(d + 1) for d in sub.depends_on))
    check = sub.verification
    if check is not None:
        verdict = "agrees" if check.agrees else "DISAGREES: please check the answer"
        lines.append(f"Verifier ({check.model}): {check.answer} ({verdict})")
    return "\n".join(lines)


def task_data(decomposition: Decomposition, image_url: str) -> dict[str, Any]:
    """The ``data`` of the Label Studio task reviewing ``decomposition``."""
    q = decomposition.question
    main = f"Main question: {q.question}\nReference answer: {q.answer}"
    if q.choices:
        main += "\nChoices: " + " | ".join(q.choices)
    if decomposition.chain_of_thought:
        main += f"\nChain of thought: {decomposition.chain_of_thought}"
    return {
        "decomposition_id": decomposition.id,
        "content_hash": decomposition.content_hash,
        "config_version": lc.CONFIG_VERSION,
        "taxonomy": decomposition.taxonomy,
        "image": image_url,
        "image_sha256": q.image.sha256 if q.image else None,
        "question_header": f"{q.source.dataset} {q.source.index}: {q.question}",
        "main": main,
        "record": decomposition.model_dump(mode="json"),
        "subquestions": [
            {"index": s.index, "question": s.question, "answer": s.answer, "function": s.function,
             "text": _subquestion_text(s)}
            for s in decomposition.subquestions
        ],
    }


def _choice(from_name: str, to_name: str, value: str) -> dict[str, Any]:
    return {"from_name": from_name, "to_name": to_name, "type": "choices",
            "value": {"choices": [value]}}


def prediction_result(decomposition: Decomposition) -> list[dict[str, Any]]:
    """The LLM draft as a pre-annotation result (valid, its label, answer marked correct)."""
    result = []
    for sub in decomposition.subquestions:
        to_name = lc.SUBQUESTION.format(i=sub.index)
        result.append(_choice(lc.VALID.format(i=sub.index), to_name, "valid"))
        result.append(_choice(lc.FUNCTION.format(i=sub.index), to_name, sub.function))
        answer_ok = sub.verification is None or sub.verification.agrees
        result.append(_choice(lc.ANSWER.format(i=sub.index), to_name,
                              "correct" if answer_ok else "incorrect"))
    return result


@dataclass
class SubVerdict:
    """One reviewer's answers for one sub-question (None where the reviewer left it blank)."""

    valid: bool | None = None
    function: str | None = None
    answer_correct: bool | None = None
    corrected: str | None = None


@dataclass
class ReviewerVerdict:
    """One reviewer's annotation of one task."""

    reviewer: str
    updated_at: datetime | None
    subs: list[SubVerdict] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every sub-question judged valid or invalid (stage 1 is required)."""
        return all(s.valid is not None for s in self.subs)

    @property
    def valid_share(self) -> float:
        return sum(1 for s in self.subs if s.valid) / len(self.subs)


def _parse_name(name: str) -> tuple[str, int]:
    kind, _, idx = name.rpartition("_")
    return kind, int(idx)


def parse_result(result: list[dict[str, Any]], n: int, reviewer: str,
                 updated_at: datetime | None) -> ReviewerVerdict:
    """Map a VALIDATED annotation result back to per-sub-question verdicts."""
    subs = [SubVerdict() for _ in range(n)]
    for region in result:
        kind, idx = _parse_name(region["from_name"])
        value = region["value"]
        sub = subs[idx]
        if kind == "valid":
            sub.valid = value["choices"][0] == "valid" if value.get("choices") else None
        elif kind == "function":
            sub.function = value["choices"][0] if value.get("choices") else None
        elif kind == "answer":
            sub.answer_correct = value["choices"][0] == "correct" if value.get("choices") else None
        elif kind == "corrected":
            texts = [t.strip() for t in value.get("text", []) if t and t.strip()]
            sub.corrected = " ".join(texts[-1].split()) if texts else None
        else:  # pragma: no cover - validation rejects names outside the config first
            raise ReviewError(f"unexpected result name {region['from_name']!r}")
    return ReviewerVerdict(reviewer=reviewer, updated_at=updated_at, subs=subs)
