"""Synthetic benchmark with exact ground truth: PIL scenes + questions compiled from small programs.

``build_benchmark(variant, n, seed, out_dir)`` writes ``questions.jsonl``,
``decompositions.jsonl``, ``images/<id>.png``, ``failures.jsonl`` and ``manifest.json``. See
``programs.py`` for how step kinds map to function labels.
"""

from cogvision.sources.synth.build import (
    TEMPLATES,
    VARIANTS,
    SceneOptions,
    SynthResult,
    build_benchmark,
    generate_program,
    template_names,
    to_records,
)
from cogvision.sources.synth.programs import KIND_KEYS, PROGRAM_VERSION, Program, Step
from cogvision.sources.synth.scenes import Scene, SceneObject, render, render_png, sample_scene

__all__ = [
    "KIND_KEYS",
    "PROGRAM_VERSION",
    "TEMPLATES",
    "VARIANTS",
    "Program",
    "Scene",
    "SceneObject",
    "SceneOptions",
    "Step",
    "SynthResult",
    "build_benchmark",
    "generate_program",
    "render",
    "render_png",
    "sample_scene",
    "template_names",
    "to_records",
]
