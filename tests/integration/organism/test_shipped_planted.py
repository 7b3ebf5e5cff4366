"""The shipped organism's planted heads still do what they were trained to do, on fresh scenes: L1H0
attends from each answer to the object its question names, L2H0 to the objects reached through
the chain of steps (``-C lookup_weight`` / ``-C chain_weight``; benchmarks/organism.md, "Planted
heads"). A known answer for the harness: these are the heads whose job is known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cogvision.harness.loading import load_model
from cogvision.organism import data as od
from cogvision.organism import lookup as ol
from cogvision.organism import referents
from cogvision.organism.evaluate import MANIFEST_NAME

SHIPPED = Path(__file__).resolve().parents[3] / "models" / "organism-cogvision"
FRESH_SEED, FRESH_N = 10_004, 30


@pytest.fixture(scope="module")
def attention() -> dict[tuple[int, int], dict[int, float]]:
    """Per (kind, layer): each head's hit rate (its keys get the most attention) on the fresh
    sample's look-ups of that kind."""
    torch.set_num_threads(1)
    model, processor = load_model(SHIPPED, dtype="float32")
    model.eval()
    pool = od.build_pool("cogvision", FRESH_N, FRESH_SEED, od.organism_scenes())
    seqs = od.encode_pool(processor, pool, n_image=model.config.image_seq_length, lookups=True)
    batch = od.collate(seqs, pool, model.config.text_config.pad_token_id, pack=400)
    rates: dict[tuple[int, int], dict[int, float]] = {}
    with torch.no_grad():
        for layer in (1, 2):
            with ol.capture_attention_inputs(model, layer) as seen:
                model(**batch.model_inputs())
            attn = ol.attention_module(model, layer)
            for kind in (referents.NAMED, referents.CHAINED):
                lookups = ol.of_kind(batch.lookups, kind)
                assert lookups is not None and len(lookups) >= 50
                rates[kind, layer] = {
                    head: ol.lookup_loss(model, seen[-1], layer, head, lookups)[1]
                    for head in range(attn.config.num_attention_heads)}
    return rates


def test_the_recipe_planted_both_heads() -> None:
    config = json.loads((SHIPPED / MANIFEST_NAME).read_text())["config"]
    assert config["lookup_weight"] > 0 and config["chain_weight"] > 0
    assert (config["lookup_layer"], config["lookup_head"]) == (1, 0)
    assert (config["chain_layer"], config["chain_head"]) == (2, 0)


def test_named_lookup_head_finds_the_named_object(attention) -> None:  # type: ignore[no-untyped-def]
    rates = attention[referents.NAMED, 1]  # measured: 1.00, the other heads of L1 at most 0.51
    assert rates[0] >= 0.95, rates
    assert max(r for h, r in rates.items() if h != 0) <= rates[0] - 0.25, rates


def test_chain_head_finds_the_objects_reached_through_the_steps(attention) -> None:  # type: ignore[no-untyped-def]
    rates = attention[referents.CHAINED, 2]  # measured: 0.985, the other heads of L2 at most 0.48
    assert rates[0] >= 0.95, rates
    assert max(r for h, r in rates.items() if h != 0) <= rates[0] - 0.25, rates
