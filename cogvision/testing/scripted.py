"""Scripted replies for the local OpenAI-compatible server, and a SCRIPTED model answering from
ground truth: given known decompositions, it answers cogvision's prompts as a perfect LLM would.

The scripted model recognises the request kind by the JSON Schema title the prompts embed
(``ChainOfThought``, ``SubQuestionPlan``, ``VerifierAnswer``) and the item by the image's sha256
(when the image is sent) or by the ``Question:`` / ``Reference answer:`` lines of the prompt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cogvision.schema import Decomposition

KINDS = {"ChainOfThought": "cot", "SubQuestionPlan": "plan", "VerifierAnswer": "verify"}
_QUESTION = re.compile(r"^(?:Main q|Q)uestion: (.*)$", re.M)
_REFERENCE = re.compile(r"^Reference answer: (.*)$", re.M)
_SUBQUESTION = re.compile(r"^Sub-question: (.*)$", re.M)


@dataclass
class Reply:
    """One scripted answer: assistant ``content`` (status 200) or an HTTP error."""

    content: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    error: str = "scripted error"


def _texts(body: dict[str, Any], role: str) -> list[str]:
    out = []
    for message in body.get("messages", []):
        if message.get("role") != role:
            continue
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(p.get("text", "") for p in content if p.get("type") == "text")
    return out


def request_kind(body: dict[str, Any]) -> str:
    """``cot``, ``plan``, ``verify`` (from the schema title in the system prompt) or ``unknown``."""
    system = " ".join(_texts(body, "system"))
    for title, kind in KINDS.items():
        if f'"title":"{title}"' in system:
            return kind
    return "unknown"


def request_text(body: dict[str, Any]) -> str:
    """The first user message's text (the item's prompt, before any re-ask)."""
    texts = _texts(body, "user")
    return texts[0] if texts else ""


def is_reask(body: dict[str, Any]) -> bool:
    """Whether the request re-asks after a rejected reply."""
    return any(m.get("role") == "assistant" for m in body.get("messages", []))


def request_image_sha(body: dict[str, Any]) -> str | None:
    """sha256 of the first data-URL image in the request, if any."""
    for message in body.get("messages", []):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            url = (part.get("image_url") or {}).get("url", "") if isinstance(part, dict) else ""
            if url.startswith("data:") and "," in url:
                return hashlib.sha256(base64.b64decode(url.split(",", 1)[1])).hexdigest()
    return None


class GroundTruthResponder:
    """A scripted model that answers from known decompositions (never a real LLM)."""

    def __init__(self, decompositions: list[Decomposition], *,
                 verifier_error_rate: float = 0.0) -> None:
        self.verifier_error_rate = verifier_error_rate
        self.by_text: dict[tuple[str, str], list[Decomposition]] = {}
        self.by_image: dict[tuple[str, str], Decomposition] = {}
        for d in decompositions:
            q = d.question
            self.by_text.setdefault((_line(q.question), _line(q.answer)), []).append(d)
            if q.image is not None:
                self.by_image[(q.image.sha256, _line(q.question))] = d

    @classmethod
    def from_file(cls, path: str | Path, **options: float) -> GroundTruthResponder:
        from cogvision.artifacts import read_jsonl

        return cls(read_jsonl(path, Decomposition), **options)

    def find(self, body: dict[str, Any]) -> Decomposition | None:
        text = request_text(body)
        question = _first(_QUESTION, text)
        sha = request_image_sha(body)
        if sha is not None and (sha, question) in self.by_image:
            return self.by_image[(sha, question)]
        candidates = self.by_text.get((question, _first(_REFERENCE, text)), [])
        if not candidates:
            candidates = [d for (q, _), ds in self.by_text.items() if q == question for d in ds]
        # Same text, other scene: the chain of thought in a plan prompt tells them apart.
        return next((d for d in candidates if all(
            f"{s.question} {s.answer}." in text for s in d.subquestions)),
            candidates[0] if candidates else None)

    def __call__(self, body: dict[str, Any]) -> Reply:
        found, kind = self.find(body), request_kind(body)
        if found is None or kind == "unknown":
            return Reply(status=400, error=f"scripted model: unknown item or request kind {kind}")
        reply = self.answer(found, kind, request_text(body))
        if kind == "verify" and _unit(request_text(body)) < self.verifier_error_rate:
            reply = {"answer": "cannot tell"}  # a scripted disagreement, same for every run
        return Reply(content=json.dumps(reply))

    @staticmethod
    def answer(d: Decomposition, kind: str, text: str) -> dict[str, Any]:
        """The reply object a perfect model would give for request ``kind``."""
        subs = d.subquestions
        if kind == "cot":
            steps = [f"{s.question} {s.answer}." for s in subs]
            return {"steps": steps, "final_answer": d.question.answer}
        if kind == "plan":
            return {"subquestions": [
                {"question": s.question, "answer": s.answer, "function": s.function,
                 "depends_on": [i + 1 for i in s.depends_on]} for s in subs]}
        asked = _first(_SUBQUESTION, text)
        match = next((s.answer for s in subs if _line(s.question) == asked), "unknown")
        return {"answer": match}


def _first(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    return found.group(1).strip() if found else ""


def _line(text: str) -> str:
    """First line, stripped: prompts are matched line by line."""
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def _unit(text: str) -> float:
    """A stable number in [0, 1) from ``text``."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) / 16**8
