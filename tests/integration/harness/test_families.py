"""Every family: geometry, capture shapes, hook removal, batched == unbatched, KV reuse ==
recompute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cogvision.harness.capture import (
    CaptureOptions,
    activation_path,
    capture,
    read_index,
    trace_item,
)
from cogvision.harness.data import MainItem
from cogvision.harness.hooks import count_hooks, o_proj_pre_hooks
from cogvision.harness.trace import trace_full

from .conftest import ALL_FAMILIES, make_items, tiny_adapter


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_geometry_and_inputs(family: str) -> None:
    adapter = tiny_adapter(family)
    assert (adapter.n_layers, adapter.n_heads, adapter.n_kv_heads, adapter.d_head,
            adapter.d_model) == (2, 4, 2, 16, 64)
    assert len(adapter.decoder_layers()) == 2
    assert adapter.o_proj(1).in_features == adapter.n_heads * adapter.d_head
    image = Image.new("RGB", (28, 28), (255, 0, 0))
    inputs = adapter.build_inputs([image, image], ["Short?", "A much longer question here?"])
    ids = inputs["input_ids"]
    assert (ids == adapter.image_token_id).sum(dim=1).tolist() == [4, 4]
    assert inputs["attention_mask"][0, 0] == 0 and inputs["attention_mask"][:, -1].all()


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_capture_shapes_and_no_hooks_left(family: str, tmp_path: Path) -> None:
    adapter = tiny_adapter(family)
    with torch.no_grad():  # some models add hooks of their own on a first forward with an image
        adapter.model(**adapter.build_inputs([Image.new("RGB", (28, 28))], ["warm up"]))
    before = count_hooks(adapter.model)
    items = make_items(2, subs_per_main=2, seed=1)
    options = CaptureOptions(positions=["last_prompt", "first_generated", "answer_mean",
                                        "topk_answer"], layer_bias=True, max_new_tokens=3)
    result = capture(adapter, items, tmp_path, options)
    assert result.rows == 4 and result.failures == 0
    assert count_hooks(adapter.model) == before
    assert sum(count_hooks(m) for m in adapter.o_projs()) == 0
    for position in options.positions:
        x = np.load(activation_path(tmp_path, position), allow_pickle=False)
        assert x.shape == (4, 2, 4, 32) and x.dtype == np.float16 and np.isfinite(x).all()
        # layer bias: the second half of every head vector is its layer's mean head vector
        np.testing.assert_allclose(x[..., 16:], np.broadcast_to(
            x[..., :16].astype(np.float32).mean(axis=2, keepdims=True), x[..., :16].shape),
            atol=2e-3)
    rows = read_index(tmp_path)
    assert [r.id for r in rows] == ["m0-s0", "m0-s1", "m1-s0", "m1-s1"]
    assert all(len(r.selected_tokens) <= 3 for r in rows)
    with pytest.raises(RuntimeError), o_proj_pre_hooks(adapter.o_projs(), lambda layer, x: None):
        assert count_hooks(adapter.model) == before + adapter.n_layers
        raise RuntimeError("boom")
    assert count_hooks(adapter.model) == before


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_batched_equals_unbatched(family: str) -> None:
    adapter = tiny_adapter(family)
    image = Image.new("RGB", (28, 28), (0, 90, 200))
    texts = [adapter.chat_text(p, image=True) for p in ("Color?", "What is the colour of it?")]
    both = trace_full(adapter, [image, image], texts, 3)
    for row, text in enumerate(texts):
        alone = trace_full(adapter, [image], [text], 3)
        torch.testing.assert_close(both.prompt[row], alone.prompt[0], atol=1e-5, rtol=1e-4)
        assert torch.equal(both.tokens[row], alone.tokens[0])
        torch.testing.assert_close(both.answer[row], alone.answer[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_shared_prefix_reuse_equals_recompute(family: str) -> None:
    adapter = tiny_adapter(family)
    item = make_items(1, subs_per_main=3, seed=2)[0]
    reused = trace_item(adapter, item, item.subs, CaptureOptions(max_new_tokens=3))
    full = trace_item(adapter, item, item.subs, CaptureOptions(max_new_tokens=3,
                                                               reuse_prefix=False))
    assert torch.equal(reused.tokens, full.tokens)
    torch.testing.assert_close(reused.prompt, full.prompt, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(reused.answer, full.answer, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_text_only_items(family: str) -> None:
    adapter = tiny_adapter(family)
    items = make_items(1, subs_per_main=2, seed=3)
    item = MainItem(items[0].main_id, "train", items[0].main_question, items[0].subs)
    reused = trace_item(adapter, item, item.subs, CaptureOptions(max_new_tokens=2))
    full = trace_item(adapter, item, item.subs, CaptureOptions(max_new_tokens=2,
                                                               reuse_prefix=False))
    assert torch.equal(reused.tokens, full.tokens)
    torch.testing.assert_close(reused.prompt, full.prompt, atol=1e-5, rtol=1e-4)
