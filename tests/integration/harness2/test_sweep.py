"""The sweep engine: prompt-cache reuse gives the same answers as generating from scratch; the
generation cache resumes a run without decoding again."""

from __future__ import annotations

from pathlib import Path

import pytest

from cogvision.harness.adapters import adapter_for
from cogvision.harness.data import load_items
from cogvision.harness.experiments import Condition
from cogvision.harness.heads import HeadId
from cogvision.harness.intervene import compile_edit, spec_for
from cogvision.harness.prompts import PromptOptions
from cogvision.harness.sweep import GenerationCache, Sweeper, batches, build_work, reusable
from cogvision.harness.tiny import build_tiny


@pytest.fixture(scope="module", params=["qwen2_5_vl", "llava"])
def setup(request: pytest.FixtureRequest, synth_dir: Path):
    model, processor = build_tiny(request.param, seed=3, n_layers=3, image_tokens=16)
    adapter = adapter_for(model, processor)
    items = load_items(synth_dir, splits=["test"])
    work = build_work(adapter, items, PromptOptions())[:6]
    every = [HeadId(layer, h) for layer in range(adapter.n_layers) for h in range(adapter.n_heads)]
    conditions = [Condition("baseline", (), ("*",))]
    for i, eps in enumerate((0.0, 0.5)):
        spec = spec_for("scale", every[i::2], epsilon=eps, scope="generated")
        conditions.append(Condition(f"mask{i}", (spec,), ("*",)))
    conditions.append(
        Condition("prompt", (spec_for("scale", every[::3], epsilon=0.0, scope="all"),), ("*",))
    )
    return adapter, work, conditions


def _edits(condition: Condition):
    return [compile_edit(spec) for spec in condition.specs]


def _sweep(adapter, work, conditions, cache, reuse: bool) -> Sweeper:
    sweeper = Sweeper(
        adapter, cache, fingerprint="fp", edits_for=_edits, max_new_tokens=6, reuse=reuse
    )
    for batch in batches(work, 4):
        sweeper.run_batch(batch, conditions)
    return sweeper


def test_reuse_matches_generation_from_scratch(setup) -> None:
    adapter, work, conditions = setup
    assert [reusable(c) for c in conditions] == [True, True, True, False]
    fresh, reused = GenerationCache(None), GenerationCache(None)
    _sweep(adapter, work, conditions, fresh, reuse=False)
    _sweep(adapter, work, conditions, reused, reuse=True)
    assert fresh.data == reused.data and len(fresh.data) == len(work) * len(conditions)
    texts = {c.name: [fresh[w.key("fp", c, 6)] for w in work] for c in conditions}
    assert texts["mask0"] != texts["baseline"]  # the interventions really act


def test_cache_resumes_without_decoding(setup, tmp_path: Path) -> None:
    adapter, work, conditions = setup
    path = tmp_path / "generations.jsonl"
    first = _sweep(adapter, work[:4], conditions, GenerationCache(path), reuse=True)
    assert first.generated == 4 * len(conditions)
    with path.open("a") as fh:
        fh.write('{"key": "torn')  # a killed run leaves a torn last line
    resumed_cache = GenerationCache(path)
    again = _sweep(adapter, work, conditions, resumed_cache, reuse=True)
    assert again.generated == (len(work) - 4) * len(conditions)
    full = _sweep(adapter, work, conditions, GenerationCache(None), reuse=True)
    assert resumed_cache.data == {k: v for k, v in resumed_cache.data.items()}
    assert {k: resumed_cache[k] for k in full.cache.data} == full.cache.data
