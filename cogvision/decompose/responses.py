"""The LLM-facing response models and the strict JSON Schema requested through ``response_format``.

These are deliberately small and separate from the record schema: they describe what the model
writes, not what cogvision stores. Range checks (2-8 steps, known labels, backward dependencies)
live in ``validate.py`` so a violation becomes an error message the model can act on.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChainOfThought(_Reply):
    """Step (a): a chain of thought that reaches the given reference answer."""

    steps: list[str] = Field(description="Reasoning steps, in order, one sentence or two each.")
    final_answer: str = Field(description="The answer the steps arrive at (the reference answer).")


class PlannedSubQuestion(_Reply):
    """One sub-question as the model writes it; ``depends_on`` holds 1-based step numbers."""

    question: str = Field(description="A clear, self-contained, answerable sub-question.")
    answer: str = Field(description="Its concise answer.")
    function: str = Field(description="Exactly one function name from the taxonomy.")
    depends_on: list[int] = Field(description="Numbers (1-based) of earlier steps this one uses.")


class SubQuestionPlan(_Reply):
    """Step (b): sequentially dependent sub-questions derived from the chain of thought."""

    subquestions: list[PlannedSubQuestion]


class VerifierAnswer(_Reply):
    """The cross-check: a second model's concise answer to one sub-question."""

    answer: str = Field(description="Concise answer to the sub-question.")


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema in the form OpenAI's strict structured outputs accept.

    Every object forbids extra keys and lists all its properties as required; ``$defs`` are kept.
    """
    schema = copy.deepcopy(model.model_json_schema())

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@cache
def response_format(model: type[BaseModel]) -> dict[str, Any]:
    """``response_format`` value requesting ``model``'s schema (strict json_schema mode).

    Cached: treat the returned dict as read-only.
    """
    return {
        "type": "json_schema",
        "json_schema": {"name": model.__name__, "schema": strict_json_schema(model),
                        "strict": True},
    }
