"""Intervention invariants on real transformers models built from configs (tiny, random weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cogvision.harness.adapters import adapter_for
from cogvision.harness.fhi import FHIConfig, measure_visual_ratios, select_fhi_heads
from cogvision.harness.heads import HeadId
from cogvision.harness.hooks import count_hooks, o_proj_pre_hooks
from cogvision.harness.intervene import compile_edit, intervene, spec_for
from cogvision.harness.tiny import build_tiny

FAMILIES = ["qwen2_5_vl", "llava"]


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request: pytest.FixtureRequest):
    model, processor = build_tiny(request.param, seed=0, n_layers=3)
    adapter = adapter_for(model, processor)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (28, 28, 3), dtype=np.uint8)) for _ in range(2)]
    inputs = adapter.build_inputs(images, ["what colour is the cube?", "how many?"])
    return adapter, inputs


def _logits(adapter, inputs) -> torch.Tensor:
    with torch.no_grad():
        return adapter.model(**inputs).logits


def _capture_layer(adapter, inputs, layer: int, edits) -> torch.Tensor:
    """The o_proj input of ``layer`` as o_proj sees it (after the intervention hooks)."""
    seen: list[torch.Tensor] = []

    def keep(_: int, x: torch.Tensor) -> None:
        seen.append(x.detach().clone())

    with intervene(adapter.model, edits), o_proj_pre_hooks(adapter.o_projs(), keep, [layer]):
        _logits(adapter, inputs)
    return seen[0].view(*seen[0].shape[:2], adapter.n_heads, adapter.d_head)


def _random_acts(adapter, n: int = 6) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    shape = (n, adapter.n_layers, adapter.n_heads, adapter.d_head)
    return torch.randn(shape, generator=gen)


def test_identity_settings_leave_logits_bit_identical(tiny) -> None:
    adapter, inputs = tiny
    heads = [HeadId(layer, head) for layer in range(adapter.n_layers) for head in (0, 2)]
    acts = _random_acts(adapter)
    correct = torch.tensor([True, False] * 3)
    edits = [
        compile_edit(spec_for("scale", heads, epsilon=1.0)),
        compile_edit(spec_for("gain", heads, gain=1.0)),
        compile_edit(spec_for("steer", heads, alpha=0.0), acts=acts, correct=correct),
    ]
    baseline = _logits(adapter, inputs)
    own_hooks = count_hooks(adapter.model)  # some models carry hooks of their own
    with intervene(adapter.model, edits):
        assert count_hooks(adapter.model) == own_hooks + adapter.n_layers + 1  # + tracker
        assert torch.equal(_logits(adapter, inputs), baseline)
    with intervene(adapter.model, [compile_edit(spec_for("scale", heads[:1]))]):
        assert not torch.equal(_logits(adapter, inputs), baseline)  # masking does change them
    assert count_hooks(adapter.model) == own_hooks


def test_masking_head_h_changes_only_its_slice(tiny) -> None:
    adapter, inputs = tiny
    layer, head = 1, 2
    before = _capture_layer(adapter, inputs, layer, [])
    after = _capture_layer(
        adapter, inputs, layer, [compile_edit(spec_for("scale", [HeadId(1, 2)]))]
    )
    others = [h for h in range(adapter.n_heads) if h != head]
    assert torch.equal(after[:, :, others], before[:, :, others])
    assert torch.allclose(after[:, :, head], before[:, :, head] * 0.001)
    assert not torch.equal(after[:, :, head], before[:, :, head])


def test_hooks_removed_on_exceptions(tiny) -> None:
    adapter, _ = tiny
    own_hooks = count_hooks(adapter.model)
    with pytest.raises(RuntimeError, match="boom"):  # noqa: PT012
        with intervene(adapter.model, [compile_edit(spec_for("scale", [HeadId(0, 0)]))]):
            assert count_hooks(adapter.model) == own_hooks + 2
            raise RuntimeError("boom")
    assert count_hooks(adapter.model) == own_hooks


def _generate_scores(adapter, inputs, edits, steps: int = 4) -> list[torch.Tensor]:
    with torch.no_grad(), intervene(adapter.model, edits):
        out = adapter.model.generate(
            **inputs,
            max_new_tokens=steps,
            min_new_tokens=steps,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=adapter.pad_token_id,
        )
    return list(out.scores)


def test_scope_generated_leaves_first_token_and_prompt_alone(tiny) -> None:
    adapter, inputs = tiny
    every = [HeadId(layer, h) for layer in range(adapter.n_layers) for h in range(adapter.n_heads)]
    base = _generate_scores(adapter, inputs, [])
    gen = _generate_scores(
        adapter, inputs, [compile_edit(spec_for("scale", every, epsilon=0.0, scope="generated"))]
    )
    prompt = _generate_scores(
        adapter, inputs, [compile_edit(spec_for("scale", every, epsilon=0.0, scope="prompt"))]
    )
    assert torch.equal(gen[0], base[0])  # the first token comes from prompt positions only
    assert not torch.equal(gen[1], base[1])
    assert not torch.equal(prompt[0], base[0])
    prompt_len = inputs["input_ids"].shape[1]
    with intervene(adapter.model, []) as tracker:
        _generate_scores(adapter, inputs, [], steps=3)
    assert tracker.prompt_length == prompt_len and tracker.offset == prompt_len + 1


def test_visual_ratios_from_eager_attention(tiny) -> None:
    adapter, inputs = tiny
    model = adapter.model
    before = model.config._attn_implementation
    ratios = measure_visual_ratios(model, [inputs], adapter.image_token_id)
    assert model.config._attn_implementation == before  # restored
    assert ratios.shape == (adapter.n_layers, adapter.n_heads)
    assert bool(((ratios >= 0) & (ratios <= 1)).all())
    # recompute by hand for layer 0 from the eager weights
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            attn = model(**inputs, output_attentions=True).attentions[0]  # [batch, heads, q, k]
    finally:
        model.set_attn_implementation(before)
    image = inputs["input_ids"] == adapter.image_token_id
    assert int(image.sum()) > 0
    by_hand = torch.stack(
        [attn[b, :, -1][:, image[b]].sum(-1) / attn[b, :, -1].sum(-1) for b in range(2)]
    ).mean(0)
    assert torch.allclose(ratios[0], by_hand, atol=1e-6)
    config = FHIConfig(tau_perception=0.0, tau_reasoning=1.0)
    perception, reasoning = select_fhi_heads(ratios, config)
    assert len(perception) + len(reasoning) == adapter.n_layers * adapter.n_heads
