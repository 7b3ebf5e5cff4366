"""Tiny random-weight vision-language models of the eight supported families, built offline.

Each model is the real transformers architecture built from a small config (random weights),
paired with a real processor: a byte-level BPE tokenizer trained in memory, the family's PIL image
processor, and, for families whose stock processor needs a video processor (and so torchvision), a
subclass without it registered with ``AutoProcessor``. ``save_tiny`` writes a folder that
``from_pretrained`` loads with ``HF_HUB_OFFLINE=1``. ``image_tokens`` sets how many image tokens one
square image becomes (a perfect square); use >= 256 for benchmarks that need a realistic prompt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers as tf
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast
from transformers.processing_utils import ProcessorMixin

from cogvision.errors import AdapterError
from cogvision.harness.processors import (  # noqa: F401 - re-exported
    _NO_VIDEO,
    InternVLProcessorNoVideo,
    Qwen2_5_VLProcessorNoVideo,
    Qwen2VLProcessorNoVideo,
    Qwen3VLProcessorNoVideo,
    SmolVLMProcessorNoVideo,
    register_processors,
)

FAMILIES = (
    "qwen2_vl",
    "qwen2_5_vl",
    "qwen3_vl",
    "llava",
    "idefics3",
    "smolvlm",
    "gemma3",
    "internvl",
)

_CHATML = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
_SPECIALS: dict[str, list[str]] = {
    "qwen": _CHATML + ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
    "llava": _CHATML + ["<image>"],
    "idefics": _CHATML
    + ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]
    + [f"<row_{r}_col_{c}>" for r in range(1, 5) for c in range(1, 5)],
    "gemma3": _CHATML + ["<start_of_image>", "<end_of_image>", "<image_soft_token>"],
    "internvl": _CHATML + ["<img>", "</img>", "<IMG_CONTEXT>", "<video>"],
}
_GROUP = {
    "qwen2_vl": "qwen",
    "qwen2_5_vl": "qwen",
    "qwen3_vl": "qwen",
    "llava": "llava",
    "idefics3": "idefics",
    "smolvlm": "idefics",
    "gemma3": "gemma3",
    "internvl": "internvl",
}
_NAMED = {
    "qwen": {
        "image_token": "<|image_pad|>",
        "video_token": "<|video_pad|>",
        "vision_bos_token": "<|vision_start|>",
        "vision_eos_token": "<|vision_end|>",
    },
    "llava": {"image_token": "<image>"},
    "idefics": {
        "image_token": "<image>",
        "fake_image_token": "<fake_token_around_image>",
        "end_of_utterance_token": "<end_of_utterance>",
        "global_image_token": "<global-img>",
    },
    "gemma3": {
        "image_token": "<image_soft_token>",
        "boi_token": "<start_of_image>",
        "eoi_token": "<end_of_image>",
    },
    "internvl": {
        "start_image_token": "<img>",
        "end_image_token": "</img>",
        "context_image_token": "<IMG_CONTEXT>",
        "video_token": "<video>",
    },
}
# What the chat template writes for one image; the processor expands it to the image tokens.
_IMAGE_PLACEHOLDER = {
    "qwen": "<|vision_start|><|image_pad|><|vision_end|>",
    "llava": "<image>",
    "idefics": "<image>",
    "gemma3": "<start_of_image>",
    "internvl": "<IMG_CONTEXT>",
}

_CORPUS = [
    "What colour is the shape in the image? The shape is red. Is it a circle or a square?",
    "How many objects are there? There are three objects: a blue triangle, a green circle.",
    "Which option is correct? Answer: B. The answer is 42 because 6 times 7 equals 42.",
    "Main question: what is left of the ball? Previous steps: Q1 A1. Sub-question: answer briefly.",
    "yes no true false left right above below larger smaller first second third one two four five",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 + - * / = ( ) , . ; : ? ! ' \" abcdefghijklmnopqrstuvwxyz",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ user assistant system",
    # The harness prompt's fixed phrases, so they become few tokens as with a real tokenizer.
    "Main question: Previous steps: Sub-question: Q1: A1: Q2: A2: Q3: A3:",
    "Answer the sub-question with a single word or short phrase.",
    "What is shown in the picture? Which objects are red, green, blue, yellow or gray?",
    "How many cubes, spheres, cylinders, balls, triangles and squares are larger or smaller?",
    "Is there a person, a dog, a cat, a car, a tree, a house, a table or a chair in the scene?",
]


def chat_template(family: str) -> str:
    """A small ChatML jinja template that places the family's image placeholder."""
    image = _IMAGE_PLACEHOLDER[_GROUP[family]]
    return (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}"
        + image
        + "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


def build_tokenizer(family: str, *, vocab_size: int = 1000) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained in memory on a small corpus, with the family's special tokens."""
    group = _GROUP[family]
    specials = _SPECIALS[group]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        extra_special_tokens=dict(_NAMED[group]),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        padding_side="left",
    )
    tok.chat_template = chat_template(family)
    return tok


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class TinySize:
    """Sizes of a tiny model. ``image_tokens`` must be a perfect square."""

    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    d_head: int = 16
    d_model: int = 64
    intermediate: int = 128
    vision_hidden: int = 32
    vision_layers: int = 2
    image_tokens: int = 4

    @property
    def side(self) -> int:
        side = math.isqrt(self.image_tokens)
        if side * side != self.image_tokens:
            raise ValueError(f"image_tokens must be a perfect square, got {self.image_tokens}")
        return side


def _text(size: TinySize, tok: Any, **extra: Any) -> dict[str, Any]:
    return {
        "vocab_size": len(tok),
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "hidden_size": size.d_model,
        "num_hidden_layers": size.n_layers,
        "num_attention_heads": size.n_heads,
        "num_key_value_heads": size.n_kv_heads,
        "head_dim": size.d_head,
        "intermediate_size": size.intermediate,
        "max_position_embeddings": 4096,
        **extra,
    }


def _vision(size: TinySize, **extra: Any) -> dict[str, Any]:
    return {
        "hidden_size": size.vision_hidden,
        "intermediate_size": 2 * size.vision_hidden,
        "num_hidden_layers": size.vision_layers,
        "num_attention_heads": 2,
        **extra,
    }


def _qwen_config(family: str, size: TinySize, tok: Any) -> Any:
    ids = {
        "image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>"),
    }
    half = size.d_head // 2
    mrope = [half - 2 * (half // 4), half // 4, half // 4]  # sums to d_head / 2
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope}
    text = _text(size, tok, rope_parameters=rope)
    vis: dict[str, Any] = {
        "depth": size.vision_layers,
        "num_heads": 2,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    if family == "qwen2_vl":
        vis |= {"embed_dim": size.vision_hidden, "hidden_size": size.d_model, "patch_size": 14}
        return tf.Qwen2VLConfig(text_config=text, vision_config=vis, **ids)
    if family == "qwen2_5_vl":
        vis |= {
            "hidden_size": size.vision_hidden,
            "intermediate_size": 2 * size.vision_hidden,
            "out_hidden_size": size.d_model,
            "patch_size": 14,
            "window_size": 56,
            "fullatt_block_indexes": [size.vision_layers - 1],
        }
        return tf.Qwen2_5_VLConfig(text_config=text, vision_config=vis, **ids)
    rope["mrope_interleaved"] = True
    vis |= {
        "hidden_size": size.vision_hidden,
        "intermediate_size": 2 * size.vision_hidden,
        "out_hidden_size": size.d_model,
        "patch_size": 16,
        "num_position_embeddings": max(16, (2 * size.side) ** 2),
        "deepstack_visual_indexes": [0],
    }
    return tf.Qwen3VLConfig(text_config=text, vision_config=vis, **ids)


def build_config(family: str, size: TinySize, tok: Any) -> Any:
    """The transformers config of a tiny model of ``family``."""
    image_id = tok.convert_tokens_to_ids(
        tok.image_token if hasattr(tok, "image_token") else tok.context_image_token
    )
    s = size.side
    if family.startswith("qwen"):
        return _qwen_config(family, size, tok)
    if family == "llava":
        return tf.LlavaConfig(
            text_config=tf.LlamaConfig(**_text(size, tok)),
            vision_config=tf.CLIPVisionConfig(
                **_vision(size, image_size=14 * s, patch_size=14, projection_dim=size.vision_hidden)
            ),
            image_token_index=image_id,
            image_seq_length=s * s,
            vision_feature_layer=-1,
            vision_feature_select_strategy="default",
        )
    if family in ("idefics3", "smolvlm"):
        cls: Any = tf.Idefics3Config if family == "idefics3" else tf.SmolVLMConfig
        vcls = tf.Idefics3VisionConfig if family == "idefics3" else tf.SmolVLMVisionConfig
        return cls(
            text_config=tf.LlamaConfig(**_text(size, tok)),
            vision_config=vcls(**_vision(size, image_size=28 * s, patch_size=14)),
            image_token_id=image_id,
            scale_factor=2,
            pad_token_id=tok.pad_token_id,
        )
    if family == "gemma3":
        text = tf.Gemma3TextConfig(
            **_text(size, tok, query_pre_attn_scalar=size.d_head, sliding_window=4096)
        )
        return tf.Gemma3Config(
            text_config=text,
            vision_config=tf.SiglipVisionConfig(**_vision(size, image_size=14 * s, patch_size=14)),
            mm_tokens_per_image=s * s,
            image_token_index=image_id,
            boi_token_index=tok.convert_tokens_to_ids("<start_of_image>"),
            eoi_token_index=tok.convert_tokens_to_ids("<end_of_image>"),
        )
    if family == "internvl":
        return tf.InternVLConfig(
            text_config=tf.Qwen2Config(**_text(size, tok)),
            vision_config=tf.InternVLVisionConfig(
                **_vision(size, image_size=[28 * s, 28 * s], patch_size=[14, 14])
            ),
            image_token_id=image_id,
            image_seq_length=s * s,
            downsample_ratio=0.5,
        )
    raise AdapterError(f"no tiny recipe for family {family!r}; known: {', '.join(FAMILIES)}")


def build_processor(family: str, size: TinySize, tok: Any) -> ProcessorMixin:
    """The family's processor around ``tok`` with a PIL image processor sized for ``size``."""
    s, template = size.side, chat_template(family)
    if family in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
        patch = 16 if family == "qwen3_vl" else 14
        pixels = (2 * patch * s) ** 2
        image: Any = tf.Qwen2VLImageProcessorPil(
            patch_size=patch, merge_size=2, size={"shortest_edge": pixels, "longest_edge": pixels}
        )
        cls = {
            "qwen2_vl": Qwen2VLProcessorNoVideo,
            "qwen2_5_vl": Qwen2_5_VLProcessorNoVideo,
            "qwen3_vl": Qwen3VLProcessorNoVideo,
        }[family]
        return cls(image_processor=image, tokenizer=tok, chat_template=template)
    if family == "llava":
        image = tf.CLIPImageProcessorPil(
            size={"shortest_edge": 14 * s}, crop_size={"height": 14 * s, "width": 14 * s}
        )
        return tf.LlavaProcessor(
            image_processor=image,
            tokenizer=tok,
            patch_size=14,
            vision_feature_select_strategy="default",
            chat_template=template,
            num_additional_image_tokens=1,
        )
    if family in ("idefics3", "smolvlm"):
        edge = {"longest_edge": 28 * s}
        if family == "idefics3":
            image = tf.Idefics3ImageProcessorPil(
                size=edge, max_image_size=edge, do_image_splitting=False
            )
            return tf.Idefics3Processor(
                image_processor=image, tokenizer=tok, image_seq_len=s * s, chat_template=template
            )
        image = tf.SmolVLMImageProcessorPil(
            size=edge, max_image_size=edge, do_image_splitting=False
        )
        return SmolVLMProcessorNoVideo(
            image_processor=image, tokenizer=tok, image_seq_len=s * s, chat_template=template
        )
    if family == "gemma3":
        image = tf.Gemma3ImageProcessorPil(size={"height": 14 * s, "width": 14 * s})
        return tf.Gemma3Processor(
            image_processor=image, tokenizer=tok, image_seq_length=s * s, chat_template=template
        )
    if family == "internvl":
        image = tf.GotOcr2ImageProcessorPil(
            size={"height": 28 * s, "width": 28 * s}, crop_to_patches=False
        )
        return InternVLProcessorNoVideo(
            image_processor=image, tokenizer=tok, image_seq_length=s * s, chat_template=template
        )
    raise AdapterError(f"no tiny recipe for family {family!r}; known: {', '.join(FAMILIES)}")


def build_tiny(
    family: str, *, seed: int = 0, size: TinySize | None = None, **size_overrides: int
) -> tuple[torch.nn.Module, ProcessorMixin]:
    """Build ``(model, processor)`` of a tiny random model of ``family`` (eval mode, float32).

    Args:
        family: one of ``FAMILIES`` (a ``model_type``).
        seed: seeds a local ``torch.Generator``-driven init (global RNG state is restored).
        size: model sizes; keyword overrides (e.g. ``image_tokens=256``) replace single fields.
    """
    if family not in FAMILIES:
        raise AdapterError(f"no tiny recipe for family {family!r}; known: {', '.join(FAMILIES)}")
    size = TinySize(**{**(size or TinySize()).__dict__, **size_overrides})
    tok = build_tokenizer(family)
    config = build_config(family, size, tok)
    # transformers initialises weights from the global RNG; fork it to leave the caller's state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tf.AutoModelForImageTextToText.from_config(config)
    model.eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model, build_processor(family, size, tok)


def save_tiny(model: Any, processor: ProcessorMixin, folder: str | Path) -> Path:
    """Write model and processor so ``from_pretrained`` (offline) loads them back."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
