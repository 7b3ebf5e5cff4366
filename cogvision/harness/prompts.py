"""Sub-question prompts: the main question and the earlier sub-questions with their answers as
context.

The paper answers each sub-question with both as context; its ablations drop either (the head maps
change, so these are recorded options). A prompt is ``prefix + suffix``: the prefix (the main
question) is shared by every sub-question of a main item, so capture can compute it once (KV-cache
reuse); the suffix holds the earlier steps and the sub-question itself.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from cogvision.harness.data import MainItem, SubItem

PROMPT_VERSION = "subq-v1"


class PromptOptions(BaseModel):
    """How sub-question prompts are written (recorded in manifests)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    include_main_question: bool = True
    include_context: bool = True
    instruction: str = "Answer the sub-question with a single word or short phrase."


def prefix_text(item: MainItem, options: PromptOptions) -> str:
    """The part shared by all sub-questions of ``item``."""
    if not options.include_main_question:
        return ""
    return f"Main question: {item.main_question}\n"


def suffix_text(sub: SubItem, options: PromptOptions) -> str:
    """The part specific to one sub-question."""
    lines = []
    if options.include_context and sub.context:
        lines.append("Previous steps:")
        lines.extend(f"Q{i + 1}: {q}\nA{i + 1}: {a}" for i, (q, a) in enumerate(sub.context))
    lines.append(f"Sub-question: {sub.question}")
    lines.append(options.instruction)
    return "\n".join(lines)


def prompt_text(item: MainItem, sub: SubItem, options: PromptOptions) -> str:
    """The full text prompt of one sub-question (before the chat template)."""
    return prefix_text(item, options) + suffix_text(sub, options)
