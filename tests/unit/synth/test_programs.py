"""Every template compiles to valid records; answers recomputed independently from the scene."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cogvision.schema import Decomposition, SourceQuestion, get_taxonomy
from cogvision.sources.synth import (
    KIND_KEYS,
    PROGRAM_VERSION,
    TEMPLATES,
    SceneOptions,
    generate_program,
    render_png,
    to_records,
)

ALL = [(variant, t.__name__) for variant, templates in TEMPLATES.items() for t in templates]
SIDES = {"circle": 0, "triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}
NAME = r"the (?:(small|medium|large) )?(\w+) (\w+)"


def objects(question: SourceQuestion) -> list[dict]:
    return question.metadata["scene"]["objects"]


def find(question: SourceQuestion, size: str | None, colour: str, shape: str) -> dict:
    hits = [
        o
        for o in objects(question)
        if o["colour"] == colour and o["shape"] == shape and (size is None or o["size"] == size)
    ]
    assert len(hits) == 1, f"referring expression is not unique: {size} {colour} {shape}"
    return hits[0]


def items_of(compiled, variant: str, template: str):
    return [(q, d) for _, _, q, d in compiled[(variant, template)]]


@pytest.mark.parametrize(("variant", "template"), ALL)
def test_every_template_gives_valid_records(compiled, variant, template):
    taxonomy = get_taxonomy(variant)
    for _scene, program, question, decomposition in compiled[(variant, template)]:
        # A round trip through JSON re-runs every validator (ids, labels, depends_on, repeats).
        again = Decomposition.model_validate_json(decomposition.model_dump_json())
        assert again == decomposition and again.id == decomposition.id
        assert SourceQuestion.model_validate_json(question.model_dump_json()).id == question.id
        subs = decomposition.subquestions
        assert 2 <= len(subs) <= 8
        assert all(s.function in taxonomy.names for s in subs)
        assert all(d < s.index for s in subs for d in s.depends_on)
        # Sequential dependence: every step after the first is used by a later step or is the last.
        used = {d for s in subs for d in s.depends_on}
        assert all(s.index in used for s in subs[:-1]), [s.question for s in subs]
        assert subs[-1].answer == question.answer
        labels = [
            get_taxonomy(variant).canonical(KIND_KEYS[variant][s.kind]) for s in program.steps
        ]
        assert [s.function for s in subs] == labels
        if question.choices is not None:
            assert question.answer in question.choices
            assert subs[-1].function == "Decision-Making"
        assert decomposition.provenance.prompt_version == PROGRAM_VERSION
        assert question.metadata["template"] == template
        targets = set(question.metadata["targets"])
        assert targets.isdisjoint(question.metadata["distractors"])


def test_both_variants_cover_their_whole_taxonomy(compiled):
    for variant in TEMPLATES:
        seen = {
            s.function
            for (v, _), items in compiled.items()
            if v == variant
            for *_, d in items
            for s in d.subquestions
        }
        assert seen == set(get_taxonomy(variant).names), variant


def test_multiple_choice_and_open_answers_both_occur(compiled):
    for variant in TEMPLATES:
        kinds = {
            q.choices is None
            for (v, _), items in compiled.items()
            if v == variant
            for _, _, q, _ in items
        }
        assert kinds == {True, False}


def test_count_colour_answer_and_labels(compiled):
    for question, decomposition in items_of(compiled, "cogvision", "count_colour"):
        colour = re.fullmatch(r"How many (\w+) objects are in the image\?", question.question)[1]
        assert question.answer == str(sum(o["colour"] == colour for o in objects(question)))
        assert [s.function for s in decomposition.subquestions] == [
            "Language Information Extraction and Understanding",
            "High-level Visual Reception",
            "Math Reasoning",
        ]


def test_compare_counts_answer(compiled):
    for question, decomposition in items_of(compiled, "cogvision", "compare_counts"):
        match = re.fullmatch(
            r"Are there more (\w+) objects than (\w+)s in the image\?", question.question
        )
        n_colour = sum(o["colour"] == match[1] for o in objects(question))
        n_shape = sum(o["shape"] == match[2] for o in objects(question))
        assert question.answer == ("yes" if n_colour > n_shape else "no")
        assert decomposition.subquestions[0].answer == str(n_colour)
        assert decomposition.subquestions[-1].function == "Decision-Making"


def test_total_sides_answer(compiled):
    for question, decomposition in items_of(compiled, "cogvision", "total_sides"):
        colour = re.match(r"How many straight sides do the (\w+) objects", question.question)[1]
        total = sum(SIDES[o["shape"]] for o in objects(question) if o["colour"] == colour)
        assert question.answer == str(total)
        recall = [s for s in decomposition.subquestions if s.function == "Visual Knowledge Recall"]
        assert recall and all(s.answer == str(SIDES[s.question.split()[-2]]) for s in recall)


def test_neighbour_colour_answer(compiled):
    offsets = {
        "to the right of": (0, 1),
        "to the left of": (0, -1),
        "above": (-1, 0),
        "below": (1, 0),
    }
    for variant in TEMPLATES:
        for question, decomposition in items_of(compiled, variant, "neighbour_colour"):
            match = re.fullmatch(
                rf"What colour is the object directly (.+?) {NAME}\?", question.question
            )
            anchor = find(question, match[2], match[3], match[4])
            d_row, d_col = offsets[match[1]]
            (other,) = [
                o
                for o in objects(question)
                if o["row"] == anchor["row"] + d_row and o["col"] == anchor["col"] + d_col
            ]
            assert question.answer == other["colour"]
            expected = (
                "Spatial Perception" if variant == "cogvsr" else "High-level Visual Reception"
            )
            assert decomposition.subquestions[1].function == expected


def test_busiest_row_answer(compiled):
    for question, _ in items_of(compiled, "cogvision", "busiest_row"):
        counts = [sum(o["row"] == r for o in objects(question)) for r in range(4)]
        assert counts.count(max(counts)) == 1
        assert question.answer == str(counts.index(max(counts)) + 1)


def test_left_or_above_answer_and_labels(compiled):
    for question, decomposition in items_of(compiled, "cogvsr", "left_or_above"):
        match = re.fullmatch(rf"Is {NAME} (to the left of|above) {NAME}\?", question.question)
        first, second = find(question, *match.group(1, 2, 3)), find(question, *match.group(5, 6, 7))
        axis = "col" if match[4] == "to the left of" else "row"
        assert question.answer == ("yes" if first[axis] < second[axis] else "no")
        assert [s.function for s in decomposition.subquestions] == [
            "Spatial Perception",
            "Spatial Perception",
            "Relational Reasoning",
            "Decision-Making",
        ]


def test_closer_to_answer(compiled):
    for question, _ in items_of(compiled, "cogvsr", "closer_to"):
        match = re.match(
            rf"Which object is closer to {NAME}: {NAME} or {NAME}\?", question.question
        )
        anchor, a, b = (find(question, *match.group(i, i + 1, i + 2)) for i in (1, 4, 7))

        def dist(o: dict, anchor: dict = anchor) -> int:
            return abs(o["row"] - anchor["row"]) + abs(o["col"] - anchor["col"])

        winner = a if dist(a) < dist(b) else b
        assert dist(a) != dist(b)
        assert question.answer == f"{winner['colour']} {winner['shape']}" or question.answer == (
            f"{winner['size']} {winner['colour']} {winner['shape']}"
        )


def test_count_before_answer(compiled):
    for question, _ in items_of(compiled, "cogvsr", "count_before"):
        match = re.fullmatch(
            rf"How many objects are (to the left of|above) {NAME}\?", question.question
        )
        anchor = find(question, *match.group(2, 3, 4))
        axis = "col" if match[1] == "to the left of" else "row"
        assert question.answer == str(sum(o[axis] < anchor[axis] for o in objects(question)))


def test_thing_above_below_uses_knowledge_recall(compiled):
    for question, decomposition in items_of(compiled, "cogvsr", "thing_above_below"):
        assert decomposition.subquestions[0].function == "Knowledge Recall"
        colour = decomposition.subquestions[0].answer
        (target,) = [o for o in objects(question) if o["colour"] == colour]
        match = re.search(rf"below {NAME}\?$", question.question)
        other = find(question, *match.group(1, 2, 3))
        assert question.answer == ("above" if target["row"] < other["row"] else "below")


def test_colour_group_answer(compiled):
    groups = {"primary colours of paint": {"red", "yellow", "blue"},
              "secondary colours of paint": {"green", "orange", "purple"},
              "warm colours": {"red", "orange", "yellow"}}
    for question, decomposition in items_of(compiled, "cogvision", "colour_group"):
        group = re.fullmatch(r"How many objects in the image have one of the (.+)\?",
                             question.question)[1]
        assert question.answer == str(sum(o["colour"] in groups[group]
                                          for o in objects(question)))
        assert decomposition.subquestions[0].function == "Language Knowledge Recall"


def test_locked_prize_answer_is_deduced_by_elimination(compiled):
    for question, decomposition in items_of(compiled, "cogvision", "locked_prize"):
        colour = re.match(r"Only (\w+) objects can be opened", question.question)[1]
        cells = [tuple(int(x) - 1 for x in re.findall(r"\d+", choice))
                 for choice in question.choices]
        openable = [c for c in cells
                    if any((o["row"], o["col"]) == c and o["colour"] == colour
                           for o in objects(question))]
        assert len(openable) == 1
        assert question.answer == f"row {openable[0][0] + 1}, column {openable[0][1] + 1}"
        assert [s.function for s in decomposition.subquestions][-2:] == ["Inference",
                                                                         "Decision-Making"]


def test_defined_term_answer(compiled):
    answers = set()
    for question, _ in items_of(compiled, "cogvision", "defined_term"):
        match = re.fullmatch(r"Call every large (\w+) in the image a 'key'\. Is the object at "
                             r"row (\d), column (\d) a key\?", question.question)
        (target,) = [o for o in objects(question)
                     if (o["row"], o["col"]) == (int(match[2]) - 1, int(match[3]) - 1)]
        expected = target["shape"] == match[1] and target["size"] == "large"
        assert question.answer == ("yes" if expected else "no")
        answers.add(question.answer)
    assert answers == {"yes", "no"}


def test_most_common_colour_answer(compiled):
    for question, decomposition in items_of(compiled, "cogvision", "most_common_colour"):
        counts = {c: sum(o["colour"] == c for o in objects(question)) for c in question.choices}
        assert question.answer == max(counts, key=counts.get)
        assert sorted(counts.values()).count(counts[question.answer]) == 1
        assert len(decomposition.subquestions) == 6


@settings(max_examples=40, deadline=None)
@given(variant=st.sampled_from(sorted(TEMPLATES)), seed=st.integers(0, 2**32 - 1),
       grid=st.integers(2, 8), cell=st.sampled_from([8, 16, 32]),
       jitter=st.floats(0.0, 1.0), index=st.integers(0, 10**6))
def test_any_seed_and_geometry_compiles_to_valid_records(variant, seed, grid, cell, jitter, index):
    options = SceneOptions(image_size=grid * cell, grid=grid, jitter=jitter)
    scene, program = generate_program(variant, index, np.random.default_rng([seed, index]),
                                      options, TEMPLATES[variant])
    question, decomposition = to_records(variant, scene, program, render_png(scene), seed=seed,
                                         index=index, options=options)
    again = Decomposition.model_validate_json(decomposition.model_dump_json())
    assert again.id == decomposition.id and again.question.id == question.id
    assert 2 <= len(again.subquestions) <= 8
    assert again.subquestions[-1].answer == question.answer
    for obj in scene.objects:
        assert 0 <= obj.row < grid and 0 <= obj.col < grid
