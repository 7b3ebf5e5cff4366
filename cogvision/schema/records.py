"""The records every stage reads and writes.

All records are frozen, forbid unknown fields and carry ``schema_version``. Ids are content hashes
(see ``ids.py``): a ``SourceQuestion`` id hashes its content; a ``Decomposition`` id hashes *who*
decomposed *which* question under *which* taxonomy (question id, taxonomy, generator, model, prompt
version), so a corrected decomposition keeps its id and ``content_hash`` tells versions apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cogvision.schema.ids import content_hash, make_id
from cogvision.schema.taxonomy import get_taxonomy

SCHEMA_VERSION = 1

JsonScalar = str | int | float | bool | None
Metadata = dict[str, Any]


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Record(BaseModel):
    """Base: frozen, strict about unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = Field(
        default=SCHEMA_VERSION, description="Version of this record's schema."
    )

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {value} is not supported (this cogvision reads {SCHEMA_VERSION})"
            )
        return value


class Part(BaseModel):
    """Base of nested parts (no version of their own)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class ImageRef(Part):
    """An image file, referenced by path and pinned by its bytes' sha256."""

    path: str = Field(description="Path relative to the artifact's folder (or absolute).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the file's bytes.")
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    bytes: int = Field(gt=0, description="File size in bytes.")
    format: str = Field(description="PIL format name, e.g. PNG or JPEG.")


class SourceRef(Part):
    """Where a question came from."""

    dataset: str = Field(description="Source dataset name, e.g. easy-vqa, MathVista, synthetic.")
    config: str | None = Field(default=None, description="Dataset config/subset, if any.")
    split: str = Field(description="The source dataset's own split (not the benchmark's).")
    index: str = Field(description="Index or id of the item within the source split.")


class SourceQuestion(Record):
    """A complex (main) question about one image, before decomposition."""

    id: str = Field(
        default="", description="Content hash `q-...` of source, question, answer, choices, image."
    )
    image: ImageRef | None = Field(default=None, description="The image; None for text-only items.")
    question: str = Field(description="The main question as asked.")
    answer: str = Field(
        description="Reference answer (for multiple choice: the correct option's text)."
    )
    choices: list[str] | None = Field(
        default=None, description="Options for multiple-choice questions."
    )
    source: SourceRef
    license: str = Field(description="SPDX id or licence name of the source item.")
    metadata: Metadata = Field(
        default_factory=dict, description="Source-specific extras (JSON values)."
    )

    _check_question = field_validator("question", "answer")(_not_blank)

    def identity(self) -> dict[str, Any]:
        return {
            "source": self.source.model_dump(),
            "question": self.question,
            "answer": self.answer,
            "choices": self.choices,
            "image": self.image.sha256 if self.image else None,
        }

    @model_validator(mode="after")
    def _check_id(self) -> SourceQuestion:
        expected = make_id("q", self.identity())
        if not self.id:
            object.__setattr__(self, "id", expected)
        elif self.id != expected:
            raise ValueError(f"id {self.id} does not match the content (expected {expected})")
        if self.choices is not None and self.answer not in self.choices:
            raise ValueError(f"answer {self.answer!r} is not one of the choices {self.choices}")
        return self


class Verification(Part):
    """A second model's answer to a sub-question (the paper's stage-3 cross-check)."""

    model: str
    answer: str
    agrees: bool = Field(
        description="Whether the verifier's answer matches the sub-question's answer."
    )


class SubQuestion(Part):
    """One chain-of-thought step: a triplet (q_i, a_i, f_i) plus its dependencies."""

    index: int = Field(ge=0, description="0-based position in the chain.")
    question: str
    answer: str
    function: str = Field(description="Canonical function name in the decomposition's taxonomy.")
    depends_on: list[int] = Field(
        default_factory=list, description="Indices of earlier steps used."
    )
    verification: Verification | None = None

    _check_text = field_validator("question", "answer", "function")(_not_blank)


class Provenance(Part):
    """Who or what produced a record, and how."""

    generator: str = Field(description="e.g. synth, llm, import:cogvision-json, review.")
    model: str | None = Field(default=None, description="LLM or program that produced it.")
    prompt_version: str | None = None
    parameters: Metadata = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)


class SubQuestionReview(Part):
    """The reviewers' votes on one sub-question (indices refer to the reviewed draft)."""

    index: int = Field(ge=0, description="Index of the sub-question in the reviewed draft.")
    valid_votes: int = Field(default=0, ge=0)
    invalid_votes: int = Field(default=0, ge=0)
    invalid: bool = Field(default=False, description="At least the configured number said invalid.")
    function_votes: dict[str, int] = Field(default_factory=dict)
    original_function: str | None = Field(
        default=None, description="The draft's label, if changed."
    )
    relabel: bool = Field(
        default=False, description="Function vote tied: sent back for relabelling."
    )
    original_answer: str | None = Field(
        default=None, description="The draft's answer, if corrected."
    )
    corrected_by: list[str] = Field(default_factory=list)
    corrected_at: datetime | None = None


class ReviewOutcome(Part):
    """The aggregated human verdict on a decomposition."""

    status: Literal["pending", "accepted", "dropped"]
    reviewers: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    decided_at: datetime | None = None
    subquestions: list[SubQuestionReview] = Field(
        default_factory=list, description="Per sub-question votes and corrections (review stage)."
    )
    config_version: str | None = Field(default=None, description="Label config version reviewed.")


class Decomposition(Record):
    """A main question decomposed into sequentially dependent, function-labelled sub-questions."""

    id: str = Field(
        default="", description="`d-...` hash of question id, taxonomy, generator, model, prompt."
    )
    question: SourceQuestion
    taxonomy: Literal["cogvision", "cogvsr", "cogqa"]
    chain_of_thought: str | None = None
    subquestions: list[SubQuestion] = Field(min_length=1)
    provenance: Provenance
    review: ReviewOutcome | None = None

    @property
    def question_id(self) -> str:
        return self.question.id

    def identity(self) -> dict[str, Any]:
        p = self.provenance
        return {
            "question": self.question.id,
            "taxonomy": self.taxonomy,
            "generator": p.generator,
            "model": p.model,
            "prompt_version": p.prompt_version,
        }

    @property
    def content_hash(self) -> str:
        return content_hash(self.model_dump(mode="json", exclude={"provenance": {"created_at"}}))

    @model_validator(mode="after")
    def _check(self) -> Decomposition:
        taxonomy = get_taxonomy(self.taxonomy)
        seen: set[str] = set()
        for position, sub in enumerate(self.subquestions):
            if sub.index != position:
                raise ValueError(
                    f"subquestions[{position}].index is {sub.index}, expected {position}"
                )
            if sub.function not in taxonomy.names:
                taxonomy.canonical(sub.function)  # raises with the valid names when unknown
                raise ValueError(
                    f"subquestions[{position}].function {sub.function!r} is an alias; "
                    f"use the canonical name {taxonomy.canonical(sub.function)!r}"
                )
            if any(d < 0 or d >= position for d in sub.depends_on):
                raise ValueError(
                    f"subquestions[{position}].depends_on {sub.depends_on} must point backwards"
                )
            folded = " ".join(sub.question.lower().split())
            if folded in seen:
                raise ValueError(f"subquestions[{position}] repeats an earlier sub-question")
            seen.add(folded)
        expected = make_id("d", self.identity())
        if not self.id:
            object.__setattr__(self, "id", expected)
        elif self.id != expected:
            raise ValueError(f"id {self.id} does not match the content (expected {expected})")
        return self


class FailureRecord(Record):
    """An input item a stage could not process: nothing is dropped silently."""

    item_id: str = Field(description="Id of the input item (or `line:N` when it had none).")
    stage: str = Field(description="Stage that failed, e.g. import, decompose, review.")
    error_type: str
    message: str
    errors: list[str] = Field(default_factory=list, description="Every error seen, oldest first.")
    attempts: int = Field(default=1, ge=0)
    raw_response: str | None = Field(default=None, description="Last raw model output, if any.")
    input: Metadata | None = Field(
        default=None, description="The input item, when it could be read."
    )
    created_at: datetime = Field(default_factory=utc_now)

    @property
    def id(self) -> str:
        return self.item_id


class FileDigest(Part):
    path: str
    sha256: str
    bytes: int


class Manifest(Record):
    """What a stage run did: enough to reproduce it. Never holds secrets."""

    stage: str
    command: list[str] = Field(default_factory=list)
    config: Metadata = Field(default_factory=dict, description="Resolved config, secrets redacted.")
    inputs: list[FileDigest] = Field(default_factory=list)
    outputs: list[FileDigest] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    seed: int | None = None
    git_revision: str | None = None
    packages: dict[str, str] = Field(default_factory=dict)
    python: str = ""
    platform: str = ""
    started_at: datetime = Field(default_factory=utc_now)
    finished_at: datetime | None = None
    extra: Metadata = Field(default_factory=dict)


RECORD_TYPES: dict[str, type[Record]] = {
    "source_question": SourceQuestion,
    "decomposition": Decomposition,
    "failure": FailureRecord,
    "manifest": Manifest,
}
