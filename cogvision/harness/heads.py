"""Head identifiers shared by every harness step.

``HeadId(layer, head)``, printed ``L{layer}H{head}``, flattened as ``layer * n_heads + head``
(the ITI convention). Random control sets are drawn here: from every head not selected (``any``, the
papers' control) or layer by layer (``layer_matched``: as many heads from each layer as were
selected there, so a control cannot differ from the selection just by hitting another layer's hub
heads)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np

from cogvision.errors import UsageError

_PATTERN = re.compile(r"^L(\d+)H(\d+)$")


class HeadId(NamedTuple):
    """One query head of one decoder layer."""

    layer: int
    head: int

    def __str__(self) -> str:
        return f"L{self.layer}H{self.head}"

    def flat(self, n_heads: int) -> int:
        """Index in a flattened ``[layers * heads]`` vector."""
        if not 0 <= self.head < n_heads:
            raise ValueError(f"head {self.head} out of range for {n_heads} heads")
        return self.layer * n_heads + self.head

    @classmethod
    def from_flat(cls, index: int, n_heads: int) -> HeadId:
        """Inverse of :meth:`flat`."""
        if index < 0:
            raise ValueError(f"flat head index must be >= 0, got {index}")
        return cls(index // n_heads, index % n_heads)

    @classmethod
    def parse(cls, text: str) -> HeadId:
        """Read ``L{layer}H{head}``."""
        match = _PATTERN.match(text.strip())
        if match is None:
            raise ValueError(f"not a head id (expected L<layer>H<head>): {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))


def all_heads(n_layers: int, n_heads: int) -> list[HeadId]:
    """Every head in flat order."""
    return [HeadId(layer, head) for layer in range(n_layers) for head in range(n_heads)]


RandomControl = Literal["any", "layer_matched"]


def random_heads(
    n: int, exclude: Sequence[HeadId], n_layers: int, n_heads: int, rng: np.random.Generator
) -> list[HeadId]:
    """``n`` heads drawn without replacement from all heads except ``exclude``, in flat order."""
    pool = [h for h in all_heads(n_layers, n_heads) if h not in set(exclude)]
    if n > len(pool):
        raise UsageError(f"cannot draw {n} random heads from {len(pool)} non-functional heads")
    picked = rng.choice(len(pool), size=n, replace=False)
    return sorted(pool[int(i)] for i in picked)


def layer_matched_heads(
    selected: Sequence[HeadId], n_layers: int, n_heads: int, rng: np.random.Generator
) -> list[HeadId]:
    """For each layer, as many non-selected heads of that layer as ``selected`` has there; a
    layer without enough other heads gives what it has and the rest is drawn from any layer."""
    taken = set(selected)
    out: list[HeadId] = []
    short = 0
    for layer, count in sorted(Counter(h.layer for h in selected).items()):
        pool = [HeadId(layer, h) for h in range(n_heads) if HeadId(layer, h) not in taken]
        k = min(count, len(pool))
        out.extend(pool[int(i)] for i in rng.choice(len(pool), size=k, replace=False))
        short += count - k
    if short:
        out.extend(random_heads(short, [*taken, *out], n_layers, n_heads, rng))
    return sorted(out)


def control_heads(
    kind: RandomControl, selected: Sequence[HeadId], n_layers: int, n_heads: int,
    rng: np.random.Generator,
) -> list[HeadId]:
    """The random control set for ``selected``."""
    if kind == "layer_matched":
        return layer_matched_heads(selected, n_layers, n_heads, rng)
    return random_heads(len(selected), selected, n_layers, n_heads, rng)
