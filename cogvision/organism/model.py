"""The organism's architecture: a small LLaVA (CLIP vision tower + Llama decoder) with its own
word-level tokenizer and a stock ``LlavaProcessor``.

Issue 8 measured that a small VLM reads attributes reliably only when one vision patch covers one
grid cell of the synthetic scene (one object = one image token), so ``OrganismSpec`` ties the patch
size to the scene geometry: ``image_size // grid``. The tokenizer is word-level over the synthetic
benchmark's vocabulary (short sequences, one token per word) with the ChatML chat template the
harness drives; everything saves with ``save_pretrained`` and loads through
``AutoModelForImageTextToText`` / ``AutoProcessor`` like any Hugging Face VLM.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import transformers as tf
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from cogvision.errors import UsageError
from cogvision.harness.tiny import chat_template

UNK, PAD, EOS, BOS = "[UNK]", "<|endoftext|>", "<|im_end|>", "<|endoftext|>"
IMAGE_TOKEN = "<image>"
SPECIALS = (UNK, "<|endoftext|>", "<|im_start|>", "<|im_end|>", IMAGE_TOKEN)
_PRE_TOKENIZER = pre_tokenizers.Whitespace()  # \w+ | [^\w\s]+ ; newlines are separators only
CELL_WORDS = r"row \d+, column \d+"
"""A grid cell as the benchmark words it (``row 2, column 1``): one token with ``cell_words``."""


def pre_tokenizer(cell_words: bool = False) -> Any:
    """Whitespace-and-punctuation split; with ``cell_words`` a cell name stays one token.

    Issue 8's diagnosis: a 4-layer decoder could not assemble "row 2 , column 1" from five tokens
    into one query for the image token of that cell. As one token the name is a single key to
    look up (and a single token to answer with); the prompt text is unchanged.
    """
    if not cell_words:
        return _PRE_TOKENIZER
    return pre_tokenizers.Split(Regex(rf"{CELL_WORDS}|\w+|[^\w\s]+"), behavior="removed",
                                invert=True)


@dataclass(frozen=True)
class OrganismSpec:
    """Sizes of the organism (recorded in its training manifest)."""

    image_size: int = 96
    grid: int = 3
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 8
    n_kv_heads: int = 8
    intermediate: int = 512
    vision_hidden: int = 128
    vision_layers: int = 2
    vision_heads: int = 4

    @property
    def patch(self) -> int:
        return self.image_size // self.grid

    @property
    def image_tokens(self) -> int:
        return self.grid * self.grid

    def check(self) -> None:
        if self.image_size % self.grid:
            raise UsageError(f"image_size {self.image_size} is not a multiple of grid {self.grid}")
        if self.d_model % self.n_heads:
            raise UsageError(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def words(texts: Iterable[str], *, cell_words: bool = False) -> list[str]:
    """The word-level tokens of ``texts`` in first-seen order (the tokenizer's split)."""
    seen: dict[str, None] = {}
    split = pre_tokenizer(cell_words)
    for text in texts:
        for word, _ in split.pre_tokenize_str(text):
            seen.setdefault(word, None)
    return list(seen)


def build_tokenizer(corpus: Iterable[str], *, cell_words: bool = False, grid: int = 3
                    ) -> PreTrainedTokenizerFast:
    """A word-level tokenizer covering ``corpus`` (plus digits 0-99 and, with ``cell_words``, every
    cell name of the grid), with ChatML specials."""
    extra = [str(i) for i in range(100)]
    if cell_words:
        extra += [f"row {r}, column {c}" for r in range(1, grid + 1) for c in range(1, grid + 1)]
    vocab_words = [w for w in dict.fromkeys([*words(corpus, cell_words=cell_words), *extra])
                   if w not in SPECIALS]
    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *vocab_words])}
    word_level = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    word_level.pre_tokenizer = pre_tokenizer(cell_words)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=word_level,
        unk_token=UNK,
        eos_token=EOS,
        pad_token=PAD,
        bos_token=BOS,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        padding_side="left",
    )
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = chat_template("llava")
    return tok


def build_config(spec: OrganismSpec, tok: PreTrainedTokenizerFast) -> tf.LlavaConfig:
    """A LLaVA config: CLIP tower with patch = grid cell, Llama decoder."""
    spec.check()
    text = tf.LlamaConfig(
        vocab_size=len(tok),
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        hidden_size=spec.d_model,
        num_hidden_layers=spec.n_layers,
        num_attention_heads=spec.n_heads,
        num_key_value_heads=spec.n_kv_heads,
        head_dim=spec.d_model // spec.n_heads,
        intermediate_size=spec.intermediate,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
    )
    vision = tf.CLIPVisionConfig(
        hidden_size=spec.vision_hidden,
        intermediate_size=4 * spec.vision_hidden,
        num_hidden_layers=spec.vision_layers,
        num_attention_heads=spec.vision_heads,
        image_size=spec.image_size,
        patch_size=spec.patch,
        projection_dim=spec.vision_hidden,
    )
    return tf.LlavaConfig(
        text_config=text,
        vision_config=vision,
        image_token_index=int(tok.convert_tokens_to_ids(IMAGE_TOKEN)),  # type: ignore[arg-type]
        image_seq_length=spec.image_tokens,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )


def build_processor(spec: OrganismSpec, tok: PreTrainedTokenizerFast) -> tf.LlavaProcessor:
    """A stock ``LlavaProcessor``: CLIP PIL image processor at the scene size, no crop/resize."""
    image = tf.CLIPImageProcessorPil(
        size={"shortest_edge": spec.image_size},
        crop_size={"height": spec.image_size, "width": spec.image_size},
    )
    return tf.LlavaProcessor(
        image_processor=image,
        tokenizer=tok,
        patch_size=spec.patch,
        vision_feature_select_strategy="default",
        chat_template=chat_template("llava"),
        num_additional_image_tokens=1,
    )


def build_organism(spec: OrganismSpec, corpus: Iterable[str], *, seed: int,
                   cell_words: bool = False,
                   ) -> tuple[tf.LlavaForConditionalGeneration, tf.LlavaProcessor]:
    """A fresh (random) organism and its processor; weights drawn from ``seed``."""
    tok = build_tokenizer(corpus, cell_words=cell_words, grid=spec.grid)
    config = build_config(spec, tok)
    # transformers initialises weights from the global RNG; fork it to leave the caller's state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tf.LlavaForConditionalGeneration(config)
    init_grid_positions(model, spec)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model, build_processor(spec, tok)


@torch.no_grad()
def init_grid_positions(model: Any, spec: OrganismSpec, scale: float = 3.0) -> None:
    """Start CLIP's learned position embeddings as a row one-hot + column one-hot code.

    At the default init (std 0.02) the position signal is ~1% of a patch embedding, and a linear
    read-out of row/column from the projected patches stayed at chance after 300 pre-training
    steps; a legible 2D code makes left/right/above/below easy to read (issue 8's lever). The
    embeddings stay trainable. Position 0 is CLIP's class token.
    """
    weight = model.model.vision_tower.embeddings.position_embedding.weight  # [1 + P, hidden]
    g = spec.grid
    if weight.shape[1] < 2 * g:
        return
    for cell in range(g * g):
        row, col = divmod(cell, g)
        weight[1 + cell, :2 * g] = 0.0
        weight[1 + cell, row] = scale
        weight[1 + cell, g + col] = scale


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe(model: Any) -> dict[str, int]:
    """Parameter counts per part (for the manifest)."""
    inner = model.model
    return {
        "total": n_parameters(model),
        "vision_tower": n_parameters(inner.vision_tower),
        "projector": n_parameters(inner.multi_modal_projector),
        "language_model": n_parameters(inner.language_model) + n_parameters(model.lm_head),
    }
