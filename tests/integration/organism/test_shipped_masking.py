"""Masking the shipped organism's selected functional heads still hurts their function as recorded
in benchmarks/organism.md (``masking_record.json`` holds the recorded numbers and heads)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cogvision.harness.adapters import adapter_for
from cogvision.harness.loading import load_model
from cogvision.organism import data as od
from cogvision.organism.evaluate import evaluate_items, evaluate_masked, function_items

SHIPPED = Path(__file__).resolve().parents[3] / "models" / "organism-cogvision"
RECORD = json.loads((SHIPPED / "masking_record.json").read_text())


@pytest.mark.parametrize("entry", RECORD["checks"],
                         ids=lambda e: f"{e['function']}, {e.get('selection', 'function probe')}")
def test_functional_masking_effect_as_recorded(entry: dict) -> None:  # type: ignore[type-arg]
    import torch

    torch.set_num_threads(1)
    model, processor = load_model(SHIPPED, dtype="float32")
    adapter = adapter_for(model, processor)
    n_scenes = entry.get("fresh_n", RECORD["fresh_n"])  # a smaller effect is checked on more
    seed = entry.get("fresh_seed", RECORD["fresh_seed"])
    pool = od.build_pool("cogvision", n_scenes, seed, od.organism_scenes())
    items = function_items(pool.items, entry["function"])
    base = evaluate_items(adapter, items)["overall"]
    masked = evaluate_masked(adapter, items, entry["heads"], epsilon=RECORD["epsilon"])["overall"]
    n = base["n"]
    assert n >= 15
    drop = base["accuracy"] - masked["accuracy"]
    recorded_drop = (entry["baseline"] - entry["functional"]) / 100
    recorded_random_drop = (entry["baseline"] - entry["random_mean"]) / 100
    # 3 standard errors of a difference of two accuracies on n fresh items (recorded rates).
    b, f = entry["baseline"] / 100, entry["functional"] / 100
    tolerance = 3 * math.sqrt((b * (1 - b) + f * (1 - f)) / n) + entry["random_std"] / 100
    assert drop >= recorded_drop - tolerance, (drop, entry)
    assert drop > recorded_random_drop + entry["random_std"] / 100, (drop, entry)
