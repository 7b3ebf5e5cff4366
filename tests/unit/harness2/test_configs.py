"""The reference configs for the papers' models validate against the eval config schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cogvision.harness.eval_config import EvalConfig

CONFIGS = Path(__file__).resolve().parents[3] / "benchmarks" / "configs"
NAMES = [
    "qwen2_5_vl_3b",
    "qwen2_5_vl_7b",
    "internvl3_2b",
    "internvl3_8b",
    "gemma3n_e2b",
    "gemma3n_e4b",
]


@pytest.mark.parametrize("name", NAMES)
def test_reference_config_validates(name: str) -> None:
    data = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    config = EvalConfig.model_validate({**data, "out": "work/x"})
    assert config.experiments.top_fraction == 0.1 and config.experiments.seeds == 5
    assert config.scoring.primary in config.scoring.metrics
    assert "NEEDS a GPU" in (CONFIGS / f"{name}.yaml").read_text()


def test_published_numbers_are_readable() -> None:
    published = yaml.safe_load((CONFIGS / "published.yaml").read_text())
    cell = published["cogvision_table1"]["qwen2_5_vl_3b"]["Math Reasoning"]
    assert cell == {"random": 65.85, "functional": 0.0}
