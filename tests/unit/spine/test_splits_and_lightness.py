from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from cogvision.schema import TEST, TRAIN, SourceQuestion, SourceRef, assign_splits
from cogvision.schema.export import json_schemas, stale_schemas

REPO = Path(__file__).resolve().parents[3]


def _questions(
    n: int, dataset: str, shared_images: int = 0, offset: int = 0
) -> list[SourceQuestion]:
    from cogvision.schema import ImageRef

    out = []
    for i in range(n):
        sha = f"{offset + (i % shared_images if shared_images else i):064x}"
        image = ImageRef(
            path=f"images/{sha[:8]}.png", sha256=sha, width=4, height=4, bytes=10, format="PNG"
        )
        out.append(
            SourceQuestion(
                question=f"q{i}?",
                answer="a",
                image=image,
                license="x",
                source=SourceRef(dataset=dataset, split="train", index=str(i)),
            )
        )
    return out


def test_splits_are_deterministic_stratified_and_order_independent() -> None:
    questions = _questions(100, "a") + _questions(50, "b", offset=1000)
    splits = assign_splits(questions, test_fraction=0.2, seed=3)
    assert splits == assign_splits(list(reversed(questions)), test_fraction=0.2, seed=3)
    per_source = Counter((q.source.dataset, splits[q.id]) for q in questions)
    assert per_source[("a", TEST)] == 20 and per_source[("b", TEST)] == 10
    assert splits != assign_splits(questions, test_fraction=0.2, seed=4)


def test_same_image_never_in_two_splits() -> None:
    questions = _questions(90, "a", shared_images=30)
    splits = assign_splits(questions, test_fraction=0.3, seed=0)
    by_image: dict[str, set[str]] = {}
    for q in questions:
        assert q.image is not None
        by_image.setdefault(q.image.sha256, set()).add(splits[q.id])
    assert all(len(s) == 1 for s in by_image.values())
    assert set(splits.values()) == {TRAIN, TEST}


def test_schema_package_imports_nothing_heavy() -> None:
    code = (
        "import sys, cogvision.schema, cogvision.artifacts, cogvision.images, cogvision.config; "
        "heavy = {'torch', 'transformers', 'openai', 'datasets', 'label_studio_sdk', 'pyarrow'}; "
        "print(sorted(heavy & set(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.replace("'", '"')) == []


def test_checked_in_json_schemas_are_current() -> None:
    stale = stale_schemas(REPO / "schemas")
    assert stale == [], f"run `cogvision schema export --out schemas`; stale: {stale}"
    assert set(json_schemas()) == {p.name for p in (REPO / "schemas").glob("*.schema.json")}


def test_image_shared_by_two_sources_stays_in_one_split() -> None:
    questions = _questions(40, "a") + _questions(40, "b")  # same 40 image hashes in both sources
    for seed in range(5):
        splits = assign_splits(questions, test_fraction=0.5, seed=seed)
        by_image: dict[str, set[str]] = {}
        for q in questions:
            assert q.image is not None
            by_image.setdefault(q.image.sha256, set()).add(splits[q.id])
        assert all(len(s) == 1 for s in by_image.values())
        assert Counter(splits.values())[TEST] == 40
