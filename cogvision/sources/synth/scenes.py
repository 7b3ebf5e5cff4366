"""Synthetic scenes: coloured shapes of a few sizes placed one per cell of a square grid.

A scene is an ``image_size`` x ``image_size`` picture cut into ``grid`` x ``grid`` cells of
``image_size // grid`` pixels. Each object occupies one cell (centred, optionally jittered inside
it), so a vision encoder whose patch equals the cell sees one object per patch token (issue 8 found
this alignment is what lets a small VLM read attributes reliably). No two objects share colour,
shape and size, so every object has a unique referring expression ("the small red circle").

Rows and columns are 0-based in the scene graph and 1-based ("row 1 is the top row") in the text.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

from cogvision.errors import UsageError

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 60, 180),
    "orange": (240, 130, 20),
}
SHAPES: tuple[str, ...] = ("circle", "triangle", "square", "pentagon", "hexagon")
SIZES: dict[str, float] = {"small": 0.45, "medium": 0.65, "large": 0.9}
"""Object diameter as a fraction of the cell's side."""
SIZE_ORDER: tuple[str, ...] = ("small", "medium", "large")
BACKGROUND = (245, 245, 245)
PNG_COMPRESS_LEVEL = 1  # level 1 is several times faster than the default 6 for ~20% larger files

_COLOUR_NAMES = tuple(COLOURS)
_POLYGON_SIDES = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene, as stored in the question's ``metadata.scene.objects``."""

    id: int
    colour: str
    shape: str
    size: str
    row: int
    col: int
    x: float
    y: float
    radius: float

    def name(self, *, with_size: bool = False) -> str:
        """``red circle`` or ``small red circle``."""
        return (
            f"{self.size} {self.colour} {self.shape}"
            if with_size
            else f"{self.colour} {self.shape}"
        )


@dataclass(frozen=True)
class Scene:
    """Objects on a grid, with the geometry needed to render and to ask about them."""

    image_size: int
    grid: int
    objects: tuple[SceneObject, ...]

    @property
    def cell_size(self) -> int:
        return self.image_size // self.grid

    def where(self, **attrs: str | int) -> list[SceneObject]:
        """Objects whose attributes equal all of ``attrs`` (``colour="red"``), in reading order."""
        return [o for o in self.objects if all(getattr(o, k) == v for k, v in attrs.items())]

    def at(self, row: int, col: int) -> SceneObject | None:
        return next((o for o in self.objects if o.row == row and o.col == col), None)

    def ref(self, obj: SceneObject) -> str:
        """Shortest unique referring expression: ``the red circle`` or ``the small red circle``."""
        if len(self.where(colour=obj.colour, shape=obj.shape)) == 1:
            return f"the {obj.name()}"
        return f"the {obj.name(with_size=True)}"

    def to_metadata(self) -> dict[str, object]:
        """The scene graph as JSON values."""
        return {
            "image_size": self.image_size,
            "grid": self.grid,
            "cell_size": self.cell_size,
            "indexing": "row/col are 0-based from the top-left cell; question text counts from 1",
            "objects": [dict(vars(o)) for o in self.objects],  # asdict is 10x slower
        }


@dataclass(frozen=True)
class SceneOptions:
    """How scenes are drawn (recorded in every decomposition's provenance parameters)."""

    image_size: int = 128
    grid: int = 4
    jitter: float = 0.0
    min_objects: int = 3
    max_objects: int = 7

    def check(self) -> None:
        if not 2 <= self.grid <= 16:
            raise UsageError(f"--grid must be between 2 and 16, got {self.grid}")
        if self.image_size % self.grid or self.image_size // self.grid < 8:
            raise UsageError(
                f"--image-size {self.image_size} must be a multiple of --grid "
                f"{self.grid} with cells of at least 8 pixels"
            )
        if not 0.0 <= self.jitter <= 1.0:
            raise UsageError(f"--jitter must be between 0 and 1, got {self.jitter}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise UsageError(
                f"objects per scene must satisfy 1 <= min ({self.min_objects}) <= "
                f"max ({self.max_objects})"
            )


def sample_scene(
    rng: np.random.Generator,
    *,
    image_size: int = 128,
    grid: int = 4,
    min_objects: int = 3,
    max_objects: int = 7,
    jitter: float = 0.0,
    distractor_rate: float = 0.5,
) -> Scene:
    """Place between ``min_objects`` and ``max_objects`` distinct objects in distinct cells.

    With probability ``distractor_rate`` each object after the first copies the colour or the shape
    of an earlier one, so referring to an object needs more than one attribute and counting by one
    attribute meets look-alikes. ``jitter`` (0..1) moves objects off their cell centre by up to that
    fraction of the free margin.
    """
    cells = grid * grid
    most = min(max_objects, cells, len(COLOURS) * len(SHAPES) * len(SIZES))
    n = int(rng.integers(min(min_objects, most), most + 1))
    positions = rng.permutation(cells)[:n]
    positions.sort()  # objects in reading order: ids follow rows, then columns
    kinds: list[tuple[str, str, str]] = []
    while len(kinds) < n:
        kind = _sample_kind(rng, kinds, distractor_rate)
        if kind not in kinds:
            kinds.append(kind)
    cell = image_size // grid
    objects = []
    for index, (position, (colour, shape, size)) in enumerate(zip(positions, kinds, strict=True)):
        row, col = divmod(int(position), grid)
        radius = SIZES[size] * cell / 2
        slack = max(cell / 2 - radius - 1, 0.0) * jitter
        dx, dy = rng.uniform(-slack, slack, size=2) if slack > 0 else (0.0, 0.0)
        x = round((col + 0.5) * cell + float(dx), 2)
        y = round((row + 0.5) * cell + float(dy), 2)
        objects.append(SceneObject(index, colour, shape, size, row, col, x, y, round(radius, 2)))
    return Scene(image_size=image_size, grid=grid, objects=tuple(objects))


def _sample_kind(
    rng: np.random.Generator, earlier: list[tuple[str, str, str]], distractor_rate: float
) -> tuple[str, str, str]:
    i_colour, i_shape, i_size = rng.integers(0, (len(COLOURS), len(SHAPES), len(SIZE_ORDER)))
    colour, shape, size = _COLOUR_NAMES[i_colour], SHAPES[i_shape], SIZE_ORDER[i_size]
    if earlier and rng.random() < distractor_rate:
        model = earlier[int(rng.integers(len(earlier)))]
        if rng.random() < 0.5:
            colour = model[0]
        else:
            shape = model[1]
    return colour, shape, size


@cache
def _unit_polygon(sides: int) -> tuple[tuple[float, float], ...]:
    """Vertices of a regular polygon of circumradius 1, one vertex up (squares sit flat)."""
    start = -math.pi / 2 + (math.pi / 4 if sides == 4 else 0.0)
    return tuple(
        (math.cos(start + 2 * math.pi * k / sides), math.sin(start + 2 * math.pi * k / sides))
        for k in range(sides)
    )


def _draw(draw: ImageDraw.ImageDraw, obj: SceneObject) -> None:
    fill = COLOURS[obj.colour]
    if obj.shape == "circle":
        r = obj.radius
        draw.ellipse((obj.x - r, obj.y - r, obj.x + r, obj.y + r), fill=fill)
        return
    sides = _POLYGON_SIDES[obj.shape]
    # Squares are inscribed in the same circle, so scale them up to look as big as the others.
    r = obj.radius * (math.sqrt(2) if sides == 4 else 1.0) * (0.8 if sides == 4 else 1.0)
    draw.polygon([(obj.x + r * u, obj.y + r * v) for u, v in _unit_polygon(sides)], fill=fill)


def render(scene: Scene) -> Image.Image:
    """Draw the scene as an RGB image."""
    image = Image.new("RGB", (scene.image_size, scene.image_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        _draw(draw, obj)
    return image


def render_png(scene: Scene) -> bytes:
    """The scene as PNG bytes (deterministic: the same scene always gives the same bytes)."""
    buffer = io.BytesIO()
    render(scene).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()
