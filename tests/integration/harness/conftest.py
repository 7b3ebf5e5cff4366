"""Fixtures for harness integration tests: tiny random models of every family, hand-made items."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache

import numpy as np
import pytest
import torch
from PIL import Image

from cogvision.harness.adapters import ModelAdapter, adapter_for
from cogvision.harness.data import MainItem, SubItem
from cogvision.harness.tiny import FAMILIES, build_tiny

ALL_FAMILIES = FAMILIES


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    # The 2-core machine is shared; tiny ops slow down badly under thread contention.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@cache
def tiny_adapter(family: str, seed: int = 0) -> ModelAdapter:
    model, processor = build_tiny(family, seed=seed)
    return adapter_for(model, processor)


def make_items(n_main: int, *, functions: Sequence[str] = ("Math Reasoning", "Inference"),
               subs_per_main: int = 3, seed: int = 0, test_every: int = 0,
               same_wording: bool = True) -> list[MainItem]:
    """Main items with random 28x28 images; functions drawn at random; every ``test_every``-th
    main item in the test split."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_main):
        split = "test" if test_every and i % test_every == test_every - 1 else "train"
        pixels = rng.integers(0, 255, (28, 28, 3), dtype=np.uint8)
        subs = []
        for j in range(subs_per_main):
            f = str(functions[int(rng.integers(len(functions)))])
            text = f"what is shown in part {j}?" if same_wording else f"{f} question {j}?"
            context = tuple((f"earlier step {k}?", f"a{k}") for k in range(j))
            subs.append(SubItem(f"m{i}-s{j}", f"m{i}", split, j, text, "red", f, context))
        items.append(MainItem(f"m{i}", split, f"what is in picture {i}?", tuple(subs),
                              lambda pixels=pixels: Image.fromarray(pixels)))
    return items
