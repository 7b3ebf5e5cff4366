"""Build a synthetic benchmark folder: scenes, questions, ground-truth decompositions, manifest.

Item ``i`` of a run draws all its randomness from ``numpy.random.default_rng([seed, i])``, so a
run is byte-for-byte reproducible from its seed and the first ``k`` items of a run of ``n`` are the
run of ``k``.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from cogvision.artifacts import atomic_path, dump_record, write_manifest
from cogvision.errors import CogvisionError, UsageError
from cogvision.schema import (
    Decomposition,
    ImageRef,
    Provenance,
    SourceQuestion,
    SourceRef,
    SubQuestion,
    sha256_bytes,
)
from cogvision.schema.records import utc_now
from cogvision.sources.synth import templates_knowledge as knowledge
from cogvision.sources.synth import templates_spatial as spatial
from cogvision.sources.synth import templates_visual as visual
from cogvision.sources.synth.programs import PROGRAM_VERSION, Program, Template, function_label
from cogvision.sources.synth.scenes import Scene, SceneOptions, render_png, sample_scene

log = logging.getLogger(__name__)

LICENSE = "CC0-1.0"
GENERATOR, MODEL = "synth", "synth-programs"
CREATED_AT = datetime(2026, 1, 1, tzinfo=UTC)
"""Fixed provenance time: a wall-clock time would break byte-identical reruns."""
SCENE_TRIES = 50
OUTPUT_NAMES = {
    "questions.jsonl",
    "decompositions.jsonl",
    "failures.jsonl",
    "manifest.json",
    "images",
}

TEMPLATES: dict[str, tuple[Template, ...]] = {
    "cogvision": (
        visual.count_colour,
        visual.compare_counts,
        visual.total_sides,
        visual.neighbour_colour,
        visual.choose_colour,
        visual.thing_colour,
        visual.rule_branch,
        visual.busiest_row,
        visual.size_compare,
        visual.same_shape,
        spatial.neighbour_sides,
        knowledge.colour_group,
        knowledge.name_origin,
        knowledge.defined_term,
        knowledge.locked_prize,
        visual.most_common_colour,
    ),
    "cogvsr": (
        spatial.left_or_above,
        spatial.closer_to,
        spatial.count_before,
        spatial.leftmost_of_three,
        spatial.thing_above_below,
        spatial.same_row_count,
        spatial.neighbour_sides,
        visual.neighbour_colour,
        visual.choose_colour,
        visual.same_shape,
        knowledge.name_origin,
    ),
}
"""Templates per variant; the variant also names the taxonomy its labels come from."""
VARIANTS = tuple(TEMPLATES)


def template_names(variant: str) -> list[str]:
    return [t.__name__ for t in TEMPLATES[variant]]


@dataclass
class SynthResult:
    """What a build produced."""

    out_dir: Path
    questions: int = 0
    subquestions: int = 0
    by_template: Counter[str] = field(default_factory=Counter)
    by_function: Counter[str] = field(default_factory=Counter)


def generate_program(
    variant: str,
    index: int,
    rng: np.random.Generator,
    options: SceneOptions,
    templates: Sequence[Template],
) -> tuple[Scene, Program]:
    """Pick a template and sample scenes until one hosts it (other templates if it never fits)."""
    remaining = list(templates)
    first = True
    while remaining:
        # Round-robin by item index keeps templates balanced; fall back to random ones.
        template = remaining[index % len(remaining) if first else int(rng.integers(len(remaining)))]
        first = False
        for _ in range(SCENE_TRIES):
            scene = sample_scene(
                rng,
                image_size=options.image_size,
                grid=options.grid,
                min_objects=options.min_objects,
                max_objects=options.max_objects,
                jitter=options.jitter,
            )
            program = template(scene, rng)
            if program is not None:
                return scene, program
        log.debug(
            "template %s fits no scene at grid %d; trying another", template.__name__, options.grid
        )
        remaining.remove(template)
    raise CogvisionError(
        f"no {variant} template fits scenes of grid {options.grid} with "
        f"{options.min_objects}-{options.max_objects} objects"
    )


def to_records(
    variant: str,
    scene: Scene,
    program: Program,
    png: bytes,
    *,
    seed: int,
    index: int,
    options: SceneOptions,
) -> tuple[SourceQuestion, Decomposition]:
    """The question (scene graph in metadata) and its ground-truth decomposition."""
    image = ImageRef(
        path="images/pending.png",
        sha256=sha256_bytes(png),
        width=scene.image_size,
        height=scene.image_size,
        bytes=len(png),
        format="PNG",
    )
    targets = set(program.targets)
    question = SourceQuestion(
        image=image,
        question=program.question,
        answer=program.answer,
        choices=list(program.choices) if program.choices else None,
        source=SourceRef(dataset=f"synthetic-{variant}", split=f"seed-{seed}", index=str(index)),
        license=LICENSE,
        metadata={
            "template": program.template,
            "program_version": PROGRAM_VERSION,
            "step_kinds": [s.kind for s in program.steps],
            "scene": scene.to_metadata(),
            "targets": sorted(targets),
            "distractors": [o.id for o in scene.objects if o.id not in targets],
        },
    )
    # The image path is not part of the question's identity, so naming the file by id is safe.
    question = question.model_copy(
        update={"image": image.model_copy(update={"path": f"images/{question.id}.png"})}
    )
    subquestions = [
        SubQuestion(
            index=i,
            question=s.question,
            answer=s.answer,
            function=function_label(variant, s.kind),
            depends_on=list(s.depends_on),
        )
        for i, s in enumerate(program.steps)
    ]
    cot = " ".join(f"({i + 1}) {s.question} {s.answer}." for i, s in enumerate(program.steps))
    provenance = Provenance(
        generator=GENERATOR,
        model=MODEL,
        prompt_version=PROGRAM_VERSION,
        created_at=CREATED_AT,
        parameters={
            "template": program.template,
            "seed": seed,
            "index": index,
            "image_size": options.image_size,
            "grid": options.grid,
            "jitter": options.jitter,
        },
    )
    decomposition = Decomposition(
        question=question,
        taxonomy=variant,  # type: ignore[arg-type]  # checked against TEMPLATES' keys
        chain_of_thought=cot,
        subquestions=subquestions,
        provenance=provenance,
    )
    return question, decomposition


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir():
        foreign = sorted(
            p.name
            for p in out_dir.iterdir()
            if p.name not in OUTPUT_NAMES and not p.name.startswith(".")
        )
        if foreign:
            raise UsageError(
                f"{out_dir}: not empty and not a synth output folder "
                f"(found {', '.join(foreign[:3])})"
            )


def _write_image(path: Path, data: bytes) -> None:
    """Atomic write; an identical file from an interrupted earlier run is kept as is."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _remove_stale_images(images_dir: Path, keep: set[str]) -> None:
    for path in images_dir.glob("*.png"):
        if path.name not in keep:
            path.unlink()


def build_benchmark(
    variant: str,
    n: int,
    seed: int,
    out_dir: str | Path,
    *,
    image_size: int = 128,
    grid: int = 4,
    jitter: float = 0.0,
    min_objects: int = 3,
    max_objects: int = 7,
    templates: Sequence[str] | None = None,
    on_item: Callable[[], None] | None = None,
) -> SynthResult:
    """Write ``n`` synthetic items to ``out_dir`` (questions, decompositions, images, manifest).

    Args:
        variant: ``cogvision`` or ``cogvsr``: the template set and the taxonomy of the labels.
        n: Number of main questions (one scene each).
        seed: Seed of the run; the same seed and options give byte-identical files.
        out_dir: Output folder (created; an earlier synth output there is replaced).
        image_size: Side of the square images in pixels (a multiple of ``grid``).
        grid: Cells per side; each object fills one cell.
        jitter: 0..1, how far objects may move off their cell centre.
        min_objects: Fewest objects per scene (1 allows a one-object curriculum).
        max_objects: Most objects per scene.
        templates: Restrict to these template names (default: all of the variant's).
        on_item: Called after each item (progress display).

    Returns:
        Counts per template and per function.

    Raises:
        UsageError: A bad argument (named with its value), before anything is written.
    """
    started = utc_now()
    options = SceneOptions(image_size, grid, jitter, min_objects, max_objects)
    chosen = check_request(variant, n, out_dir, options, templates)
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    result = SynthResult(out_dir=out_dir)
    written: set[str] = set()
    with (
        atomic_path(out_dir / "questions.jsonl") as q_tmp,
        atomic_path(out_dir / "decompositions.jsonl") as d_tmp,
        q_tmp.open("w", encoding="utf-8") as q_fh,
        d_tmp.open("w", encoding="utf-8") as d_fh,
    ):
        for index in range(n):
            rng = np.random.default_rng([seed, index])
            scene, program = generate_program(variant, index, rng, options, chosen)
            png = render_png(scene)
            question, decomposition = to_records(
                variant, scene, program, png, seed=seed, index=index, options=options
            )
            _write_image(out_dir / question.image.path, png)  # type: ignore[union-attr]
            written.add(question.id)
            q_fh.write(dump_record(question) + "\n")
            d_fh.write(dump_record(decomposition) + "\n")
            _count(result, program, decomposition)
            if on_item is not None:
                on_item()
    (out_dir / "failures.jsonl").write_text("", encoding="utf-8")
    _remove_stale_images(images_dir, {f"{qid}.png" for qid in written})
    _write_manifest(out_dir, variant, n, seed, options, chosen, result, started)
    return result


def check_request(variant: str, n: int, out_dir: str | Path, options: SceneOptions,
                  templates: Sequence[str] | None = None) -> list[Template]:
    """Check a build's arguments before any work; return the templates to use."""
    chosen = _select_templates(variant, templates)
    if n <= 0:
        raise UsageError(f"--n must be a positive number of questions, got {n}")
    options.check()
    _check_out_dir(Path(out_dir))
    return chosen


def _select_templates(variant: str, names: Sequence[str] | None) -> list[Template]:
    if variant not in TEMPLATES:
        raise UsageError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if not names:
        return list(TEMPLATES[variant])
    known = {t.__name__: t for t in TEMPLATES[variant]}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UsageError(f"unknown {variant} template {unknown[0]!r}; valid: {', '.join(known)}")
    return [known[name] for name in dict.fromkeys(names)]


def _count(result: SynthResult, program: Program, decomposition: Decomposition) -> None:
    result.questions += 1
    result.subquestions += len(decomposition.subquestions)
    result.by_template[program.template] += 1
    result.by_function.update(s.function for s in decomposition.subquestions)


def _write_manifest(
    out_dir: Path,
    variant: str,
    n: int,
    seed: int,
    options: SceneOptions,
    chosen: Sequence[Template],
    result: SynthResult,
    started: datetime,
) -> None:
    config = {
        "variant": variant,
        "n": n,
        "seed": seed,
        "image_size": options.image_size,
        "grid": options.grid,
        "jitter": options.jitter,
        "min_objects": options.min_objects,
        "max_objects": options.max_objects,
        "templates": [t.__name__ for t in chosen],
        "program_version": PROGRAM_VERSION,
    }
    write_manifest(
        out_dir / "manifest.json",
        "synth",
        config=config,
        seed=seed,
        outputs=[out_dir / "questions.jsonl", out_dir / "decompositions.jsonl"],
        counts={
            "questions": result.questions,
            "subquestions": result.subquestions,
            "images": result.questions,
        },
        started_at=started,
        extra={
            "by_template": dict(sorted(result.by_template.items())),
            "by_function": dict(sorted(result.by_function.items())),
        },
    )
