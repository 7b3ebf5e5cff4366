"""JSON Schema export of the records (checked in under ``schemas/``; a test fails when stale)."""

from __future__ import annotations

import json
from pathlib import Path

from cogvision.schema.records import RECORD_TYPES


def json_schemas() -> dict[str, str]:
    """File name -> JSON text for every record type."""
    return {
        f"{name}.schema.json": json.dumps(
            model.model_json_schema(mode="validation"), indent=2, sort_keys=True
        )
        + "\n"
        for name, model in RECORD_TYPES.items()
    }


def export_json_schemas(out_dir: str | Path) -> list[Path]:
    from cogvision.artifacts import write_text_atomic

    out = Path(out_dir)
    written = []
    for name, text in json_schemas().items():
        write_text_atomic(out / name, text)
        written.append(out / name)
    return written


def stale_schemas(out_dir: str | Path) -> list[str]:
    """Names of files in ``out_dir`` that are missing or differ from the current export."""
    out = Path(out_dir)
    return [
        name
        for name, text in json_schemas().items()
        if not (out / name).is_file() or (out / name).read_text() != text
    ]
