from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from cogvision.images import image_ref_from_bytes
from cogvision.schema import Decomposition, Provenance, SourceQuestion, SourceRef, SubQuestion


def png_bytes(colour: tuple[int, int, int] = (200, 30, 30), size: int = 16) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def make_question(
    index: int = 0,
    *,
    image_dir: Path | None = None,
    dataset: str = "toy",
    colour: tuple[int, int, int] = (200, 30, 30),
) -> SourceQuestion:
    image = None
    if image_dir is not None:
        data = png_bytes(colour)
        rel = f"images/{index}.png"
        (image_dir / "images").mkdir(parents=True, exist_ok=True)
        (image_dir / rel).write_bytes(data)
        image = image_ref_from_bytes(data, rel)
    return SourceQuestion(
        question=f"How many red objects are there in picture {index}?",
        answer="2",
        choices=["1", "2", "3"],
        source=SourceRef(dataset=dataset, split="train", index=str(index)),
        license="CC0-1.0",
        image=image,
    )


def make_decomposition(question: SourceQuestion) -> Decomposition:
    return Decomposition(
        question=question,
        taxonomy="cogvision",
        chain_of_thought="Find the red objects, count them, pick the option.",
        subquestions=[
            SubQuestion(
                index=0,
                question="Which objects are red?",
                answer="the circle and the square",
                function="Low-level Visual Reception",
            ),
            SubQuestion(
                index=1,
                question="How many objects is that?",
                answer="2",
                function="Math Reasoning",
                depends_on=[0],
            ),
            SubQuestion(
                index=2,
                question="Which option matches?",
                answer="2",
                function="Decision-Making",
                depends_on=[1],
            ),
        ],
        provenance=Provenance(generator="test", model="hand-written"),
    )


@pytest.fixture
def question() -> SourceQuestion:
    return make_question()


@pytest.fixture
def decomposition(question: SourceQuestion) -> Decomposition:
    return make_decomposition(question)
