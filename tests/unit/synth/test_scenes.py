"""Scenes: placement on the grid, distractors, and rendering that agrees with the scene graph."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cogvision.sources.synth.scenes import (
    BACKGROUND,
    COLOURS,
    SHAPES,
    SIZE_ORDER,
    SIZES,
    Scene,
    SceneObject,
    render,
    render_png,
    sample_scene,
)


def test_objects_sit_one_per_cell_with_unique_descriptions():
    for i in range(50):
        scene = sample_scene(
            np.random.default_rng(i), image_size=96, grid=3, min_objects=2, max_objects=9
        )
        cells = [(o.row, o.col) for o in scene.objects]
        assert len(set(cells)) == len(cells) and 2 <= len(cells) <= 9
        assert cells == sorted(cells)  # ids follow reading order
        assert [o.id for o in scene.objects] == list(range(len(cells)))
        kinds = [(o.colour, o.shape, o.size) for o in scene.objects]
        assert len(set(kinds)) == len(kinds)
        for o in scene.objects:  # centred exactly in its 32-px cell without jitter
            assert (o.x, o.y) == ((o.col + 0.5) * 32, (o.row + 0.5) * 32)


def test_jitter_moves_objects_but_keeps_them_inside_their_cell():
    moved = 0
    for i in range(30):
        scene = sample_scene(np.random.default_rng(i), image_size=128, grid=4, jitter=1.0)
        for o in scene.objects:
            assert o.col * 32 <= o.x - o.radius and o.x + o.radius <= (o.col + 1) * 32
            assert o.row * 32 <= o.y - o.radius and o.y + o.radius <= (o.row + 1) * 32
            moved += (o.x, o.y) != ((o.col + 0.5) * 32, (o.row + 0.5) * 32)
    assert moved > 0


def test_distractors_share_colour_or_shape_with_other_objects():
    shared = 0
    for i in range(100):
        objs = sample_scene(np.random.default_rng(i)).objects
        shared += any(
            a.colour == b.colour or a.shape == b.shape for a in objs for b in objs if a.id < b.id
        )
    assert shared >= 70


def test_rendered_pixels_match_the_scene_graph():
    for i in range(20):
        scene = sample_scene(np.random.default_rng(i), image_size=128, grid=4, jitter=0.5)
        pixels = np.asarray(render(scene))  # [height, width, 3]
        assert pixels.shape == (128, 128, 3)
        for o in scene.objects:
            assert tuple(pixels[int(o.y), int(o.x)]) == COLOURS[o.colour], o
        occupied = {(o.row, o.col) for o in scene.objects}
        for row in range(4):
            for col in range(4):
                if (row, col) not in occupied:
                    assert tuple(pixels[row * 32 + 16, col * 32 + 16]) == BACKGROUND


def test_sizes_are_visible_in_the_pixels():
    objects = []
    for row, shape in enumerate(SHAPES):  # one row per shape, sizes left to right
        for col, size in enumerate(SIZE_ORDER):
            radius = SIZES[size] * 64 / 2
            objects.append(
                SceneObject(
                    len(objects),
                    "red",
                    shape,
                    size,
                    row,
                    col,
                    (col + 0.5) * 64,
                    (row + 0.5) * 64,
                    radius,
                )
            )
    pixels = np.asarray(render(Scene(image_size=320, grid=5, objects=tuple(objects))))
    for row in range(len(SHAPES)):
        areas = [
            int(
                (pixels[row * 64 : (row + 1) * 64, col * 64 : (col + 1) * 64] != BACKGROUND)
                .any(axis=-1)
                .sum()
            )
            for col in range(3)
        ]
        assert 0 < areas[0] < areas[1] < areas[2], (SHAPES[row], areas)


def test_png_bytes_are_deterministic_and_lossless():
    scene = sample_scene(np.random.default_rng(7))
    data = render_png(scene)
    assert data == render_png(sample_scene(np.random.default_rng(7)))
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        assert np.array_equal(np.asarray(img.convert("RGB")), np.asarray(render(scene)))
