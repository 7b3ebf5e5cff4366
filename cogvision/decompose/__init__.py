"""LLM-assisted decomposition (the paper's two steps) with validation, re-asking, cache and resume.

Library entry point: ``decompose_file(in_path, out_dir, DecomposeConfig(model=...))``.
"""

from cogvision.decompose.config import DecomposeConfig, Price
from cogvision.decompose.runner import DecomposeResult, Hooks, decompose_file, finished_ids

__all__ = ["DecomposeConfig", "DecomposeResult", "Hooks", "Price", "decompose_file",
           "finished_ids"]
