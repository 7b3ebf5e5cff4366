"""Deterministic train/test splits shared by publish and the harness.

Items are grouped so that all questions about the same image land in the same split (grouping
key: the image's sha256, or the question id for text-only items). Within each source, groups are
ordered by a seeded hash and the first ``round(test_fraction * n_groups)`` become ``test``:
stratified by source, independent of input order, and stable when unrelated items are added.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from cogvision.schema.ids import content_hash
from cogvision.schema.records import Decomposition, SourceQuestion

TRAIN, TEST = "train", "test"


def group_key(question: SourceQuestion) -> str:
    return question.image.sha256 if question.image is not None else question.id


def assign_splits(
    questions: Iterable[SourceQuestion], *, test_fraction: float = 0.2, seed: int = 0
) -> dict[str, str]:
    """Map question id -> "train" | "test".

    Groups are formed across sources (an image shared by two sources is one group); a group is
    stratified under the alphabetically first source that uses it.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    members: dict[str, list[str]] = defaultdict(list)
    group_source: dict[str, str] = {}
    for question in questions:
        key = group_key(question)
        members[key].append(question.id)
        dataset = question.source.dataset
        group_source[key] = min(dataset, group_source.get(key, dataset))
    by_source: dict[str, list[str]] = defaultdict(list)
    for key, dataset in group_source.items():
        by_source[dataset].append(key)
    splits: dict[str, str] = {}
    for keys in by_source.values():
        ordered = sorted(keys, key=lambda key: content_hash([seed, key]))
        n_test = round(test_fraction * len(ordered))
        for rank, key in enumerate(ordered):
            for qid in members[key]:
                splits[qid] = TEST if rank < n_test else TRAIN
    return splits


def split_decompositions(
    decompositions: Iterable[Decomposition], *, test_fraction: float = 0.2, seed: int = 0
) -> dict[str, list[Decomposition]]:
    """Decompositions partitioned into {"train": [...], "test": [...]} by their question's split."""
    items = list(decompositions)
    splits = assign_splits([d.question for d in items], test_fraction=test_fraction, seed=seed)
    result: dict[str, list[Decomposition]] = {TRAIN: [], TEST: []}
    for item in items:
        result[splits[item.question.id]].append(item)
    return result
