"""Synthetic benchmark with exact ground truth: PIL scenes + questions compiled from small programs.

``build_benchmark(variant, n, seed, out_dir)`` writes ``questions.jsonl``,
``decompositions.jsonl``, ``images/<id>.png``, ``failures.jsonl`` and ``manifest.json``. See
``programs.py`` for how step kinds map to function labels.
"""

from cogvision.sources.synth.build import (
    TEMPLATES,
    VARIANTS,
    SynthResult,
    build_benchmark,
    check_request,
    generate_program,
    template_names,
    to_records,
)
from cogvision.sources.synth.programs import KIND_KEYS, PROGRAM_VERSION, Program, Step
from cogvision.sources.synth.scenes import (
    Scene,
    SceneObject,
    SceneOptions,
    render,
    render_png,
    sample_scene,
)

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
    "check_request",
    "generate_program",
    "render",
    "render_png",
    "sample_scene",
    "template_names",
    "to_records",
]
