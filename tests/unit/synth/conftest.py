"""Fixtures for the synth unit tests: many programs per template, compiled to records."""

from __future__ import annotations

import numpy as np
import pytest

from cogvision.sources.synth import (
    TEMPLATES,
    SceneOptions,
    generate_program,
    render_png,
    to_records,
)

PER_TEMPLATE = 25


def compile_items(variant: str, template_name: str, count: int = PER_TEMPLATE, *, grid: int = 4):
    """``count`` (scene, program, question, decomposition) tuples of one template."""
    template = next(t for t in TEMPLATES[variant] if t.__name__ == template_name)
    options = SceneOptions(image_size=16 * grid, grid=grid)
    items = []
    for index in range(count):
        rng = np.random.default_rng([99, index])
        scene, program = generate_program(variant, index, rng, options, [template])
        question, decomposition = to_records(
            variant, scene, program, render_png(scene), seed=99, index=index, options=options
        )
        items.append((scene, program, question, decomposition))
    return items


@pytest.fixture(scope="session")
def compiled():
    """{(variant, template): items} for every template of every variant."""
    return {
        (variant, t.__name__): compile_items(variant, t.__name__)
        for variant, templates in TEMPLATES.items()
        for t in templates
    }
