"""The `synth` stage's config: defaults < YAML (``--config``) < flags < ``-C key=value``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SynthConfig(BaseModel):
    """Options of ``cogvision synth`` (checked in ``build_benchmark``, which names bad values)."""

    model_config = ConfigDict(extra="forbid")

    variant: str = "cogvision"
    n: int = 100
    seed: int = 0
    image_size: int = 128
    grid: int = 4
    jitter: float = 0.0
    min_objects: int = 3
    max_objects: int = 7
    templates: list[str] | None = None
