"""Fixtures of the organism's unit tests: a small pool of synthetic scenes and a small organism."""

from __future__ import annotations

import pytest

from cogvision.organism import data as od
from cogvision.organism.config import TrainConfig
from cogvision.organism.model import OrganismSpec, build_organism
from cogvision.organism.train import corpus_texts

SMALL = OrganismSpec(d_model=32, n_layers=2, n_heads=4, n_kv_heads=4, intermediate=64,
                     vision_hidden=32, vision_layers=1, vision_heads=2)


@pytest.fixture(scope="package")
def pool() -> od.Pool:
    return od.build_pool("cogvision", 24, 7, od.organism_scenes())


@pytest.fixture(scope="package")
def organism(pool: od.Pool):  # type: ignore[no-untyped-def]
    return build_organism(SMALL, corpus_texts(TrainConfig(out="unused"), [pool]), seed=0)
