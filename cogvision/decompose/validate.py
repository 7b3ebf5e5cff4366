"""Validating model replies: JSON extraction, schema, and the semantic checks of a decomposition.

Every check returns error messages written for the model (sent back verbatim when re-asking)
and kept, in order, in the failure record when the attempts run out.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from cogvision.decompose.responses import ChainOfThought, SubQuestionPlan
from cogvision.schema import SubQuestion, Taxonomy, get_taxonomy

M = TypeVar("M", bound=BaseModel)

MIN_STEPS = 2
MAX_STEPS = 8

_THINK = re.compile(r"<think>.*?</think>", re.S)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_ARTICLES = {"a", "an", "the"}
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}


def extract_json(text: str) -> object:
    """The JSON value in a reply: the whole text, a fenced block, or the outermost ``{...}``
    (after dropping ``<think>`` blocks).

    Raises ValueError with a message for the model when none parses.
    """
    text = _THINK.sub("", text)  # reasoning models served locally prepend <think>...</think>
    candidates = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    first_error = None
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError as exc:
            first_error = first_error or exc
    detail = f": {first_error.msg} at line {first_error.lineno} column {first_error.colno}" if (
        first_error) else ""
    raise ValueError(f"the reply is not valid JSON{detail}. Reply with one JSON object only.")


def parse_reply(text: str | None, model: type[M]) -> tuple[M | None, list[str]]:
    """Parse and schema-validate a reply; returns (object or None, errors for the model)."""
    if not text or not text.strip():
        return None, ["the reply was empty. Reply with one JSON object."]
    try:
        data = extract_json(text)
    except ValueError as exc:
        return None, [str(exc)]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [_schema_message(err) for err in exc.errors()]


def _schema_message(err: ErrorDetails) -> str:
    where = ".".join(str(part) for part in err["loc"]) or "the top level"
    return f"JSON field '{where}': {err['msg']}"


def normalise_answer(text: str) -> str:
    """Lower-case, accents and punctuation removed, articles dropped, number words as digits."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    text = re.sub(r"[^\w\s.]", " ", text)
    words = []
    for word in text.split():
        word = word.strip(".")
        if not word or word in _ARTICLES:
            continue
        word = _NUMBER_WORDS.get(word, word)
        if re.fullmatch(r"\d+\.0+", word):
            word = word.split(".")[0]
        words.append(word)
    return " ".join(words)


def answers_match(answer: str, reference: str, choices: list[str] | None = None) -> bool:
    """Whether ``answer`` states ``reference`` (normalised; an option letter counts for choices)."""
    got, want = normalise_answer(answer), normalise_answer(reference)
    if got == want:
        return True
    if choices and reference in choices:
        letter = chr(ord("a") + choices.index(reference))
        if got in {letter, f"{letter} {want}", f"option {letter}"}:
            return True
    return False


def check_chain_of_thought(cot: ChainOfThought, reference: str,
                           choices: list[str] | None) -> list[str]:
    """Errors in a chain of thought: empty steps, or a final answer that is not the reference."""
    errors = []
    if not [s for s in cot.steps if s.strip()]:
        errors.append("'steps' is empty: write the reasoning as a list of steps.")
    elif any(not s.strip() for s in cot.steps):
        errors.append("'steps' contains an empty step: remove it.")
    if not answers_match(cot.final_answer, reference, choices):
        errors.append(f"'final_answer' is {cot.final_answer!r} but the reference answer is "
                      f"{reference!r}: the reasoning must arrive at the reference answer.")
    return errors


def check_plan(plan: SubQuestionPlan, taxonomy: Taxonomy, reference: str,
               choices: list[str] | None) -> tuple[list[SubQuestion], list[str]]:
    """Convert a plan to SubQuestions, collecting every semantic error (empty list when valid)."""
    subs, errors = plan.subquestions, []
    if not MIN_STEPS <= len(subs) <= MAX_STEPS:
        errors.append(f"there are {len(subs)} sub-questions; write between {MIN_STEPS} and "
                      f"{MAX_STEPS}.")
    seen: dict[str, int] = {}
    converted: list[SubQuestion] = []
    for number, sub in enumerate(subs, start=1):
        errors.extend(_check_step(number, sub.question, sub.answer, seen))
        function = _find(taxonomy.name, sub.function)
        if function is None:
            errors.append(f"sub-question {number}: function {sub.function!r} is not in the "
                          f"taxonomy; use exactly one of: {'; '.join(taxonomy.names)}.")
        bad = [d for d in sub.depends_on if not 1 <= d < number]
        if bad:
            errors.append(f"sub-question {number}: depends_on {bad} must only name earlier steps "
                          f"(1 to {number - 1}).")
        if not errors:
            converted.append(SubQuestion(index=number - 1, question=sub.question.strip(),
                                         answer=sub.answer.strip(), function=function or "",
                                         depends_on=sorted({d - 1 for d in sub.depends_on})))
    if subs and not answers_match(subs[-1].answer, reference, choices):
        errors.append(f"the last sub-question's answer is {subs[-1].answer!r} but the reference "
                      f"answer is {reference!r}: the last step must reach the reference answer.")
    return (converted if not errors else []), errors


@lru_cache(maxsize=4096)
def _find(taxonomy: str, label: str) -> str | None:
    """``get_taxonomy(taxonomy).find(label)``, memoised: labels repeat across thousands of items."""
    return get_taxonomy(taxonomy).find(label)


def _check_step(number: int, question: str, answer: str, seen: dict[str, int]) -> list[str]:
    errors = []
    if not question.strip():
        errors.append(f"sub-question {number}: 'question' is empty.")
    if not answer.strip():
        errors.append(f"sub-question {number}: 'answer' is empty.")
    folded = " ".join(question.lower().split())
    if folded and folded in seen:
        errors.append(f"sub-question {number} repeats sub-question {seen[folded]}; remove or "
                      f"rephrase it.")
    seen.setdefault(folded, number)
    return errors
