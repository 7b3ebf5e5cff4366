"""Stable content-hash ids: sha256 over canonical JSON, shortened, with a type prefix."""

from __future__ import annotations

import hashlib
import json
from typing import Any

ID_HEX_LENGTH = 16


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the same content always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(obj: Any) -> str:
    """Full sha256 hex digest of ``obj``'s canonical JSON."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def make_id(prefix: str, obj: Any) -> str:
    """``{prefix}-{16 hex}``: stable across runs, machines and Python versions."""
    return f"{prefix}-{content_hash(obj)[:ID_HEX_LENGTH]}"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
