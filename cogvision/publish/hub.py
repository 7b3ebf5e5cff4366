"""Upload a published folder to the Hugging Face Hub (``--push-to-hub REPO``).

The token comes from ``HF_TOKEN`` in the environment only; it is passed to ``huggingface_hub`` and
never written anywhere. Not exercised by the tests (the Hub is unreachable offline).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cogvision.errors import CogvisionError, UsageError, require

log = logging.getLogger(__name__)


def push_to_hub(folder: str | Path, repo_id: str, *, private: bool = False) -> str:
    """Create (if needed) the dataset repo ``repo_id`` and upload ``folder``; return its URL."""
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise UsageError("--push-to-hub needs a Hugging Face token in the HF_TOKEN environment "
                         "variable")
    if repo_id.count("/") != 1:
        raise UsageError(f"--push-to-hub expects 'owner/name', got {repo_id!r}")
    hub = require("huggingface_hub", "publish")
    api = hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                          commit_message="Publish with cogvision")
    except Exception as exc:  # huggingface_hub raises HTTP, OS and validation errors
        raise CogvisionError(f"push to {repo_id} failed: {type(exc).__name__}: {exc}") from None
    log.info("pushed %s to the Hub as %s", folder, repo_id)
    return f"https://huggingface.co/datasets/{repo_id}"
