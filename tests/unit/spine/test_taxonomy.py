from __future__ import annotations

import pytest

from cogvision.errors import UnknownLabelError
from cogvision.schema import TAXONOMY_NAMES, get_taxonomy


@pytest.mark.parametrize("name", TAXONOMY_NAMES)
def test_each_taxonomy_has_eight_functions_with_unique_keys(name: str) -> None:
    taxonomy = get_taxonomy(name)
    assert len(taxonomy.functions) == 8
    assert len({fn.key for fn in taxonomy.functions}) == 8
    for fn in taxonomy.functions:
        assert taxonomy.canonical(fn.name) == fn.name
        assert taxonomy.canonical(fn.key) == fn.name
        assert fn.definition.strip()


def test_paper_table_alias_maps_to_canonical_name() -> None:
    taxonomy = get_taxonomy("cogvision")
    assert taxonomy.canonical("Semantic Understanding") == (
        "Language Information Extraction and Understanding"
    )
    assert taxonomy.canonical("  decision making ") == "Decision-Making"
    assert taxonomy.canonical("MATH reasoning") == "Math Reasoning"


def test_unknown_label_lists_valid_names() -> None:
    with pytest.raises(UnknownLabelError) as info:
        get_taxonomy("cogvision").canonical("Telepathy")
    message = str(info.value)
    assert "'Telepathy'" in message
    assert "Low-level Visual Reception" in message and "Decision-Making" in message


@pytest.mark.parametrize(
    "stray", ["Induction", "Self-Evaluation", "Task Comprehension", "Lexical Knowledge"]
)
def test_cogqa_stray_labels_are_rejected_with_reason(stray: str) -> None:
    with pytest.raises(UnknownLabelError, match="stray label"):
        get_taxonomy("cogqa").canonical(stray)


def test_unknown_taxonomy_is_an_error() -> None:
    with pytest.raises(UnknownLabelError, match="cogvision, cogvsr, cogqa"):
        get_taxonomy("nope")


def test_cogvsr_has_spatial_functions() -> None:
    names = get_taxonomy("cogvsr").names
    assert "Spatial Perception" in names and "Relational Reasoning" in names
