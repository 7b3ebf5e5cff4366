"""Intervention math on hand-built tensors: masks, patches, steering directions, scopes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cogvision.errors import UsageError
from cogvision.harness.fhi import (
    FHIConfig,
    fhi_specs,
    select_fhi_heads,
    visual_attention_ratios,
)
from cogvision.harness.heads import HeadId
from cogvision.harness.intervene import (
    InterventionSpec,
    apply_edits,
    compile_edit,
    in_scope,
    patch_values,
    scope_bounds,
    spec_for,
    steering_directions,
)

H, D = 3, 2  # heads, d_head


def _x(batch: int = 2, seq: int = 4) -> torch.Tensor:
    return torch.arange(batch * seq * H * D, dtype=torch.float32).view(batch, seq, H * D) + 1.0


def _heads(x: torch.Tensor) -> torch.Tensor:
    return x.view(*x.shape[:2], H, D)


def test_spec_parses_heads_and_hashes_stably() -> None:
    spec = spec_for("scale", [HeadId(0, 1), HeadId(2, 0)], scope="generated")
    assert spec.heads == ("L0H1", "L2H0") and spec.epsilon == 0.001
    assert spec.key == InterventionSpec.model_validate_json(spec.model_dump_json()).key
    assert spec.key != spec.model_copy(update={"epsilon": 0.01}).key
    with pytest.raises(UsageError, match="known: scale, patch_random, patch_mean, steer, gain"):
        spec_for("ablate", [HeadId(0, 0)])
    with pytest.raises(ValueError, match="not a head id"):
        InterventionSpec(kind="scale", heads=("0:1",))


def test_scale_touches_only_the_chosen_head_of_the_chosen_layer() -> None:
    x = _x()
    edit = compile_edit(spec_for("scale", [HeadId(1, 2)], epsilon=0.5))
    assert apply_edits(x, 0, [edit], H, offset=0, prompt_length=4) is None  # other layer untouched
    y = _heads(apply_edits(x, 1, [edit], H, offset=0, prompt_length=4))
    assert torch.equal(y[:, :, 2], _heads(x)[:, :, 2] * 0.5)
    assert torch.equal(y[:, :, :2], _heads(x)[:, :, :2])


def test_scope_by_absolute_position() -> None:
    assert in_scope("prompt", 2, 4, 4).tolist() == [True, True, False, False]
    assert in_scope("generated", 2, 4, 4).tolist() == [False, False, True, True]
    assert in_scope("generated", 7, 1, 4).tolist() == [True]  # one decode step after the prompt
    assert in_scope("all", 0, 3, 4).tolist() == [True, True, True]
    x = _x(seq=4)
    edit = compile_edit(spec_for("scale", [HeadId(0, 0)], epsilon=0.0, scope="generated"))
    y = _heads(apply_edits(x, 0, [edit], H, offset=2, prompt_length=4))
    assert torch.equal(y[:, :2, 0], _heads(x)[:, :2, 0])  # absolute positions 2, 3: prompt
    assert torch.all(y[:, 2:, 0] == 0)  # absolute positions 4, 5: generated


def test_patch_replaces_slices_with_donor_values() -> None:
    acts = torch.arange(4 * 2 * H * D, dtype=torch.float32).view(4, 2, H, D)  # [items, L, H, D]
    donor = torch.tensor([False, True, True, False])
    heads = [HeadId(1, 0), HeadId(0, 2)]
    mean = patch_values(acts, donor, heads, "mean", np.random.default_rng(0))
    assert torch.equal(mean, torch.stack([acts[1:3, 1, 0].mean(0), acts[1:3, 0, 2].mean(0)]))
    sample = patch_values(acts, donor, heads, "random", np.random.default_rng(3))
    pick = 1 + int(np.random.default_rng(3).integers(2))
    assert torch.equal(sample, torch.stack([acts[pick, 1, 0], acts[pick, 0, 2]]))
    edit = compile_edit(spec_for("patch_mean", heads, source="Math"), acts=acts, donor=donor)
    x = _x()
    y = _heads(apply_edits(x, 1, [edit], H, offset=0, prompt_length=4))
    assert torch.equal(y[:, :, 0], mean[0].expand(2, 4, D))
    assert torch.equal(y[:, :, 1:], _heads(x)[:, :, 1:])
    with pytest.raises(UsageError, match="no captured items"):
        patch_values(acts, torch.zeros(4, dtype=torch.bool), heads, "mean", np.random.default_rng())


def test_steering_direction_sigma_and_addition() -> None:
    # one head, d_head 2: correct items at (2, 0), (4, 0); incorrect at (0, 0), (0, 2)
    acts = torch.tensor([[2.0, 0.0], [4.0, 0.0], [0.0, 0.0], [0.0, 2.0]]).view(4, 1, 1, 2)
    correct = torch.tensor([True, True, False, False])
    raw_dir, _ = steering_directions(acts, correct, [HeadId(0, 0)], unit=False)
    assert torch.allclose(raw_dir, torch.tensor([[3.0, -1.0]]))
    unit_dir, sigma = steering_directions(acts, correct, [HeadId(0, 0)])
    u = torch.tensor([3.0, -1.0]) / 10**0.5
    assert torch.allclose(unit_dir[0], u)
    assert torch.allclose(sigma, (acts.view(4, 2) @ u).std().view(1))
    spec = spec_for("steer", [HeadId(0, 0)], alpha=2.0)
    edit = compile_edit(spec, acts=acts, correct=correct)
    x = torch.zeros(1, 2, 2)  # [batch, seq, 1 head * d_head 2]
    y = apply_edits(x, 0, [edit], 1, offset=0, prompt_length=2)
    assert torch.allclose(y[0, 0], 2.0 * sigma[0] * u)
    with pytest.raises(UsageError, match="both correct and incorrect"):
        steering_directions(acts, torch.ones(4, dtype=torch.bool), [HeadId(0, 0)])


def test_rows_restrict_an_edit_to_batch_rows() -> None:
    x = _x(batch=2)
    edit = compile_edit(
        spec_for("gain", [HeadId(0, 1)], gain=2.0), rows=torch.tensor([False, True])
    )
    y = _heads(apply_edits(x, 0, [edit], H, offset=0, prompt_length=4))
    assert torch.equal(y[0], _heads(x)[0])
    assert torch.equal(y[1, :, 1], _heads(x)[1, :, 1] * 2.0)


def test_edits_compose_in_order_and_identity_settings_are_exact() -> None:
    x = _x()
    identity = [
        compile_edit(spec_for("scale", [HeadId(0, 0)], epsilon=1.0)),
        compile_edit(spec_for("gain", [HeadId(0, 1)], gain=1.0)),
    ]
    assert torch.equal(apply_edits(x, 0, identity, H, offset=0, prompt_length=4), x)
    both = [
        compile_edit(spec_for("gain", [HeadId(0, 0)], gain=3.0)),
        compile_edit(spec_for("scale", [HeadId(0, 0)], epsilon=0.5)),
    ]
    y = _heads(apply_edits(x, 0, both, H, offset=0, prompt_length=4))
    assert torch.equal(y[:, :, 0], _heads(x)[:, :, 0] * 1.5)


def test_values_are_required_and_sized() -> None:
    with pytest.raises(UsageError, match="needs captured activations"):
        compile_edit(spec_for("patch_mean", [HeadId(0, 0)]))
    with pytest.raises(UsageError, match="needs captured activations"):
        compile_edit(spec_for("steer", [HeadId(0, 0)]))


def test_visual_attention_ratio_on_hand_built_weights() -> None:
    # batch 2, 2 heads, 3 key positions; image tokens: position 1 (row 0), positions 0-1 (row 1)
    attn = torch.zeros(2, 2, 3, 3)
    attn[0, 0, -1] = torch.tensor([0.2, 0.5, 0.3])
    attn[0, 1, -1] = torch.tensor([0.0, 0.0, 1.0])
    attn[1, 0, -1] = torch.tensor([0.1, 0.1, 0.8])
    attn[1, 1, -1] = torch.tensor([0.5, 0.5, 0.0])
    image = torch.tensor([[False, True, False], [True, True, False]])
    ratios = visual_attention_ratios([attn, attn], image)
    assert ratios.shape == (2, 2)
    assert torch.allclose(ratios[0], torch.tensor([(0.5 + 0.2) / 2, (0.0 + 1.0) / 2]))


def test_fhi_selection_by_layer_bounds_and_thresholds() -> None:
    ratios = torch.tensor([[0.9, 0.1], [0.5, 0.05], [0.6, 0.02], [0.2, 0.0]])  # [layers 4, heads 2]
    config = FHIConfig(tau_perception=0.5, tau_reasoning=0.05, gain_perception=1.3)
    perception, reasoning = select_fhi_heads(ratios, config)
    assert perception == [HeadId(0, 0), HeadId(1, 0)]  # layers 0-1 only; 0.6 at layer 2 is deep
    assert reasoning == [HeadId(2, 1), HeadId(3, 1)]
    bounded = config.model_copy(update={"reasoning_layers": (3, 4)})
    assert select_fhi_heads(ratios, bounded)[1] == [HeadId(3, 1)]
    specs = fhi_specs(perception, reasoning, config)
    assert [(s.kind, s.gain, s.label) for s in specs] == [
        ("gain", 1.3, "fhi:perception"),
        ("gain", 1.2, "fhi:reasoning"),
    ]
    assert fhi_specs([], reasoning, config)[0].label == "fhi:reasoning"


@given(
    scope=st.sampled_from(["prompt", "generated", "all"]),
    offset=st.integers(0, 12),
    seq=st.integers(1, 12),
    prompt=st.integers(0, 16),
)
def test_scope_bounds_match_the_position_mask(
    scope: str, offset: int, seq: int, prompt: int
) -> None:
    lo, hi = scope_bounds(scope, offset, seq, prompt)  # type: ignore[arg-type]
    expected = in_scope(scope, offset, seq, prompt)  # type: ignore[arg-type]
    got = torch.zeros(seq, dtype=torch.bool)
    got[lo:hi] = True
    assert torch.equal(got, expected)
