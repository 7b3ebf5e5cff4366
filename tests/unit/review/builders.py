"""Hand-made decompositions with small real PNG images, for the review tests and benchmark."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cogvision.artifacts import write_jsonl_atomic
from cogvision.images import image_ref_from_bytes
from cogvision.schema.records import (
    Decomposition,
    Provenance,
    SourceQuestion,
    SourceRef,
    SubQuestion,
    Verification,
)
from cogvision.schema.taxonomy import get_taxonomy

COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")


def scene_png(rng: np.random.Generator, size: int = 48) -> tuple[bytes, int, str]:
    """A small PNG with 1-4 coloured circles; returns (bytes, count, colour of the first)."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    count = int(rng.integers(1, 5))
    colours = [COLOURS[int(k)] for k in rng.integers(0, len(COLOURS), size=count)]
    for colour in colours:
        x, y = (int(v) for v in rng.integers(4, size - 14, size=2))
        draw.ellipse([x, y, x + 10, y + 10], fill=colour, outline="black")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue(), count, colours[0]


def make_decomposition(i: int, folder: Path, rng: np.random.Generator, *, n_sub: int = 5,
                       taxonomy: str = "cogvision", verifier_disagrees: bool = False
                       ) -> Decomposition:
    """Decomposition number ``i``; its image is written to ``folder/images``."""
    data, count, colour = scene_png(rng)
    name = f"images/scene_{i:05d}.png"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    question = SourceQuestion(
        image=image_ref_from_bytes(data, name), question=f"Scene {i}: how many circles are there?",
        answer=str(count), source=SourceRef(dataset="synthetic", split="test", index=str(i)),
        license="CC0-1.0")
    names = get_taxonomy(taxonomy).names
    subs = []
    for k in range(n_sub):
        verification = None
        if k == 0 and verifier_disagrees:
            verification = Verification(model="o3-test", answer="no", agrees=False)
        subs.append(SubQuestion(
            index=k, question=f"Step {k + 1} of scene {i}: what is the colour of circle {k}?",
            answer=colour if k == 0 else f"answer {k}", function=names[k % len(names)],
            depends_on=[k - 1] if k else [], verification=verification))
    return Decomposition(question=question, taxonomy=taxonomy, subquestions=subs,
                         chain_of_thought=f"Count the circles: {count}.",
                         provenance=Provenance(generator="llm", model="gpt-test",
                                               prompt_version="v1"))


def write_decompositions(folder: Path, n: int, *, seed: int = 0, n_sub: int = 5,
                         taxonomy: str = "cogvision") -> tuple[Path, list[Decomposition]]:
    """``folder/decompositions.jsonl`` with ``n`` records and their images."""
    rng = np.random.default_rng(seed)
    records = [make_decomposition(i, folder, rng, n_sub=n_sub, taxonomy=taxonomy,
                                  verifier_disagrees=(i % 2 == 1)) for i in range(n)]
    path = folder / "decompositions.jsonl"
    write_jsonl_atomic(path, records)
    return path, records
