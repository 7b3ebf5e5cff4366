"""One adapter per model family: where the decoder layers and o_proj live, the head geometry, and
how to build model inputs with the model's own chat template.

Supported ``model_type`` values are the keys of ``FAMILY_SPECS``. To add a family, register a
``FamilySpec`` (how images are nested in processor calls, extra processor kwargs, whether the model
uses multimodal rotary positions) with :func:`register_family`; the decoder layers are found through
``model.get_decoder().layers`` and o_proj as ``layer.self_attn.o_proj``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from torch import nn

from cogvision.errors import AdapterError


@dataclass(frozen=True)
class FamilySpec:
    """What differs between families when building inputs."""

    family: str
    nested_images: bool = False  # processor wants [[img], [img]] rather than [img, img]
    processor_kwargs: dict[str, Any] = field(default_factory=dict)
    mrope: bool = False  # Qwen multimodal RoPE: position ids [3, batch, seq] plus a rope delta


FAMILY_SPECS: dict[str, FamilySpec] = {
    "qwen2_vl": FamilySpec("qwen2_vl", mrope=True),
    "qwen2_5_vl": FamilySpec("qwen2_5_vl", mrope=True),
    "qwen3_vl": FamilySpec("qwen3_vl", mrope=True),
    "llava": FamilySpec("llava"),
    "idefics3": FamilySpec("idefics3", nested_images=True),
    "smolvlm": FamilySpec("smolvlm", nested_images=True),
    "gemma3": FamilySpec("gemma3", nested_images=True),
    # Small images would otherwise be tiled into up to 12 crops (PLATFORM.md).
    "internvl": FamilySpec("internvl", processor_kwargs={"crop_to_patches": False}),
}


def register_family(spec: FamilySpec) -> None:
    """Add (or replace) support for a ``model_type``."""
    FAMILY_SPECS[spec.family] = spec


def supported_families() -> list[str]:
    return sorted(FAMILY_SPECS)


class ModelAdapter:
    """Facts about one loaded VLM and the inputs it expects.

    Attributes:
        family: the ``model_type``.
        n_layers, n_heads, n_kv_heads, d_head, d_model: decoder geometry
            (``d_head = o_proj.in_features // n_heads``).
        image_token_id: id of the token that image features replace.
    """

    def __init__(self, model: nn.Module, processor: Any, spec: FamilySpec) -> None:
        self.model: Any = model  # a transformers PreTrainedModel
        self.processor = processor
        self.spec = spec
        self.family = spec.family
        config: Any = self.model.config
        text = config.get_text_config()
        layers = self.decoder_layers()
        self.n_layers = len(layers)
        self.n_heads = int(text.num_attention_heads)
        self.n_kv_heads = int(getattr(text, "num_key_value_heads", None) or self.n_heads)
        self.d_model = int(text.hidden_size)
        first: Any = self.o_proj(0)
        in_features = int(first.in_features)
        if in_features % self.n_heads:
            raise AdapterError(
                f"{self.family}: o_proj.in_features {in_features} is not a multiple "
                f"of {self.n_heads} heads"
            )
        self.d_head = in_features // self.n_heads
        self.image_token_id = int(_image_token_id(model.config))
        tokenizer = self.tokenizer
        tokenizer.padding_side = "left"
        self.eos_token_ids = _eos_ids(model, tokenizer)
        self.pad_token_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_token_ids[0]
        )

    # ----------------------------------------------------------------- modules

    def decoder_layers(self) -> list[nn.Module]:
        """The language model's decoder layers, in order."""
        try:
            return list(self.model.get_decoder().layers)
        except AttributeError as exc:
            raise AdapterError(
                f"{self.spec.family}: cannot find the decoder layers "
                f"(model.get_decoder().layers): {exc}"
            ) from None

    def o_proj(self, layer: int) -> nn.Module:
        """The attention output projection of decoder layer ``layer``."""
        try:
            block: Any = self.decoder_layers()[layer]
            module: nn.Module = block.self_attn.o_proj
            return module
        except AttributeError:
            raise AdapterError(f"{self.family}: layer {layer} has no self_attn.o_proj") from None

    def o_projs(self) -> list[nn.Module]:
        return [self.o_proj(i) for i in range(self.n_layers)]

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def sliding_window(self) -> int | None:
        """The attention window of sliding-window layers (e.g. Gemma3), or None."""
        config: Any = self.model.config
        text = config.get_text_config()
        layer_types = getattr(text, "layer_types", None) or []
        uses = "sliding_attention" in layer_types or bool(getattr(text, "use_sliding_window", 0))
        window = getattr(text, "sliding_window", None)
        return int(window) if uses and window else None

    @property
    def n_total_heads(self) -> int:
        return self.n_layers * self.n_heads

    def describe(self) -> dict[str, Any]:
        """Geometry for manifests."""
        return {
            "family": self.family,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "d_head": self.d_head,
            "d_model": self.d_model,
            "image_token_id": self.image_token_id,
        }

    # ----------------------------------------------------------------- inputs

    def chat_text(self, prompt: str, *, image: bool) -> str:
        """``prompt`` as one user turn (after the image, if any) in the model's chat template,
        ending with the assistant generation prompt."""
        content: list[dict[str, str]] = [{"type": "image"}] if image else []
        content.append({"type": "text", "text": prompt})
        messages = [{"role": "user", "content": content}]
        return self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )

    def encode(self, texts: Sequence[str], images: Sequence[Image.Image | None]) -> Any:
        """Tokenize already-templated ``texts`` with their images (left padding), on the model's
        device. Either every item has an image or none has."""
        if len(texts) != len(images):
            raise ValueError(f"{len(texts)} texts but {len(images)} images")
        with_image = [img is not None for img in images]
        if any(with_image) and not all(with_image):
            raise ValueError("a batch must be all image items or all text-only items")
        kwargs: dict[str, Any] = {"text": list(texts), "padding": True, "return_tensors": "pt"}
        if all(with_image) and images:
            imgs = [img.convert("RGB") for img in images if img is not None]
            kwargs["images"] = [[img] for img in imgs] if self.spec.nested_images else imgs
            kwargs.update(self.spec.processor_kwargs)
        batch = self.processor(**kwargs)
        return batch.to(self.device)

    def build_inputs(self, images: Sequence[Image.Image | None], prompts: Sequence[str]) -> Any:
        """Model inputs for (image, prompt) pairs through the model's own chat template."""
        texts = [
            self.chat_text(p, image=img is not None) for img, p in zip(images, prompts, strict=True)
        ]
        return self.encode(texts, images)


def _image_token_id(config: Any) -> int:
    for name in ("image_token_id", "image_token_index"):
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    raise AdapterError(f"{config.model_type}: config has no image_token_id / image_token_index")


def _eos_ids(model: nn.Module, tokenizer: Any) -> list[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        raise AdapterError("the model has no eos_token_id (generation_config or tokenizer)")
    return [int(i) for i in ids] if isinstance(ids, list | tuple) else [int(ids)]


def adapter_for(model: nn.Module, processor: Any) -> ModelAdapter:
    """The adapter for ``model`` chosen by ``model.config.model_type``.

    Raises:
        AdapterError: unsupported model type (the message lists the supported ones).
    """
    model_type = getattr(model.config, "model_type", None)
    spec = FAMILY_SPECS.get(str(model_type))
    if spec is None:
        raise AdapterError(
            f"unsupported model type {model_type!r}; supported: {', '.join(supported_families())}. "
            "To add one, call cogvision.harness.adapters.register_family(FamilySpec(...)) "
            "(decoder layers must be reachable as model.get_decoder().layers[i].self_attn.o_proj)"
        )
    return ModelAdapter(model, processor, spec)
