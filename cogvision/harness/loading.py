"""Loading a vision-language model and its processor from a local folder or a Hub id.

``AutoModelForImageTextToText`` with ``dtype`` and ``device_map`` (``"auto"`` shards a large model
over the visible GPUs with accelerate). Processors of families whose stock class wants a video
processor (and so torchvision) are loaded through the video-free subclasses of ``tiny`` (registered
with ``AutoProcessor``). With ``HF_HUB_OFFLINE=1`` only local files and the cache are read.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cogvision.errors import AdapterError, require

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "float16", "bfloat16")


def _dtype(name: str) -> Any:
    torch = require("torch", "harness")
    if name == "auto":
        return "auto"
    if name not in DTYPES:
        raise AdapterError(f"unknown dtype {name!r}; known: {', '.join(DTYPES)}")
    return getattr(torch, name)


def load_processor(path: str, *, revision: str | None = None) -> Any:
    """The processor of ``path``, avoiding classes that need torchvision."""
    transformers = require("transformers", "harness")
    from cogvision.harness.processors import _NO_VIDEO, register_processors

    register_processors()
    config = transformers.AutoConfig.from_pretrained(path, revision=revision)
    cls: Any = _NO_VIDEO.get(type(config))
    if cls is not None:
        return cls.from_pretrained(path, revision=revision)
    return transformers.AutoProcessor.from_pretrained(path, revision=revision)


def load_model(path: str | Path, *, dtype: str = "auto", device_map: str | None = None,
               revision: str | None = None, attn_implementation: str | None = None,
               ) -> tuple[Any, Any]:
    """Load ``(model, processor)`` in eval mode.

    Args:
        path: a local folder or a Hub id.
        dtype: ``auto`` (the checkpoint's), ``float32``, ``float16`` or ``bfloat16``.
        device_map: e.g. ``"auto"`` or ``"cuda:0"``; None keeps the model on CPU.
        revision: Hub revision (recorded in manifests).
        attn_implementation: e.g. ``"eager"`` when attention weights are needed.

    Raises:
        AdapterError: the model or processor cannot be loaded.
    """
    transformers = require("transformers", "harness")
    kwargs: dict[str, Any] = {"dtype": _dtype(dtype), "revision": revision}
    if device_map:
        require("accelerate", "harness")
        kwargs["device_map"] = device_map
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model = transformers.AutoModelForImageTextToText.from_pretrained(str(path), **kwargs)
        processor = load_processor(str(path), revision=revision)
    except (OSError, ValueError, KeyError) as exc:
        raise AdapterError(f"cannot load model {path}: {exc}") from None
    model.eval()
    return model, processor
