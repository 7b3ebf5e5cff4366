"""Configuration of a decomposition run, and the price table used for the manifest's cost."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# US dollars per million tokens, as listed by OpenAI (2025). Override or extend in the YAML config
# (`prices: {MODEL: {input: .., output: ..}}`); a model missing here costs null.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4.1": {"input": 2.0, "output": 8.0},
    "gpt-4.1-mini": {"input": 0.4, "output": 1.6},
    "gpt-4.1-nano": {"input": 0.1, "output": 0.4},
    "gpt-4o": {"input": 2.5, "output": 10.0},
    "gpt-4o-mini": {"input": 0.15, "output": 0.6},
    "o3": {"input": 2.0, "output": 8.0},
    "o4-mini": {"input": 1.1, "output": 4.4},
}


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, description="USD per million prompt tokens.")
    output: float = Field(ge=0, description="USD per million completion tokens.")


class DecomposeConfig(BaseModel):
    """Everything that shapes a run (recorded in the manifest; never holds the API key)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Decomposing model name, as the server knows it.")
    base_url: str | None = Field(default=None, description="Server URL; None: OPENAI_BASE_URL "
                                 "or OpenAI.")
    taxonomy: Literal["cogvision", "cogvsr", "cogqa"] = "cogvision"
    concurrency: int = Field(default=8, ge=1, le=1024, description="Requests in flight at most.")
    send_images: bool = Field(default=True, description="Send images as data URLs.")
    max_attempts: int = Field(default=3, ge=1, le=20, description="Asks per step.")
    verify_model: str | None = Field(default=None, description="Second model that re-answers "
                                     "each sub-question.")
    prompts: Path | None = Field(default=None, description="Folder of prompt templates; None: "
                                 "the built-in v1.")
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int = Field(default=0, description="Seeds the backoff jitter (and is sent to the model).")
    timeout_s: float = Field(default=120.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(default=5, ge=0, description="Retries per request.")
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    cache: bool = Field(default=True, description="Use the on-disk response cache.")
    cache_dir: Path | None = Field(default=None, description="None: $COGVISION_CACHE_DIR or "
                                   "~/.cache/cogvision/llm.")
    prices: dict[str, Price] = Field(
        default_factory=lambda: {m: Price(**p) for m, p in DEFAULT_PRICES.items()})
    detail: Literal["auto", "low", "high"] = Field(default="auto", description="Image detail.")

    @field_validator("prices", mode="before")
    @classmethod
    def _merge_prices(cls, value: object) -> object:
        """Given prices extend or override the defaults, per model and per field."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, object] = {m: dict(p) for m, p in DEFAULT_PRICES.items()}
        for model, price in value.items():
            base = merged.get(model)
            if isinstance(price, dict) and isinstance(base, dict):
                merged[model] = {**base, **price}
            else:
                merged[model] = price
        return merged

    def parameters(self) -> dict[str, object]:
        """Sampling parameters sent with every request (and part of the cache key)."""
        params: dict[str, object] = {"temperature": self.temperature, "seed": self.seed}
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return params
