"""Fixtures: the synthetic benchmark (`cogvision.sources.synth`) published into tmp, per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from cogvision.publish.build import PublishResult, publish_dataset
from cogvision.sources.synth.build import build_benchmark


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "synth"
    build_benchmark("cogvision", 40, 3, out)
    return out


@pytest.fixture(scope="module")
def published(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> PublishResult:
    out = tmp_path_factory.mktemp("pub") / "published"
    return publish_dataset([synth_dir / "decompositions.jsonl"], out, name="cogvision", seed=7,
                           test_fraction=0.25)
