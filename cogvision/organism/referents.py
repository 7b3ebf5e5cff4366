"""Which objects each step of a chain is about: the targets of the organism's supervised look-up
losses (``cogvision.organism.lookup``).

For every answer whose question names one object, a sequence lists the token that predicts the
answer and the image token of that object (``answer_lookups``); those are kind ``NAMED``. Kind
``CHAINED`` look-ups (``step_referents``) follow the chain of steps instead: the object "it" or
"that hexagon" stands for, the object next to it, the object whose cell the answer gives, and each
object of a listed answer ("What shapes are the red objects?"). Kind ``COUNTED`` is the set of
objects a count question counts, and kind ``TALLIED`` every image token a count could tally.
Kinds ``MEMBERS``, ``MEMBER_TALLY``, ``MEMBER_COUNTED`` and ``LISTED`` break "How many of those
colours are <colours>?" into steps (the colour words the question names, their counts, the sum).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import cast

import torch

from cogvision.harness.data import SubItem
from cogvision.sources.synth.scenes import Scene, SceneObject

ALL_COLOURS = "What colours do the objects in the image have, in reading order?"
"""The benchmark's colour-list step (its answer lists every object's colour in reading order)."""
_CELL_REF = re.compile(r"\bobject at row (\d+), column (\d+)")


@lru_cache(maxsize=65536)
def referent_cell(question: str, scene: Scene) -> int | None:
    """Cell (reading order) of the one object ``question`` names, by its referring expression
    ("the red circle", "the small red circle") or its cell ("the object at row 2, column 3");
    None if it names none, several, or only by anaphora ("it", "that hexagon")."""
    cells = {(int(m[1]) - 1) * scene.grid + int(m[2]) - 1 for m in _CELL_REF.finditer(question)}
    for o in scene.objects:
        phrases = [o.name(with_size=True)]
        if scene.ref(o) == f"the {o.name()}":
            phrases.append(o.name())
        if any(re.search(rf"\bthe {p}\b", question) for p in phrases):
            cells.add(o.row * scene.grid + o.col)
    return cells.pop() if len(cells) == 1 else None


NAMED, CHAINED, COUNTED, TALLIED, MEMBERS, MEMBER_TALLY, MEMBER_COUNTED, LISTED = range(8)
"""Look-up kinds: the object a question names; an object reached through the chain of steps;
the set of objects a count is about (with the sequence's first token as a sink); every image token
of a count's scene (uniform attention over them sums each object's features, a histogram whose
entries grow linearly with the count); from the answer of "How many of those colours are
<colours>?", the colour words the question names; and from each of those words, every image token
(its tally: the word's own colour count is one entry of that histogram); and from each of
those words, the sink and the image token of each object of its colour (as ``COUNTED``: the
word's count is its number of keys less one); and the ``COUNTED`` look-ups of those counts
again (their answers, for a read-out from the members head)."""

_LIST_COUNT = re.compile(r"How many of those colours are (.+)\?")
_AT_CELL = re.compile(r"\bat row (\d+), column (\d+)")
_ANSWER_CELL = re.compile(r"row (\d+), column (\d+)")
_NEXT_TO_IT = {f"{words} it": step for words, step in (
    ("directly to the left of", (0, -1)), ("directly to the right of", (0, 1)),
    ("directly above", (-1, 0)), ("directly below", (1, 0)))}
_THAT = re.compile(r"\bthat (\w+)\?")
_SHAPES_OF = re.compile(r"What shapes are the (\w+) objects\?")
_COUNTS = (
    (re.compile(r"How many (\w+) objects are there\?"), lambda o, m: o.colour == m[1]),
    (re.compile(r"How many (\w+)s are there\?"), lambda o, m: o.shape == m[1]),
    (re.compile(r"How many (\w+) (\w+)s are in the image\?"),
     lambda o, m: (o.colour, o.shape) == (m[1], m[2])),
    (_LIST_COUNT, lambda o, m: o.colour in m[1].split(", ")),
    (re.compile(r"How many objects are in (row|column)s? (\d+)(?: to (\d+))?\?"),
     lambda o, m: int(m[2]) <= 1 + (o.row if m[1] == "row" else o.col) <= int(m[3] or m[2])),
)
"""Count questions and which objects each counts (the regex match is the second argument)."""


def _cell(scene: Scene, row: int, col: int) -> int | None:
    """Reading-order cell of (0-based) row, col if an object is there."""
    inside = 0 <= row < scene.grid and 0 <= col < scene.grid
    return row * scene.grid + col if inside and scene.at(row, col) is not None else None


def _found(cell: int | None) -> tuple[int, ...]:
    return () if cell is None else (cell,)


def _cells(objects: Iterable[SceneObject], scene: Scene) -> tuple[int, ...]:
    """Reading-order cells of ``objects``."""
    return tuple(o.row * scene.grid + o.col for o in objects)


def _counted(question: str, answer: str, scene: Scene) -> tuple[int, ...] | None:
    """Cells of the objects a count question counts, if it is one and the answer agrees."""
    for pattern, counts in _COUNTS:
        if m := pattern.fullmatch(question):
            cells = _cells((o for o in scene.objects if counts(o, m)), scene)
            return cells if answer == str(len(cells)) else None
    return None


def _listed(answer: str, objects: Sequence[SceneObject], scene: Scene) -> tuple[int, ...]:
    cells = _cells(objects, scene)
    return cells if answer != "none" and len(answer.split(", ")) == len(cells) else ()


@lru_cache(maxsize=65536)
def step_referents(steps: tuple[tuple[str, str], ...], scene: Scene
                   ) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """Per (question, answer) step of a chain: its look-up kind and the cells of the objects its
    answer is about, one per element of a listed answer (empty: none).

    ``NAMED``: the one object the question names (``referent_cell``). ``CHAINED``, in order: each
    object of "What colours do the objects in the image have, in reading order?" and "What shapes
    are the <colour> objects?"; the object at the cell the answer gives ("Where is the other
    triangle?" -> "row 2, column 3"); the object at the one cell the question gives ("the
    triangle at row 2, column 3"); the object directly left of / right of / above / below "it"
    (the previous step's object); and the previous step's object for "that <shape>?".
    ``COUNTED``: every object a count question counts ("How many red objects are there?", "How
    many of those colours are red, yellow, blue?", "How many objects are in rows 1 to 2?"),
    possibly none.
    """
    out: list[tuple[int, tuple[int, ...]]] = []
    previous: int | None = None
    for question, answer in steps:
        kind, cells = CHAINED, cast(tuple[int, ...], ())
        named = referent_cell(question, scene)
        at = [_cell(scene, int(r) - 1, int(c) - 1) for r, c in _AT_CELL.findall(question)]
        answer_cell = _ANSWER_CELL.fullmatch(answer)
        next_to = [step for words, step in _NEXT_TO_IT.items() if words in question]
        that = _THAT.search(question)
        shapes_of = _SHAPES_OF.fullmatch(question)
        counted = _counted(question, answer, scene)
        if named is not None:
            kind, cells = NAMED, (named,)
        elif counted is not None:
            kind, cells = COUNTED, counted
        elif question == ALL_COLOURS:
            cells = _listed(answer, scene.objects, scene)
        elif shapes_of:
            cells = _listed(answer, scene.where(colour=shapes_of[1]), scene)
        elif answer_cell:
            cells = _found(_cell(scene, int(answer_cell[1]) - 1, int(answer_cell[2]) - 1))
        elif len(at) == 1:
            cells = _found(at[0])
        elif next_to and previous is not None:
            (d_row, d_col), = next_to
            cells = _found(_cell(scene, previous // scene.grid + d_row,
                                 previous % scene.grid + d_col))
        elif that and previous is not None:
            obj = scene.at(previous // scene.grid, previous % scene.grid)
            cells = (previous,) if obj is not None and obj.shape == that[1] else ()
        out.append((kind, cells))
        previous = cells[0] if len(cells) == 1 and kind != COUNTED else None
    return tuple(out)


def _member_tokens(listed: re.Match[str], question_at: int, starts: torch.Tensor
                   ) -> list[tuple[int, str]]:
    """(token position, colour) of each colour word a matched "How many of those colours are
    <colours>?" names (the question starts at character ``question_at``)."""
    tokens, at = [], question_at + listed.start(1)
    for word in listed[1].split(", "):
        token = int(torch.searchsorted(starts, at))
        if token >= len(starts) or int(starts[token]) != at:
            raise ValueError(f"colour word {word!r} of {listed[0]!r} does not start a token")
        tokens.append((token, word))
        at += len(word) + 2
    return tokens


def answer_lookups(answer_starts: Sequence[int], starts: torch.Tensor, ids: torch.Tensor,
                   image_token_id: int, sub: SubItem, scene: Scene,
                   question_starts: Sequence[int] | None = None
                   ) -> tuple[tuple[int, int, int], ...]:
    """(query, key, kind) token positions: for every answer of the sequence (quoted ones and the
    final one, starting at characters ``answer_starts``) about objects (``step_referents``), the
    token that predicts the answer's first token (for a listed answer, each element's) and the
    image token of that element's object (``organism.lookup``). A count's answer has one look-up
    per counted object and one from the same query to the sequence's first token (position 0, the
    sink: the head's weight on it tells the count), and kind ``TALLIED`` look-ups from the same
    query to every image token. With ``question_starts`` (each step's question's first
    character), a count "How many of those colours are <colours>?" also has kind ``MEMBERS``
    look-ups from its query to each colour word of the question, and kinds ``MEMBER_TALLY``
    (to every image token) and ``MEMBER_COUNTED`` (to the sink and to each object of that
    colour) from each of those words. ``starts``: each token's first
    character."""
    image_at = int((ids == image_token_id).nonzero()[0, 0])
    steps = (*sub.context, (sub.question, sub.answer))
    out: list[tuple[int, int, int]] = []
    asked = question_starts if question_starts is not None else [None] * len(steps)
    for (question, answer), at, question_at, (kind, cells) in zip(
            steps, answer_starts, asked, step_referents(steps, scene), strict=True):
        if kind == COUNTED:
            query = int(torch.searchsorted(starts, at)) - 1
            out.extend((query, key, kind) for key in (0, *(image_at + cell for cell in cells)))
            out.extend((query, image_at + cell, TALLIED) for cell in range(scene.grid ** 2))
            listed = _LIST_COUNT.fullmatch(question)
            if listed and question_at is not None:
                out.extend((query, key, LISTED)
                           for key in (0, *(image_at + cell for cell in cells)))
                for word, colour in _member_tokens(listed, question_at, starts):
                    out.append((query, word, MEMBERS))
                    out.extend((word, image_at + cell, MEMBER_TALLY)
                               for cell in range(scene.grid ** 2))
                    out.append((word, 0, MEMBER_COUNTED))
                    out.extend((word, image_at + cell, MEMBER_COUNTED)
                               for cell in _cells(scene.where(colour=colour), scene))
            continue
        element_at = at
        elements = answer.split(", ") if len(cells) > 1 else [answer] if cells else []
        for element, cell in zip(elements, cells, strict=True):
            first = int(torch.searchsorted(starts, element_at))
            out.append((first - 1, image_at + cell, kind))
            element_at += len(element) + 2
    return tuple(out)
