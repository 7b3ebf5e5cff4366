"""Activation files (chunked fp16 .npy, resumable) and HeadId flattening."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cogvision.errors import ArtifactError
from cogvision.harness.heads import HeadId, all_heads
from cogvision.harness.store import NpyAppender, load_activations


def test_chunks_round_trip_through_numpy(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    rng = np.random.default_rng(0)
    chunks = [rng.standard_normal((n, 2, 3, 4)).astype(np.float32) for n in (3, 1, 5)]
    with NpyAppender(path, (2, 3, 4)) as out:
        for chunk in chunks:
            out.write(chunk)
    loaded = load_activations(path)
    assert loaded.shape == (9, 2, 3, 4) and loaded.dtype == np.float16
    np.testing.assert_array_equal(loaded, np.concatenate(chunks).astype(np.float16))
    assert np.load(path, allow_pickle=False).shape == (9, 2, 3, 4)


def test_resume_truncates_to_the_indexed_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    with NpyAppender(path, (2,)) as out:
        out.write(np.arange(10, dtype=np.float32).reshape(5, 2))
    with NpyAppender(path, (2,), resume_rows=3) as out:  # rows 3, 4 were never indexed
        out.write(np.full((1, 2), 7.0))
    np.testing.assert_array_equal(load_activations(path), [[0, 1], [2, 3], [4, 5], [7, 7]])


def test_resume_refuses_other_shapes(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    with NpyAppender(path, (2,)) as out:
        out.write(np.zeros((2, 2)))
    with pytest.raises(ArtifactError, match="cannot resume"), NpyAppender(path, (3,),
                                                                          resume_rows=2):
        pass


@given(st.integers(0, 200), st.integers(1, 64))
def test_head_id_flat_round_trip(flat: int, n_heads: int) -> None:
    head = HeadId.from_flat(flat, n_heads)
    assert head.flat(n_heads) == flat
    assert HeadId.parse(str(head)) == head


def test_all_heads_in_flat_order() -> None:
    assert [h.flat(3) for h in all_heads(2, 3)] == list(range(6))
    with pytest.raises(ValueError):
        HeadId.parse("layer1head2")
