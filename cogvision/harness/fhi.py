"""Functional Head Identification + Class-conditioned Rescaling (FHI / CCR; training-free).

Per head, the share of attention from the last prompt token onto image tokens (the visual
attention ratio S_v); shallow heads with a high ratio are "perception" heads, deep heads with a
low ratio "reasoning" heads, and each set is rescaled by a ``gain`` intervention
(``cogvision.harness.intervene``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from cogvision.errors import UsageError
from cogvision.harness.heads import HeadId
from cogvision.harness.intervene import InterventionSpec, Scope, spec_for


def visual_attention_ratios(
    attentions: Sequence[torch.Tensor], image_mask: torch.Tensor, query: int = -1
) -> torch.Tensor:
    """Share of attention from the ``query`` position onto image tokens, ``[layers, heads]``.

    Args:
        attentions: one ``[batch, heads, q, k]`` tensor per layer (eager attention weights).
        image_mask: bool ``[batch, k]``, True at image-token positions.
        query: query position (default: the last prompt token, the same for every left-padded row).
    """
    ratios = []
    for attn in attentions:
        row = attn[:, :, query, :].float()  # [batch, heads, k]
        on_image = (row * image_mask[:, None, :].to(row.dtype)).sum(-1)
        ratios.append((on_image / row.sum(-1).clamp_min(1e-12)).mean(0))  # [heads]
    return torch.stack(ratios)  # [layers, heads]


@torch.no_grad()
def measure_visual_ratios(model: Any, batches: Sequence[Any], image_token_id: int) -> torch.Tensor:
    """Mean visual-attention ratio per head over ``batches`` of model inputs, ``[layers, heads]``.

    Switches the model to eager attention for the measurement (only eager returns weights) and
    restores the previous implementation afterwards.
    """
    previous = model.config._attn_implementation
    total: torch.Tensor | None = None
    count = 0
    model.set_attn_implementation("eager")
    try:
        for inputs in batches:
            out = model(**inputs, output_attentions=True)
            image_mask = inputs["input_ids"] == image_token_id  # [batch, seq]
            ratios = visual_attention_ratios(out.attentions, image_mask) * image_mask.shape[0]
            total = ratios if total is None else total + ratios
            count += image_mask.shape[0]
    finally:
        model.set_attn_implementation(previous)
    if total is None:
        raise UsageError("measure_visual_ratios needs at least one batch")
    return total / count


class FHIConfig(BaseModel):
    """Functional Head Identification + Class-conditioned Rescaling (training-free)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    perception_layers: tuple[int, int] | None = Field(
        default=None, description="[lo, hi) layers for perception heads; default first half."
    )
    reasoning_layers: tuple[int, int] | None = Field(
        default=None, description="[lo, hi) layers for reasoning heads; default second half."
    )
    tau_perception: float = Field(default=0.3, description="Perception heads: S_v >= this.")
    tau_reasoning: float = Field(default=0.1, description="Reasoning heads: S_v <= this.")
    gain_perception: float = 1.2
    gain_reasoning: float = 1.2
    scope: Scope = "all"


def select_fhi_heads(ratios: torch.Tensor, config: FHIConfig) -> tuple[list[HeadId], list[HeadId]]:
    """Perception heads (shallow, high visual ratio) and reasoning heads (deep, low ratio)."""
    n_layers = ratios.shape[0]
    perc = config.perception_layers or (0, n_layers // 2)
    reas = config.reasoning_layers or (n_layers // 2, n_layers)
    perception = [
        HeadId(layer, head)
        for layer in range(*perc)
        for head in range(ratios.shape[1])
        if float(ratios[layer, head]) >= config.tau_perception
    ]
    reasoning = [
        HeadId(layer, head)
        for layer in range(*reas)
        for head in range(ratios.shape[1])
        if float(ratios[layer, head]) <= config.tau_reasoning
    ]
    return perception, reasoning


def fhi_specs(
    perception: Sequence[HeadId], reasoning: Sequence[HeadId], config: FHIConfig
) -> list[InterventionSpec]:
    """The two ``gain`` specs that rescale perception and reasoning heads (empty sets skipped)."""
    specs = []
    for heads, gain, label in (
        (perception, config.gain_perception, "fhi:perception"),
        (reasoning, config.gain_reasoning, "fhi:reasoning"),
    ):
        if heads:
            specs.append(spec_for("gain", heads, gain=gain, scope=config.scope, label=label))
    return specs
