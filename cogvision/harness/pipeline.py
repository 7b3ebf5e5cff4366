"""Run-level entry points of the probing steps: resolve inputs, load the model, call the step.

The CLI (``cogvision probe ...``) is a thin shell over these; Python callers get the same behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cogvision.harness.capture import CaptureOptions, CaptureResult


class CaptureRunConfig(BaseModel):
    """Everything ``cogvision probe capture`` needs (defaults < YAML < flags < -C)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(description="Model folder or Hub id.")
    data: str = Field(description="decompositions.jsonl (or its folder) or a dataset folder.")
    out: str
    splits: list[str] = Field(default_factory=lambda: ["train"])
    test_fraction: float = 0.2
    split_seed: int = 0
    limit: int | None = Field(default=None, ge=1, description="Use the first N main items.")
    dtype: str = "auto"
    device_map: str | None = None
    revision: str | None = None
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads.")
    selector: str = "heuristic"
    selector_model: str | None = None
    selector_base_url: str | None = None
    capture: CaptureOptions = Field(default_factory=CaptureOptions)


def count_subquestions(items: list[Any]) -> int:
    return sum(len(item.subs) for item in items)


def run_capture(config: CaptureRunConfig, *, on_start: Callable[[int], None] | None = None,
                on_item: Callable[[int, bool], None] | None = None) -> CaptureResult:
    """Load the data and the model and capture activations into ``config.out``."""
    import torch

    from cogvision.harness.adapters import adapter_for
    from cogvision.harness.capture import capture
    from cogvision.harness.data import load_items
    from cogvision.harness.loading import load_model
    from cogvision.harness.tokensel import make_selector

    if config.threads:
        torch.set_num_threads(config.threads)
    items = load_items(config.data, splits=config.splits, test_fraction=config.test_fraction,
                       seed=config.split_seed)
    if config.limit:
        items = items[: config.limit]
    options: dict[str, Any] = {}
    if config.selector == "llm":
        options = {"model": config.selector_model or "gpt-4.1",
                   "base_url": config.selector_base_url}
    selector = make_selector(config.selector, **options)
    model, processor = load_model(config.model, dtype=config.dtype,
                                  device_map=config.device_map, revision=config.revision)
    adapter = adapter_for(model, processor)
    if on_start:
        on_start(count_subquestions(items))
    data = Path(config.data)
    inputs = [data / "decompositions.jsonl" if data.is_dir() else data]
    return capture(adapter, items, config.out, config.capture, selector=selector,
                   config=config.model_dump(), inputs=inputs, on_item=on_item)
