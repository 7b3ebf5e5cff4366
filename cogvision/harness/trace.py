"""Run sub-questions through a model, answering greedily, and record the o_proj inputs of every
layer at the last prompt token and at every answer token.

Two paths give the same result (a test checks it):

- ``trace_full``: each prompt (image + main question + context + sub-question) is run from scratch
  with ``generate`` on a left-padded batch.
- ``trace_shared_prefix``: the sub-questions of one main item share the image and the main question
  (which dominate the prompt); that prefix is run once and its KV cache reused for each suffix
  (PLATFORM.md: shallow cache copies, positions from the cache length, explicit Qwen mRoPE
  positions, suffixes right-padded in one batch). Greedy decoding then continues from the cache.

In both, answer token ``k`` is fed back (and recorded) at decoding step ``k``; generation runs one
step past ``max_new_tokens`` so the last answer token is always fed.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from cogvision.harness.adapters import ModelAdapter
from cogvision.harness.answer import generate_greedy
from cogvision.harness.hooks import o_proj_pre_hooks

log = logging.getLogger(__name__)


@dataclass
class Trace:
    """Recorded activations of a batch of sub-questions.

    Attributes:
        prompt: [batch, layers, heads * d_head] at the last prompt token.
        answer: [batch, steps, layers, heads * d_head] at answer tokens 1..steps.
        tokens: [batch, steps] generated token ids (answer tokens first, then eos/anything).
    """

    prompt: torch.Tensor
    answer: torch.Tensor
    tokens: torch.Tensor


class StepRecorder:
    """A pre-hook function recording one position per row per forward call, for every layer.

    The first call of a forward (layer 0) opens a new step. ``index`` picks the position of each row
    in a multi-token call ([batch] positions; default: the last position).
    """

    def __init__(self, n_layers: int) -> None:
        self.n_layers = n_layers
        self.steps: list[list[torch.Tensor]] = []
        self.index: torch.Tensor | None = None
        self.enabled = True

    def __call__(self, layer: int, x: torch.Tensor) -> None:  # x: [batch, seq, heads * d_head]
        if not self.enabled:
            return None
        if layer == 0:
            self.steps.append([])
        if x.shape[1] > 1 and self.index is not None:
            rows = torch.arange(x.shape[0], device=x.device)
            picked = x[rows, self.index.to(x.device)]
        else:
            picked = x[:, -1]
        self.steps[-1].append(picked.detach().float().clone())  # [batch, heads * d_head]
        return None

    def stacked(self) -> torch.Tensor:
        """[batch, steps, layers, heads * d_head]"""
        return torch.stack([torch.stack(step, dim=1) for step in self.steps], dim=1)


def _trace_from(recorder: StepRecorder, tokens: torch.Tensor, max_new_tokens: int) -> Trace:
    acts = recorder.stacked()  # [batch, 1 + fed steps, layers, hd]
    answer = acts[:, 1 : 1 + max_new_tokens]
    return Trace(prompt=acts[:, 0], answer=answer, tokens=tokens[:, :max_new_tokens])


@torch.no_grad()
def trace_full(adapter: ModelAdapter, images: Sequence[Image.Image | None], texts: Sequence[str],
               max_new_tokens: int) -> Trace:
    """Trace templated ``texts`` (with their images) from scratch, one left-padded batch."""
    inputs = adapter.encode(texts, images)
    recorder = StepRecorder(adapter.n_layers)
    with o_proj_pre_hooks(adapter.o_projs(), recorder):
        tokens = generate_greedy(adapter, inputs, max_new_tokens + 1)
    return _trace_from(recorder, tokens, max_new_tokens)


# --------------------------------------------------------------------------- shared prefix


def copy_cache(cache: Any, batch: int = 1) -> Any:
    """A copy of a KV cache that can grow independently, repeated ``batch`` times along batch.

    A shallow copy of the cache and each layer suffices: the cache replaces its tensors
    (``torch.cat``) rather than writing into them.
    """
    new = copy.copy(cache)
    new.layers = [copy.copy(layer) for layer in cache.layers]
    if batch > 1:
        new.batch_repeat_interleave(batch)
    return new


@dataclass
class Prefix:
    """A computed shared prefix: its ids, KV cache and (Qwen) rope delta."""

    ids: torch.Tensor  # [1, P]
    cache: Any
    rope_delta: torch.Tensor | None  # [1, 1] or None


class PrefixMismatch(ValueError):
    """The full prompt does not tokenize to the prefix followed by a suffix."""


@torch.no_grad()
def compute_prefix(adapter: ModelAdapter, text: str, image: Image.Image | None) -> Prefix:
    """Run the shared prefix once (image included) and keep its cache."""
    inputs = adapter.encode([text], [image])
    out = adapter.model(**inputs, use_cache=True)
    delta = None
    if adapter.spec.mrope and image is None:
        delta = torch.zeros(1, 1, dtype=torch.long, device=adapter.device)  # plain text positions
    elif adapter.spec.mrope:
        # Read right after this prefix (recomputed for a fresh cache); it changes once another
        # image has run, and a text-only prompt leaves the previous image's value behind.
        delta = adapter.model.model.rope_deltas.detach().clone()
    return Prefix(inputs["input_ids"], out.past_key_values, delta)


def suffix_ids(adapter: ModelAdapter, prefix_text: str, texts: Sequence[str]) -> list[torch.Tensor]:
    """Token ids after the prefix for each full templated text ([S_i] each).

    Tokenized as text alone (no image processing): image placeholders are special tokens, which
    split the text into independently tokenized segments, so the ids after the cut equal those of
    the processor's expanded prompt. The full text must start with the prefix's tokens.
    """
    tokenizer = adapter.tokenizer
    head = tokenizer(prefix_text)["input_ids"]
    out = []
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        if len(ids) <= len(head) or ids[: len(head)] != head:
            raise PrefixMismatch("the full prompt does not start with the prefix tokens")
        out.append(torch.tensor(ids[len(head) :], dtype=torch.long))
    return out


def _positions(adapter: ModelAdapter, prefix: Prefix, pos: torch.Tensor) -> torch.Tensor:
    """Position ids for text positions ``pos`` [batch, seq] ([3, batch, seq] for mRoPE)."""
    if prefix.rope_delta is None:
        return pos
    pos = pos + prefix.rope_delta.to(pos.device)
    return pos.unsqueeze(0).expand(3, *pos.shape)


@torch.no_grad()
def trace_shared_prefix(adapter: ModelAdapter, prefix: Prefix, suffixes: Sequence[torch.Tensor],
                        max_new_tokens: int) -> Trace:
    """Trace several suffixes of one computed prefix in one right-padded batch."""
    model, device = adapter.model, adapter.device
    n, p = len(suffixes), prefix.ids.shape[1]
    lengths = torch.tensor([len(s) for s in suffixes], device=device)
    width = int(lengths.max())
    ids = torch.full((n, width), adapter.pad_token_id, dtype=torch.long, device=device)
    mask = torch.zeros((n, p + width), dtype=torch.long, device=device)
    mask[:, :p] = 1
    for row, s in enumerate(suffixes):
        ids[row, : len(s)] = s.to(device)
        mask[row, p : p + len(s)] = 1
    cache = copy_cache(prefix.cache, n)
    pos = (p + torch.arange(width, device=device)).expand(n, width)
    recorder = StepRecorder(adapter.n_layers)
    recorder.index = lengths - 1
    rows = torch.arange(n, device=device)
    eos = torch.tensor(adapter.eos_token_ids, device=device)
    with o_proj_pre_hooks(adapter.o_projs(), recorder):
        out = model(input_ids=ids, attention_mask=mask,
                    position_ids=_positions(adapter, prefix, pos), past_key_values=cache,
                    use_cache=True)
        recorder.index = None
        nxt = out.logits[rows, lengths - 1].argmax(-1)  # [n]
        next_pos = p + lengths
        tokens, done = [], torch.zeros(n, dtype=torch.bool, device=device)
        for _ in range(max_new_tokens + 1):
            tokens.append(nxt)
            done |= torch.isin(nxt, eos)
            if bool(done.all()) or len(tokens) > max_new_tokens:
                break
            mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=device)], dim=1)
            out = model(input_ids=nxt[:, None], attention_mask=mask,
                        position_ids=_positions(adapter, prefix, next_pos[:, None]),
                        past_key_values=cache, use_cache=True)
            next_pos = next_pos + 1
            nxt = out.logits[:, -1].argmax(-1)
    return _trace_from(recorder, torch.stack(tokens, dim=1), max_new_tokens)
