"""The options of ``cogvision eval`` (``EvalConfig``, recorded in each run's manifest) and of
its scoring (``ScoringConfig``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cogvision.harness.capture import CaptureOptions
from cogvision.harness.experiments import ExperimentConfig
from cogvision.harness.fhi import FHIConfig


class ScoringConfig(BaseModel):
    """Metrics (registry names), the one accuracy is computed from, and their options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: list[str] = Field(default_factory=lambda: ["exact_match", "integrated_accuracy"])
    primary: str = "integrated_accuracy"
    bleu_threshold: float = 0.8
    rouge_threshold: float = 0.6
    cosine_threshold: float = 0.6
    judge_model: str | None = None
    judge_base_url: str | None = None
    judge_prompt_version: str = "judge-v1"


class EvalConfig(BaseModel):
    """Everything ``cogvision eval`` does, recorded in the manifest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    data: str
    out: str
    test_fraction: float = 0.2
    split_seed: int = 0
    capture: CaptureOptions = Field(default_factory=CaptureOptions)
    probe: dict[str, Any] = Field(default_factory=dict, description="Options of the probe fit.")
    experiments: ExperimentConfig = Field(default_factory=ExperimentConfig)
    fhi: FHIConfig = Field(default_factory=FHIConfig)
    fhi_items: int = Field(default=16, ge=1, description="Train prompts to measure S_v on.")
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    batch_size: int = Field(default=8, ge=1)
    max_new_tokens: int = Field(default=16, ge=1)
    reuse_prompt_cache: bool = True
    dtype: str = "float32"
    device_map: str | None = None
    shard: str | None = Field(
        default=None, description="i/n: this job's part of the test set; auto: RANK/WORLD_SIZE."
    )
    merge_timeout_s: float = Field(default=86400.0, description="auto shards: rank 0 waits.")
    downstream_data: str | None = Field(
        default=None, description="questions.jsonl (or its folder) of a VQA set, e.g. from import."
    )
    downstream_instruction: str = "Answer the question with a single word or short phrase."
