"""The SHIPPED organism (models/organism-cogvision) still answers as its manifest records, on a
fresh synthetic sample drawn from a seed no training pool used (pools use seeds < 10)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cogvision.organism.evaluate import MANIFEST_NAME, evaluate_model

SHIPPED = Path(__file__).resolve().parents[3] / "models" / "organism-cogvision"
FRESH_SEED, FRESH_N = 10_001, 40


@pytest.fixture(scope="module")
def recorded() -> dict:  # type: ignore[type-arg]
    return json.loads((SHIPPED / MANIFEST_NAME).read_text())["extra"]["held_out"]


@pytest.fixture(scope="module")
def fresh() -> dict:  # type: ignore[type-arg]
    return evaluate_model(SHIPPED, n=FRESH_N, seed=FRESH_SEED, threads=1)


def floor(p: float, n: int) -> float:
    """Recorded accuracy minus 3 binomial standard errors of the fresh sample, minus 5 points."""
    return p - 3 * math.sqrt(max(p * (1 - p), 0.01) / n) - 0.05


def test_overall_accuracy_as_recorded(recorded: dict, fresh: dict) -> None:  # type: ignore[type-arg]
    n = fresh["overall"]["n"]
    assert n > 100
    assert fresh["overall"]["accuracy"] >= floor(recorded["overall"]["accuracy"], n)


def test_per_function_accuracy_as_recorded(recorded: dict, fresh: dict) -> None:  # type: ignore[type-arg]
    checked = 0
    for function, row in fresh["per_function"].items():
        if row["n"] < 10:
            continue
        checked += 1
        expected = recorded["per_function"][function]["accuracy"]
        assert row["accuracy"] >= floor(expected, row["n"]), (function, row, expected)
    assert checked >= 4


def test_the_finetune_config_is_the_shipped_recipe() -> None:
    """benchmarks/configs/organism_count_finetune.yaml + the manifest's flags give exactly the
    config the shipped weights were trained with (their last stage, from the defaults' model)."""
    from cogvision.config import resolve
    from cogvision.organism.config import TrainConfig

    manifest = json.loads((SHIPPED / MANIFEST_NAME).read_text())
    shipped = manifest["config"]
    config = resolve(TrainConfig, path=SHIPPED.parents[1] / "benchmarks" / "configs" /
                     "organism_count_finetune.yaml",
                     flags={k: shipped[k] for k in ("out", "seed", "minutes", "init_from")})
    assert config.model_dump() == shipped
    assert config.members_weight > 0 and config.init_from
    assert manifest["counts"]["steps_done"] == config.steps  # not stopped by the time cap
    assert len(manifest["inputs"]) == 1  # the starting weights, by digest
