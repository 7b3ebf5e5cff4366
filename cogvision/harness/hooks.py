"""Forward pre-hooks on the attention output projection (``self_attn.o_proj``).

The o_proj input is the concatenation of the per-head attention outputs,
``[batch, seq, heads * d_head]``; viewing it as ``[batch, seq, heads, d_head]`` addresses one head.
Hooks are installed by a context manager that always removes its handles, so an exception never
leaves a model modified.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

# fn(layer, x) -> replacement tensor or None (observe only); x: [batch, seq, heads * d_head]
PreHookFn = Callable[[int, torch.Tensor], torch.Tensor | None]


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``[..., heads * d_head]`` -> ``[..., heads, d_head]`` (a view)."""
    return x.view(*x.shape[:-1], n_heads, x.shape[-1] // n_heads)


def _make_hook(layer: int, fn: PreHookFn) -> Callable[..., Any]:
    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        result = fn(layer, args[0])
        if result is None:
            return None
        return (result, *args[1:])

    return hook


@contextlib.contextmanager
def o_proj_pre_hooks(
    o_projs: Iterable[nn.Module], fn: PreHookFn, layers: Iterable[int] | None = None
) -> Iterator[None]:
    """Install ``fn`` as a forward pre-hook on each o_proj (``layers`` picks which); always removed.

    Args:
        o_projs: the o_proj modules in layer order (``[adapter.o_proj(l) for l in ...]``).
        fn: called as ``fn(layer, x)``; return a tensor to replace the o_proj input, or None.
        layers: layer indices to hook (default: all).
    """
    modules = list(o_projs)
    chosen = range(len(modules)) if layers is None else list(layers)
    handles = []
    try:
        for layer in chosen:
            handles.append(modules[layer].register_forward_pre_hook(_make_hook(layer, fn)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def count_hooks(model: nn.Module) -> int:
    """Forward (pre-)hooks installed anywhere in ``model`` (some models install their own: compare
    the count before and after)."""
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())
