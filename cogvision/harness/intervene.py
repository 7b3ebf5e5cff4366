"""Interventions on attention heads, applied to the input of each layer's ``self_attn.o_proj``.

The o_proj input is the concatenation of the per-head attention outputs; viewed ``[batch, seq,
heads, d_head]`` it addresses one head's contribution before W_O, leaving attention patterns alone.
Every intervention is an explicit, recorded :class:`InterventionSpec` (JSON-serialisable, hashable
into cache keys) plus, where needed, tensors computed from captured activations:

- ``scale``: multiply the heads' slices by ``epsilon`` (masking; the paper uses 0.001).
- ``patch_random`` / ``patch_mean``: replace the slices with one random sample's, or the mean,
  activations of another function (``source``), drawn from captured training activations.
- ``steer``: ITI-style ``x += alpha * sigma * dir``, ``dir`` the mass-mean difference of correct
  minus incorrect activations per head (unit-normalised or not, recorded), ``sigma`` the std of the
  activations projected on the unit direction.
- ``gain``: multiply the slices by ``gain`` (FHI/CCR rescaling of perception/reasoning heads,
  chosen by ``cogvision.harness.fhi``).

Scope is decided by ABSOLUTE position: a position is "generated" when it is >= the prompt length
(the padded prompt length of the batch), read from the KV cache length when the decoder runs, so it
stays right when decoding resumes from a copied prompt cache. Identity settings (epsilon 1.0,
alpha 0, gain 1.0) leave logits bit-identical. Hooks are removed when the context exits, also on
errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from cogvision.errors import UsageError
from cogvision.harness.heads import HeadId
from cogvision.harness.hooks import o_proj_pre_hooks, split_heads
from cogvision.schema.ids import content_hash

Kind = Literal["scale", "patch_random", "patch_mean", "steer", "gain"]
Scope = Literal["prompt", "generated", "all"]


class InterventionSpec(BaseModel):
    """One recorded intervention on a set of heads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind
    heads: tuple[str, ...] = Field(description="Heads as L{layer}H{head}.")
    scope: Scope = Field(default="all", description="prompt, generated or all positions.")
    epsilon: float = Field(default=0.001, description="scale: factor applied to the heads.")
    alpha: float = Field(default=0.0, description="steer: strength in units of sigma.")
    unit_direction: bool = Field(default=True, description="steer: unit-normalise the direction.")
    gain: float = Field(default=1.0, description="gain: factor applied to the heads.")
    source: str | None = Field(default=None, description="patch: donor function; steer: label.")
    seed: int | None = Field(default=None, description="Seed behind random choices (heads, donor).")
    label: str = Field(default="", description="Free text for reports, e.g. functional:Math.")

    @field_validator("heads")
    @classmethod
    def _parse_heads(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(HeadId.parse(h)) for h in value)

    @property
    def head_ids(self) -> list[HeadId]:
        return [HeadId.parse(h) for h in self.heads]

    @property
    def key(self) -> str:
        """Stable hash of the spec, for cache keys."""
        return content_hash(self.model_dump(mode="json"))

    def needs_values(self) -> bool:
        return self.kind in {"patch_random", "patch_mean", "steer"}


def spec_for(kind: str, heads: Sequence[HeadId], **fields: Any) -> InterventionSpec:
    """Build a spec by kind name; unknown kinds list the known ones."""
    if kind not in KINDS:
        raise UsageError(f"unknown intervention kind {kind!r}; known: {', '.join(KINDS)}")
    return InterventionSpec(kind=kind, heads=tuple(str(h) for h in heads), **fields)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- per-kind math


@dataclass
class Edit:
    """A spec compiled for hooking: its heads grouped by layer and its per-head tensors.

    ``values`` is ``[k, d_head]`` in the order of ``spec.heads``: the replacement slices (patch) or
    the added vectors ``alpha * sigma * dir`` (steer). ``rows`` (``[batch]`` bool) restricts the
    edit to some rows of a batch, for running several conditions in one batch.
    """

    spec: InterventionSpec
    values: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    by_layer: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # layer -> (head, k)
    cache: dict[Any, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.spec.needs_values() and self.values is None:
            raise UsageError(f"intervention {self.spec.kind} needs values (patch/steer tensors)")
        if self.values is not None and self.values.shape[0] != len(self.spec.heads):
            raise UsageError(f"{len(self.spec.heads)} heads but values for {self.values.shape[0]}")
        for k, head in enumerate(self.spec.head_ids):
            self.by_layer.setdefault(head.layer, []).append((head.head, k))


def _layer_tensors(edit: Edit, layer: int, x4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached per (layer, dtype, device): head mask ``[1, 1, heads, 1]`` and the per-head operand
    (factor ``[1, 1, heads, 1]`` for scale/gain, slices ``[1, 1, heads, d_head]`` for patch/steer).
    """
    key = (layer, x4.dtype, x4.device)
    if key not in edit.cache:
        pairs = edit.by_layer[layer]
        idx, ks = [h for h, _ in pairs], [k for _, k in pairs]
        n_heads, d_head = x4.shape[2], x4.shape[3]
        head_mask = torch.zeros(1, 1, n_heads, 1, dtype=torch.bool, device=x4.device)
        head_mask[0, 0, idx] = True
        if edit.spec.kind in {"scale", "gain"}:
            factor = edit.spec.epsilon if edit.spec.kind == "scale" else edit.spec.gain
            operand = torch.ones(1, 1, n_heads, 1, dtype=x4.dtype, device=x4.device)
            operand[0, 0, idx] = factor
        else:
            assert edit.values is not None
            operand = torch.zeros(1, 1, n_heads, d_head, dtype=x4.dtype, device=x4.device)
            operand[0, 0, idx] = edit.values[ks].to(dtype=x4.dtype, device=x4.device)
        edit.cache[key] = (head_mask, operand)
    return edit.cache[key]


def _apply_factor(x4: torch.Tensor, mask: torch.Tensor, operand: torch.Tensor) -> torch.Tensor:
    return x4 * torch.where(mask, operand, 1.0)


def _apply_patch(x4: torch.Tensor, mask: torch.Tensor, operand: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, operand, x4)


def _apply_steer(x4: torch.Tensor, mask: torch.Tensor, operand: torch.Tensor) -> torch.Tensor:
    return x4 + torch.where(mask, operand, 0.0)


ApplyFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
KINDS: dict[str, ApplyFn] = {
    "scale": _apply_factor,
    "patch_random": _apply_patch,
    "patch_mean": _apply_patch,
    "steer": _apply_steer,
    "gain": _apply_factor,
}


# every position in scope, all rows: factor is 1.0 and the steering vector 0 outside the heads
FAST: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "scale": torch.mul,
    "gain": torch.mul,
    "steer": torch.add,
}


def scope_bounds(scope: Scope, offset: int, seq: int, prompt_length: int) -> tuple[int, int]:
    """``[lo, hi)``: the in-scope part of the ``seq`` positions starting at absolute ``offset``."""
    cut = min(max(prompt_length - offset, 0), seq)  # positions before it are prompt positions
    if scope == "prompt":
        return 0, cut
    if scope == "generated":
        return cut, seq
    return 0, seq


def in_scope(
    scope: Scope, offset: int, seq: int, prompt_length: int, device: torch.device | None = None
) -> torch.Tensor:
    """Bool ``[seq]``: which of the absolute positions ``offset .. offset+seq-1`` are in scope."""
    positions = torch.arange(offset, offset + seq, device=device)
    if scope == "prompt":
        return positions < prompt_length
    if scope == "generated":
        return positions >= prompt_length
    return torch.ones(seq, dtype=torch.bool, device=device)


def apply_edits(
    x: torch.Tensor,
    layer: int,
    edits: Sequence[Edit],
    n_heads: int,
    offset: int,
    prompt_length: int,
) -> torch.Tensor | None:
    """Edited o_proj input ``[batch, seq, heads * d_head]`` of ``layer``; None if untouched."""
    x4 = split_heads(x, n_heads)  # [batch, seq, heads, d_head]
    out, touched = x4, False
    seq = x4.shape[1]
    for edit in edits:
        if layer not in edit.by_layer:
            continue
        lo, hi = scope_bounds(edit.spec.scope, offset, seq, prompt_length)
        if lo >= hi:
            continue  # e.g. a generated-only edit during the prompt pass: nothing to do
        mask, operand = _layer_tensors(edit, layer, x4)  # [1, 1, heads, 1]
        whole = (lo, hi) == (0, seq) and edit.rows is None
        if whole and edit.spec.kind in FAST:  # operand is already neutral outside the heads
            out = FAST[edit.spec.kind](out, operand)
            touched = True
            continue
        if (lo, hi) != (0, seq):
            positions = torch.zeros(1, seq, 1, 1, dtype=torch.bool, device=x4.device)
            positions[:, lo:hi] = True
            mask = mask & positions  # [1, seq, heads, 1]
        if edit.rows is not None:
            mask = mask & edit.rows.to(x4.device).view(-1, 1, 1, 1)  # [batch, ., heads, 1]
        out = KINDS[edit.spec.kind](out, mask, operand)
        touched = True
    return out.reshape(x.shape) if touched else None


# --------------------------------------------------------------------------- hooking


def decoder_of(model: Any) -> Any:
    """The language model whose ``.layers`` hold the decoder layers (``get_decoder()``)."""
    return model.get_decoder()


class PositionTracker:
    """Reads the KV-cache length each time the decoder runs: the absolute offset of its inputs.

    ``prompt_length`` given: fixed. Not given: every forward that starts at offset 0 sets it to that
    forward's sequence length (the prompt pass of ``generate``).
    """

    def __init__(self, prompt_length: int | None) -> None:
        self.fixed = prompt_length
        self.prompt_length = prompt_length if prompt_length is not None else 0
        self.offset = 0

    def hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        cache = kwargs.get("past_key_values")
        if cache is None:  # transformers >= 5.24 passes the decoder's cache as ``cache``
            cache = kwargs.get("cache")
        self.offset = int(cache.get_seq_length()) if cache is not None else 0
        if self.fixed is None and self.offset == 0:
            embeds = kwargs.get("inputs_embeds")
            ids = kwargs.get("input_ids", args[0] if args else None)
            source = embeds if embeds is not None else ids
            if source is not None:
                self.prompt_length = int(source.shape[1])


@contextlib.contextmanager
def intervene(
    model: Any, edits: Sequence[Edit], *, prompt_length: int | None = None
) -> Iterator[PositionTracker]:
    """Apply ``edits`` to ``model`` (transformers LM or VLM) inside the block; hooks always removed.

    Args:
        model: the model; ``model.get_decoder().layers[i].self_attn.o_proj`` are hooked.
        edits: compiled interventions (see :func:`compile_edit`).
        prompt_length: padded prompt length for the scope; None learns it from each prompt pass.
    """
    decoder = decoder_of(model)
    o_projs = [layer.self_attn.o_proj for layer in decoder.layers]
    n_heads = int(model.config.get_text_config().num_attention_heads)
    layers = sorted({layer for edit in edits for layer in edit.by_layer})
    for layer in layers:
        if not 0 <= layer < len(o_projs):
            raise UsageError(f"intervention on layer {layer}, but the model has {len(o_projs)}")
    tracker = PositionTracker(prompt_length)

    def fn(layer: int, x: torch.Tensor) -> torch.Tensor | None:
        return apply_edits(x, layer, edits, n_heads, tracker.offset, tracker.prompt_length)

    handle = decoder.register_forward_pre_hook(tracker.hook, with_kwargs=True)
    try:
        with o_proj_pre_hooks(o_projs, fn, layers):
            yield tracker
    finally:
        handle.remove()


# --------------------------------------------------------------------------- tensors for specs


def gather_heads(acts: torch.Tensor, heads: Sequence[HeadId]) -> torch.Tensor:
    """``[items, layers, heads, d_head]`` -> ``[items, k, d_head]`` for the given heads."""
    layers = torch.tensor([h.layer for h in heads], dtype=torch.long)
    index = torch.tensor([h.head for h in heads], dtype=torch.long)
    return acts[:, layers, index]


def patch_values(
    acts: torch.Tensor,
    donor: torch.Tensor,
    heads: Sequence[HeadId],
    mode: Literal["random", "mean"],
    rng: np.random.Generator,
) -> torch.Tensor:
    """Replacement slices ``[k, d_head]`` from the donor items' activations.

    Args:
        acts: captured activations ``[items, layers, heads, d_head]``.
        donor: bool ``[items]``, the items of the donor function.
        mode: ``random``: one donor item drawn with ``rng``; ``mean``: the donor mean.
    """
    chosen = gather_heads(acts[donor], heads).float()  # [n_donor, k, d_head]
    if chosen.shape[0] == 0:
        raise UsageError("activation patching: the donor function has no captured items")
    if mode == "mean":
        return chosen.mean(dim=0)
    return chosen[int(rng.integers(chosen.shape[0]))]


def steering_directions(
    acts: torch.Tensor, correct: torch.Tensor, heads: Sequence[HeadId], *, unit: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mass-mean directions ``[k, d_head]`` (correct minus incorrect) and sigmas ``[k]``.

    ``sigma`` is the std (ddof=1) of all items' activations projected on the unit direction, as in
    ITI; with ``unit=False`` the raw difference of means is returned (CogVision's possible variant).
    """
    x = gather_heads(acts, heads).float()  # [items, k, d_head]
    if bool(correct.all()) or not bool(correct.any()):
        raise UsageError("steering needs both correct and incorrect items")
    raw = x[correct].mean(dim=0) - x[~correct].mean(dim=0)  # [k, d_head]
    unit_dir = raw / raw.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    sigma = torch.einsum("nkd,kd->nk", x, unit_dir).std(dim=0)  # [k]
    return (unit_dir if unit else raw), sigma


def compile_edit(
    spec: InterventionSpec,
    *,
    acts: torch.Tensor | None = None,
    donor: torch.Tensor | None = None,
    correct: torch.Tensor | None = None,
    rng: np.random.Generator | None = None,
    rows: torch.Tensor | None = None,
) -> Edit:
    """Compute the tensors a spec needs from captured activations and return the hookable edit."""
    heads = spec.head_ids
    values = None
    if spec.kind in {"patch_random", "patch_mean"}:
        if acts is None or donor is None:
            raise UsageError(f"{spec.kind} needs captured activations and a donor mask")
        if spec.kind == "patch_random" and rng is None:
            rng = np.random.default_rng(spec.seed)
        mode: Literal["random", "mean"] = "random" if spec.kind == "patch_random" else "mean"
        values = patch_values(acts, donor, heads, mode, rng or np.random.default_rng(0))
    elif spec.kind == "steer":
        if acts is None or correct is None:
            raise UsageError("steer needs captured activations and correctness labels")
        direction, sigma = steering_directions(acts, correct, heads, unit=spec.unit_direction)
        values = spec.alpha * sigma[:, None] * direction  # [k, d_head]
    return Edit(spec=spec, values=values, rows=rows)
