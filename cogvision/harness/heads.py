"""Head identifiers shared by every harness step.

``HeadId(layer, head)``, printed ``L{layer}H{head}``, flattened as ``layer * n_heads + head``
(the ITI convention)."""

from __future__ import annotations

import re
from typing import NamedTuple

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
