"""One question through the paper's two steps, with validation, re-asking and a cross-check.

(a) a chain of thought for the main question given its reference answer (and the image);
(b) from question + chain of thought, 2-8 sequentially dependent sub-questions, each with a concise
answer and one function of the taxonomy. Each step is asked up to ``max_attempts`` times; a failed
attempt is answered with its validation errors. With a verify model, a second model answers every
sub-question from the same context (main question, image, earlier steps); disagreements are
flagged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from cogvision.decompose.client import LLMClient, RequestFailed
from cogvision.decompose.config import DecomposeConfig
from cogvision.decompose.responses import ChainOfThought, SubQuestionPlan, VerifierAnswer
from cogvision.decompose.templates import PromptSet, choices_block, functions_block, schema_text
from cogvision.decompose.validate import (
    MAX_STEPS,
    MIN_STEPS,
    answers_match,
    check_chain_of_thought,
    check_plan,
    parse_reply,
)
from cogvision.schema import (
    Decomposition,
    FailureRecord,
    Provenance,
    SourceQuestion,
    SubQuestion,
    Taxonomy,
    Verification,
)

log = logging.getLogger(__name__)

GENERATOR = "llm"
STAGE = "decompose"
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)


@dataclass
class StepFailed(Exception):
    """A step's replies never validated within ``max_attempts``."""

    step: str
    errors: list[str]
    raw: str | None


@dataclass
class ItemLog:
    """What happened to one item: every error, the last raw reply, asks per step."""

    errors: list[str] = field(default_factory=list)
    raw: str | None = None
    attempts: dict[str, int] = field(default_factory=dict)


class Decomposer:
    """Turns a SourceQuestion into a Decomposition or a FailureRecord (never raises for an item)."""

    def __init__(self, client: LLMClient, config: DecomposeConfig, prompts: PromptSet,
                 taxonomy: Taxonomy) -> None:
        self.client = client
        self.config = config
        self.prompts = prompts
        self.taxonomy = taxonomy
        self.parameters = config.parameters()
        self.systems = {
            "cot": prompts.render("cot_system", schema=schema_text(ChainOfThought)),
            "plan": prompts.render("plan_system", schema=schema_text(SubQuestionPlan),
                                   functions=functions_block(taxonomy), min_steps=str(MIN_STEPS),
                                   max_steps=str(MAX_STEPS)),
            "verify": prompts.render("verify_system", schema=schema_text(VerifierAnswer)),
        }

    async def run(self, question: SourceQuestion,
                  image_url: str | None) -> Decomposition | FailureRecord:
        """Decompose one question; any failure becomes a FailureRecord with every error seen."""
        item = ItemLog()
        try:
            cot = await self._chain_of_thought(question, image_url, item)
            subs = await self._plan(question, cot, item)
            if self.config.verify_model:
                subs = await self._verify(question, image_url, subs)
        except StepFailed as exc:
            return self._failure(question, item, "InvalidReply",
                                 f"{exc.step}: no valid reply in {self.config.max_attempts} "
                                 f"attempts; last error: {exc.errors[-1]}")
        except RequestFailed as exc:
            item.errors.append(f"request failed: {exc}")
            return self._failure(question, item, f"RequestFailed:{exc.kind}", str(exc))
        return self._decomposition(question, cot, subs, item)

    # ------------------------------------------------------------------ steps

    async def _chain_of_thought(self, question: SourceQuestion, image_url: str | None,
                                item: ItemLog) -> str:
        user = self.prompts.render("cot_user", question=question.question, answer=question.answer,
                                   choices_block=choices_block(question.choices))

        def check(cot: ChainOfThought) -> tuple[str, list[str]]:
            errors = check_chain_of_thought(cot, question.answer, question.choices)
            steps = [s.strip() for s in cot.steps if s.strip()]
            return "\n".join(f"{i}. {s}" for i, s in enumerate(steps, start=1)), errors

        messages = [_system(self.systems["cot"]), _user(user, image_url, self.config.detail)]
        return await self._ask("cot", self.config.model, messages, ChainOfThought, check, item,
                               question.id)

    async def _plan(self, question: SourceQuestion, cot: str,
                    item: ItemLog) -> list[SubQuestion]:
        user = self.prompts.render("plan_user", question=question.question, answer=question.answer,
                                   choices_block=choices_block(question.choices),
                                   chain_of_thought=cot)

        def check(plan: SubQuestionPlan) -> tuple[list[SubQuestion], list[str]]:
            return check_plan(plan, self.taxonomy, question.answer, question.choices)

        messages = [_system(self.systems["plan"]), _user(user, None, self.config.detail)]
        return await self._ask("plan", self.config.model, messages, SubQuestionPlan, check, item,
                               question.id)

    async def _verify(self, question: SourceQuestion, image_url: str | None,
                      subs: list[SubQuestion]) -> list[SubQuestion]:
        answers = await asyncio.gather(*(self._verify_one(question, image_url, subs, i)
                                         for i in range(len(subs))))
        model = str(self.config.verify_model)
        return [sub.model_copy(update={"verification": Verification(
                    model=model, answer=answer, agrees=answers_match(answer, sub.answer)
                    if answer else False)})
                for sub, answer in zip(subs, answers, strict=True)]

    async def _verify_one(self, question: SourceQuestion, image_url: str | None,
                          subs: list[SubQuestion], index: int) -> str:
        previous = "".join(f"Step {s.index + 1}: {s.question}\nAnswer: {s.answer}\n"
                           for s in subs[:index])
        user = self.prompts.render(
            "verify_user", question=question.question, subquestion=subs[index].question,
            choices_block=choices_block(question.choices),
            previous_block=f"Earlier steps:\n{previous}" if previous else "")
        messages = [_system(self.systems["verify"]), _user(user, image_url, self.config.detail)]
        item = ItemLog()
        try:
            return await self._ask(f"verify[{index + 1}]", str(self.config.verify_model),
                                   messages, VerifierAnswer, lambda r: (r.answer.strip(), []),
                                   item, question.id)
        except StepFailed as exc:
            # An unreadable verifier answer is a disagreement for a human to adjudicate.
            log.warning("%s: verifier gave no valid answer for step %d: %s", question.id,
                        index + 1, exc.errors[-1])
            return ""

    async def _ask(self, step: str, model: str, messages: list[dict[str, Any]],
                   reply_model: type[M], check: Callable[[M], tuple[R, list[str]]],
                   item: ItemLog, label: str) -> R:
        """Ask, validate, re-ask with the errors; raise StepFailed after max_attempts."""
        for attempt in range(1, self.config.max_attempts + 1):
            item.attempts[step] = attempt
            raw = await self.client.complete(model, messages, reply_model, self.parameters,
                                             label=f"{label} {step}")
            item.raw = raw
            parsed, errors = parse_reply(raw, reply_model)
            if parsed is not None:
                result, errors = check(parsed)
                if not errors:
                    return result
            item.errors.extend(f"{step} attempt {attempt}: {e}" for e in errors)
            log.info("%s %s attempt %d invalid: %s", label, step, attempt, "; ".join(errors))
            repair = self.prompts.render("repair", errors="\n".join(f"- {e}" for e in errors))
            messages = [*messages, {"role": "assistant", "content": raw},
                        {"role": "user", "content": repair}]
        raise StepFailed(step, item.errors, item.raw)

    # ------------------------------------------------------------------ records

    def _decomposition(self, question: SourceQuestion, cot: str, subs: list[SubQuestion],
                       item: ItemLog) -> Decomposition:
        parameters = {**self.parameters, "send_images": self.config.send_images,
                      "max_attempts": self.config.max_attempts, "attempts": item.attempts,
                      "verify_model": self.config.verify_model}
        provenance = Provenance(generator=GENERATOR, model=self.config.model,
                                prompt_version=self.prompts.version, parameters=parameters)
        return Decomposition(question=question, taxonomy=self.config.taxonomy, chain_of_thought=cot,
                             subquestions=subs, provenance=provenance)

    def _failure(self, question: SourceQuestion, item: ItemLog, error_type: str,
                 message: str) -> FailureRecord:
        return FailureRecord(item_id=question.id, stage=STAGE, error_type=error_type,
                             message=message, errors=item.errors,
                             attempts=sum(item.attempts.values()), raw_response=item.raw,
                             input=question.model_dump(mode="json"))


def _system(text: str) -> dict[str, Any]:
    return {"role": "system", "content": text}


def _user(text: str, image_url: str | None, detail: str) -> dict[str, Any]:
    if image_url is None:
        return {"role": "user", "content": text}
    return {"role": "user", "content": [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": image_url, "detail": detail}},
    ]}
