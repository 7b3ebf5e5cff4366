"""Convert the authors' released CogVision JSON + image folder into the published layout.

The release (a JSON list of ``{question, answer, generated: [{subquestion, answer,
cognitive_skill}], image}``) is read by the sources stage's importer
(``cogvision.sources.cogjson``), which maps labels through the taxonomy's aliases and copies the
images; items it cannot import become failure records (``keep_going``). The resulting
decompositions.jsonl is then published like any other input, and the failures are carried into the
published ``failures.jsonl`` and counted in the card.
"""

from __future__ import annotations

from pathlib import Path

from cogvision.artifacts import read_jsonl
from cogvision.errors import ArtifactError
from cogvision.schema import FailureRecord


def convert_cogvision_json(json_path: str | Path, image_root: str | Path, work_dir: str | Path, *,
                           taxonomy: str = "cogvision", dataset: str | None = None,
                           license: str = "unknown", model: str | None = None,
                           ) -> tuple[Path, list[FailureRecord]]:
    """Import the release into ``work_dir``; return its decompositions.jsonl and the failures.

    Args:
        json_path: The release's JSON file (or JSONL).
        image_root: Folder the release's image paths are relative to.
        work_dir: Folder for the imported records and images (the publish input).
        taxonomy: Taxonomy of the labels.
        dataset: Source name recorded for items that do not name one (default: the file's stem).
        license: Licence recorded for items that do not name one.
        model: Model that produced the release's decompositions, if known.
    """
    from cogvision.sources.cogjson import import_cogvision_json

    result = import_cogvision_json(json_path, work_dir, taxonomy=taxonomy, image_root=image_root,
                                   dataset=dataset, license=license, model=model, keep_going=True)
    if result.decompositions is None:
        raise ArtifactError(f"{json_path}: no item could be imported (see {result.failures})")
    failures = []
    if result.failures is not None:
        failures = read_jsonl(result.failures, FailureRecord, allow_empty=True)
    return result.decompositions, failures
