"""Hand-made decompositions with small real PNG images (until `cogvision synth` lands)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cogvision.artifacts import write_jsonl_atomic
from cogvision.images import image_ref_from_bytes
from cogvision.schema import (
    Decomposition,
    Provenance,
    ReviewOutcome,
    SourceQuestion,
    SourceRef,
    SubQuestion,
    get_taxonomy,
)

SOURCES = (("shapes", "CC-BY-4.0"), ("charts", "MIT"))


def png_bytes(rng: np.random.Generator, size: int = 24) -> bytes:
    pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def make_decompositions(folder: Path, n: int, *, seed: int = 0, taxonomy: str = "cogvision",
                        reviews: list[str | None] | None = None) -> Path:
    """Write ``n`` decompositions (every 5th shares the previous item's image) to folder."""
    rng = np.random.default_rng(seed)
    names = get_taxonomy(taxonomy).names
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    ref = None
    for i in range(n):
        source, license_ = SOURCES[i % 2]
        if ref is None or i % 5 != 4:
            data = png_bytes(rng)
            name = f"images/img{i:04d}.png"
            (folder / name).write_bytes(data)
            ref = image_ref_from_bytes(data, name)
        steps = int(rng.integers(2, 5))
        choices = [f"{k} items" for k in range(3)] if i % 3 == 0 else None
        answer = f"{i % 3} items" if choices else f"answer {i} with {i % 4} words"
        question = SourceQuestion(
            image=ref, question=f"How many things in picture {i}?", answer=answer,
            choices=choices, source=SourceRef(dataset=source, split="train", index=str(i)),
            license=license_)
        subs = [SubQuestion(index=k, question=f"Step {k} of item {i}?", answer=f"a{k} " * (k + 1),
                            function=names[(i + k) % len(names)],
                            depends_on=[k - 1] if k else [])
                for k in range(steps)]
        review = None
        if reviews is not None and reviews[i] is not None:
            review = ReviewOutcome(status=reviews[i])
        records.append(Decomposition(question=question, taxonomy=taxonomy, subquestions=subs,
                                     provenance=Provenance(generator="test", model="hand"),
                                     review=review))
    path = folder / "decompositions.jsonl"
    write_jsonl_atomic(path, records)
    return path


@pytest.fixture()
def bench(tmp_path: Path) -> Path:
    return make_decompositions(tmp_path / "bench", 30)
