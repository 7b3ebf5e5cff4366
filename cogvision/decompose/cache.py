"""A content-addressed on-disk cache of model replies, so a re-run costs nothing.

The key is the sha256 of the canonical JSON of (model, messages, parameters, prompt version); the
structured-output mode is left out on purpose: it is a transport detail that may be downgraded
mid-run. Entries are written via temp file + rename, so a killed run never leaves a torn entry.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from cogvision.artifacts import write_text_atomic
from cogvision.schema import content_hash

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$COGVISION_CACHE_DIR``, else ``$XDG_CACHE_HOME/cogvision/llm`` (default ``~/.cache``)."""
    if os.environ.get("COGVISION_CACHE_DIR"):
        return Path(os.environ["COGVISION_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cogvision" / "llm"


def cache_key(model: str, messages: list[dict[str, Any]], parameters: dict[str, Any],
              prompt_version: str) -> str:
    """Hex sha256 naming one request's reply."""
    return content_hash({"model": model, "messages": messages, "parameters": parameters,
                         "prompt_version": prompt_version})


class ResponseCache:
    """Replies stored as ``<root>/<key[:2]>/<key>.json`` holding ``{"text", "usage"}``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._root = str(root)  # plain strings: pathlib costs more than the read on a warm re-run

    def _path(self, key: str) -> str:
        return os.path.join(self._root, key[:2], f"{key}.json")

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, or None (an unreadable entry counts as a miss and is logged)."""
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.loads(fh.read())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("%s: unreadable cache entry ignored (%s)", path, exc)
            return None
        return data if isinstance(data, dict) and isinstance(data.get("text"), str) else None

    def put(self, key: str, text: str, usage: dict[str, int]) -> None:
        write_text_atomic(self._path(key), json.dumps({"text": text, "usage": usage}))
