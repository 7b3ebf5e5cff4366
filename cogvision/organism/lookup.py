"""Supervised look-up: one decoder head is taught to attend from a question to the object it names.

Every collapsed organism run failed the same step: finding the image token of "the small red
circle" from the question's words (issue 8; ``benchmarks/organism.md``). The answer loss teaches
that look-up only through the few answer tokens that depend on it. This auxiliary loss supervises
it directly: at the token that predicts an answer (the last token before it), head ``head`` of
decoder layer ``layer`` should put its attention on the image token of the one object the question
names (``organism.referents.referent_cell``). The loss is the mean negative log of that attention
weight, computed from the layer's own query and key projections and rotary embeddings, so it is the
head's real attention (a test checks it against eager attention weights) and the trained model
stays a plain transformers model.

A second head may be taught the ``CHAINED`` look-ups (``organism.referents.step_referents``): the
objects reached through the chain of steps ("that hexagon", "the object directly below it", each
object of a listed answer), which need the context read first, so a later layer by default.

A third head may be taught the ``COUNTED`` look-ups: from a count's answer, uniform attention
over the objects counted and the sequence's first token, so the weight on that sink, 1 / (n + 1),
tells the count n (a sink weight K > 1 in the target, ``lookup_loss(sink=K)``, makes it
K / (K + n), which spaces larger counts further apart; a read-out of the count from the head's
output, ``count_readout_loss``, makes its values carry it). A fourth may be taught the
``TALLIED`` look-ups: from a count's answer, uniform attention over every image token, so its
output is the mean of the objects' values, a histogram of their features whose entries grow
linearly with each count (1 / (n + 1) crowds larger counts together).

A ``Batch.lookups`` row is ``(row, query position, key position, segment start, kind)``; the head
may attend to the keys from the segment start to the query position (causal, within one
sequence).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.nn import functional

from cogvision.harness.hooks import o_proj_pre_hooks
from cogvision.organism.data import AUX_CLASSES


def attention_module(model: Any, layer: int) -> Any:
    """Self-attention module of decoder layer ``layer`` (reached as the harness's adapters reach
    it, ``get_decoder().layers``)."""
    return model.get_decoder().layers[layer].self_attn


@contextmanager
def capture_attention_inputs(model: Any, layer: int) -> Iterator[list[dict[str, Any]]]:
    """Collect the keyword inputs (hidden states, rotary embeddings) of layer's attention."""
    seen: list[dict[str, Any]] = []
    handle = attention_module(model, layer).register_forward_pre_hook(
        lambda _m, _args, kwargs: seen.append(kwargs), with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), -1) * sin


def head_attention(attn: Any, inputs: dict[str, Any], head: int,
                   lookups: torch.Tensor) -> torch.Tensor:
    """Log attention weights [N, S] of ``head`` at each look-up's query position (keys outside
    the look-up's segment or after the query get -inf)."""
    hidden = inputs["hidden_states"]  # [R, S, d]
    # [R, S, head_dim] each; [1, S, head_dim] when the rows share positions (padded batches)
    cos, sin = (t.expand(hidden.shape[0], -1, -1) for t in inputs["position_embeddings"])
    dim = attn.head_dim
    kv = head // attn.num_key_value_groups
    q_slice, k_slice = slice(head * dim, (head + 1) * dim), slice(kv * dim, (kv + 1) * dim)
    q_bias = None if attn.q_proj.bias is None else attn.q_proj.bias[q_slice]
    k_bias = None if attn.k_proj.bias is None else attn.k_proj.bias[k_slice]
    rows, at, start = lookups[:, 0], lookups[:, 1], lookups[:, 3]
    query = functional.linear(hidden[rows, at], attn.q_proj.weight[q_slice], q_bias)
    query = _rotate(query, cos[rows, at], sin[rows, at])  # [N, dim]
    keys = _rotate(functional.linear(hidden, attn.k_proj.weight[k_slice], k_bias), cos, sin)
    scores = torch.einsum("nd,nsd->ns", query, keys[rows]) * attn.scaling
    positions = torch.arange(hidden.shape[1], device=hidden.device)
    allowed = (positions >= start[:, None]) & (positions <= at[:, None])
    return torch.log_softmax(scores.masked_fill(~allowed, float("-inf")), -1)


@contextmanager
def capture_head_outputs(model: Any, layer: int) -> Iterator[list[torch.Tensor]]:
    """Collect layer's per-head attention outputs, the input of its output projection
    ([R, S, heads * head_dim]; observed through the harness's ``o_proj_pre_hooks``)."""
    seen: list[torch.Tensor] = []
    with o_proj_pre_hooks([attention_module(model, layer).o_proj],
                          lambda _layer, x: seen.append(x)):
        yield seen


def group_queries(lookups: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Look-up rows grouped by query (the same row and query position): each row's query index
    (0..n-1) and each query's number of rows (its keys)."""
    _, query_of, keys = torch.unique(lookups[:, 0] * seq_len + lookups[:, 1],
                                     return_inverse=True, return_counts=True)
    return query_of, keys


def one_row_each(query_of: torch.Tensor, n: int) -> torch.Tensor:
    """For each of ``n`` queries, the index of one of its look-up rows (any: a query's rows share
    its row, position and attention)."""
    return torch.zeros(n, dtype=torch.long, device=query_of.device).scatter_(
        0, query_of, torch.arange(len(query_of), device=query_of.device))


def scene_histograms(aux: torch.Tensor) -> torch.Tensor:
    """Per image, the number of objects of each colour and of each shape ([B, colours + shapes];
    ``aux`` [B, P, 3] holds each patch's colour / shape / size class, 0 = empty)."""
    colours = functional.one_hot(aux[..., 0], AUX_CLASSES["colour"])[..., 1:]
    shapes = functional.one_hot(aux[..., 1], AUX_CLASSES["shape"])[..., 1:]
    return torch.cat([colours, shapes], -1).sum(1).float()


def tally_readout_loss(outputs: torch.Tensor, head: int, head_dim: int, input_ids: torch.Tensor,
                       image_token_id: int, aux: torch.Tensor, readout: torch.nn.Linear,
                       lookups: torch.Tensor) -> torch.Tensor:
    """Mean squared error of a linear read-out of the scene's colour and shape counts
    (``scene_histograms``) from ``head``'s output at each tallying query (``TALLIED`` look-up
    rows; the scene is the image the query's keys belong to)."""
    query_of, keys = group_queries(lookups, input_ids.shape[1])
    pick = one_row_each(query_of, len(keys))  # a query's rows share its row and image
    rows, query, key = lookups[pick, 0], lookups[pick, 1], lookups[pick, 2]
    rank = torch.full_like(input_ids, -1).flatten()  # each image token's index among them all
    is_image = (input_ids == image_token_id).flatten()
    rank[is_image] = torch.arange(int(is_image.sum()), device=input_ids.device)
    per_image = int(is_image.sum()) // aux.shape[0]
    image = rank[rows * input_ids.shape[1] + key] // per_image
    said = outputs[rows, query, head * head_dim: (head + 1) * head_dim]
    return functional.mse_loss(readout(said), scene_histograms(aux[image]))


def count_readout_loss(outputs: torch.Tensor, head: int, head_dim: int, readout: torch.nn.Linear,
                       lookups: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy of a linear read-out of each count's answer (the number of objects it
    counts) from ``head``'s output at the count's query (``COUNTED`` look-up rows: one per
    counted object and one to the sink, so a query with k rows counts k - 1), and the read-out's
    accuracy."""
    query_of, keys = group_queries(lookups, outputs.shape[1])
    pick = one_row_each(query_of, len(keys))
    said = outputs[lookups[pick, 0], lookups[pick, 1], head * head_dim: (head + 1) * head_dim]
    logits, gold = readout(said), keys - 1
    with torch.no_grad():
        hit = (logits.argmax(-1) == gold).float().mean().item()
    return functional.cross_entropy(logits, gold), hit


def of_kind(lookups: torch.Tensor | None, *kinds: int) -> torch.Tensor | None:
    """The look-up rows of the given kinds (None if there are none)."""
    if lookups is None:
        return None
    rows = lookups[torch.isin(lookups[:, 4], torch.tensor(kinds, device=lookups.device))]
    return rows if len(rows) else None


def lookup_loss(model: Any, inputs: dict[str, Any], layer: int, head: int,
                lookups: torch.Tensor, sink: float = 1.0) -> tuple[torch.Tensor, float]:
    """Mean over queries of the cross-entropy between the head's attention and the uniform
    distribution over that query's keys (rows with the same row and query position; one key:
    -log attention on the named object's image token), and the share of queries whose keys are
    their largest attention weights (one key: the argmax). With ``sink`` != 1, a key at the
    segment's first token (the ``COUNTED`` sink) weighs ``sink`` times as much as each other key
    in the target, so the sink's share is sink / (sink + n) for a count of n."""
    logp = head_attention(attention_module(model, layer), inputs, head, lookups)
    target = lookups[:, 2]
    picked = logp.gather(1, target[:, None])[:, 0]
    query, keys = group_queries(lookups, logp.shape[1])
    if sink == 1:
        loss = -(picked / keys[query]).sum() / len(keys)
    else:
        weight = torch.where(target == lookups[:, 3], sink, 1.0)
        total = torch.zeros(len(keys), device=logp.device).index_add_(0, query, weight)
        loss = -(picked * weight / total[query]).sum() / len(keys)
    with torch.no_grad():
        hit = keys_on_top(logp, query, target, len(keys)).float().mean().item()
    return loss, hit


def keys_on_top(logp: torch.Tensor, query: torch.Tensor, target: torch.Tensor, n: int
                ) -> torch.Tensor:
    """Per query (0..n-1; look-up row i belongs to query ``query[i]`` and has key ``target[i]``):
    whether every key of the query gets more attention than every other position."""
    is_key = torch.zeros(n, logp.shape[1], dtype=torch.bool, device=logp.device)
    is_key[query, target] = True
    each = logp[one_row_each(query, n)]  # the rows of one query share its attention
    weakest_key = each.masked_fill(~is_key, float("inf")).amin(-1)
    return weakest_key > each.masked_fill(is_key, float("-inf")).amax(-1)
