"""The spine: Pydantic records, taxonomies and ids shared by every stage.

Imports nothing heavy (no torch, no LLM SDK); a test checks that in a fresh interpreter.
"""

from cogvision.schema.ids import canonical_json, content_hash, make_id, sha256_bytes
from cogvision.schema.records import (
    RECORD_TYPES,
    SCHEMA_VERSION,
    Decomposition,
    FailureRecord,
    FileDigest,
    ImageRef,
    Manifest,
    Provenance,
    Record,
    ReviewOutcome,
    SourceQuestion,
    SourceRef,
    SubQuestion,
    Verification,
)
from cogvision.schema.splits import TEST, TRAIN, assign_splits, split_decompositions
from cogvision.schema.taxonomy import TAXONOMY_NAMES, Function, Taxonomy, get_taxonomy

__all__ = [
    "RECORD_TYPES",
    "SCHEMA_VERSION",
    "TAXONOMY_NAMES",
    "TEST",
    "TRAIN",
    "Decomposition",
    "FailureRecord",
    "FileDigest",
    "Function",
    "ImageRef",
    "Manifest",
    "Provenance",
    "Record",
    "ReviewOutcome",
    "SourceQuestion",
    "SourceRef",
    "SubQuestion",
    "Taxonomy",
    "Verification",
    "assign_splits",
    "canonical_json",
    "content_hash",
    "get_taxonomy",
    "make_id",
    "sha256_bytes",
    "split_decompositions",
]
