"""Decoding many intervention conditions over the same test items, with a resumable cache.

Generations are cached on disk (``generations.jsonl``) keyed by run fingerprint (model revision,
data), the exact templated prompt, the item, the conditions' spec hashes and ``max_new_tokens``; a
killed run resumes from what is there and reproduces the same answers, because batches are formed
deterministically and a condition is always decoded for a whole batch.

Sweep reuse (PLATFORM.md "Reusing KV caches"): when no spec of a condition touches prompt
positions (scope ``generated``, or no spec at all), the prompt's KV cache is the same under every
such condition. It is computed once per batch (all prompt tokens but the last) and each condition
decodes from a shallow copy, feeding the last prompt token itself; conditions whose scope includes
the prompt are generated from scratch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from cogvision.harness.adapters import ModelAdapter
from cogvision.harness.answer import answer_length, parse_answer
from cogvision.harness.data import MainItem, SubItem
from cogvision.harness.experiments import Condition
from cogvision.harness.intervene import Edit, intervene
from cogvision.harness.prompts import PromptOptions, prompt_text
from cogvision.harness.trace import copy_cache
from cogvision.schema.ids import content_hash

log = logging.getLogger(__name__)

_PER_TOKEN = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")


class GenerationCache:
    """``key -> generated text``, appended to a JSONL file one flushed line per generation."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.data: dict[str, str] = {}
        if self.path is not None and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.data[row["key"]] = row["text"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a torn last line from a killed run

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def __getitem__(self, key: str) -> str:
        return self.data[key]

    def put(self, rows: Sequence[tuple[str, str]]) -> None:
        for key, text in rows:
            self.data[key] = text
        if self.path is None or not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps({"key": k, "text": t}) + "\n" for k, t in rows))
            fh.flush()


@dataclass(frozen=True)
class Work:
    """One test sub-question with its templated prompt and image."""

    item: MainItem
    sub: SubItem
    text: str  # the full templated prompt

    def key(self, fingerprint: str, condition: Condition, max_new_tokens: int) -> str:
        return generation_key(fingerprint, self.sub.id, self.text, condition.key, max_new_tokens)


def generation_key(
    fingerprint: str, doc_id: str, text: str, condition_key: str, max_new_tokens: int
) -> str:
    """Cache key of one generation: run fingerprint, item, exact prompt, specs, length limit."""
    return content_hash([fingerprint, doc_id, text, condition_key, max_new_tokens])


def build_work(
    adapter: ModelAdapter, items: Sequence[MainItem], options: PromptOptions
) -> list[Work]:
    """Every sub-question of ``items`` with its templated prompt (images are loaded to check)."""
    work = []
    for item in items:
        has_image = item.image() is not None
        for sub in item.subs:
            text = adapter.chat_text(prompt_text(item, sub, options), image=has_image)
            work.append(Work(item, sub, text))
    return work


def batches(work: Sequence[Work], batch_size: int) -> Iterator[list[Work]]:
    """Deterministic batches of one function at a time, in first-seen function order."""
    by_function: dict[str, list[Work]] = {}
    for w in work:
        by_function.setdefault(w.sub.function, []).append(w)
    for rows in by_function.values():
        for start in range(0, len(rows), batch_size):
            yield rows[start : start + batch_size]


def reusable(condition: Condition) -> bool:
    """True when no spec touches prompt positions: all conditions share the prompt's KV cache."""
    return all(spec.scope == "generated" for spec in condition.specs)


class Sweeper:
    """Decode conditions over batches of work items, caching every generation."""

    def __init__(
        self,
        adapter: ModelAdapter,
        cache: GenerationCache,
        *,
        fingerprint: str,
        edits_for: Callable[[Condition], list[Edit]],
        max_new_tokens: int = 16,
        reuse: bool = True,
    ) -> None:
        self.adapter, self.cache, self.fingerprint = adapter, cache, fingerprint
        self.edits_for, self.max_new_tokens, self.reuse = edits_for, max_new_tokens, reuse
        self.generated = 0  # rows decoded in this process (not from the cache)

    def key(self, work: Work, condition: Condition) -> str:
        return work.key(self.fingerprint, condition, self.max_new_tokens)

    def run_batch(self, batch: Sequence[Work], conditions: Sequence[Condition]) -> None:
        """Decode every condition not yet cached for the whole batch."""
        todo = [c for c in conditions if any(self.key(w, c) not in self.cache for w in batch)]
        if not todo:
            return
        images: list[Image.Image | None] = [w.item.image() for w in batch]
        inputs = self.adapter.encode([w.text for w in batch], images)
        shared = [c for c in todo if self.reuse and reusable(c)]
        prompt = self._prompt_cache(inputs) if shared else None
        for condition in todo:
            if prompt is not None and condition in shared:
                tokens = self._decode_from(inputs, prompt, self.edits_for(condition))
            else:
                tokens = self._generate(inputs, self.edits_for(condition))
            texts = [self._text(row) for row in tokens]
            self.cache.put([(self.key(w, condition), t) for w, t in zip(batch, texts, strict=True)])
            self.generated += len(batch)

    def _text(self, row: torch.Tensor) -> str:
        n = answer_length(row, self.adapter.eos_token_ids, self.max_new_tokens)
        return self.adapter.tokenizer.decode(row[:n].tolist(), skip_special_tokens=True)

    def _gen_kwargs(self) -> dict[str, Any]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": False,
            "pad_token_id": self.adapter.pad_token_id,
            "eos_token_id": self.adapter.eos_token_ids,
        }

    @torch.no_grad()
    def _generate(self, inputs: Any, edits: list[Edit]) -> torch.Tensor:
        """New tokens ``[batch, steps]`` generated from scratch under ``edits``."""
        with intervene(self.adapter.model, edits):
            out = self.adapter.model.generate(**inputs, **self._gen_kwargs())
        return out[:, inputs["input_ids"].shape[1] :]

    @torch.no_grad()
    def _prompt_cache(self, inputs: Any) -> tuple[Any, torch.Tensor | None]:
        """KV cache of all prompt tokens but the last (and the Qwen rope delta right after it)."""
        head = {k: (v[:, :-1] if k in _PER_TOKEN else v) for k, v in inputs.items()}
        out = self.adapter.model.generate(
            **head,
            max_new_tokens=1,
            do_sample=False,
            return_dict_in_generate=True,
            pad_token_id=self.adapter.pad_token_id,
        )
        delta = None
        if self.adapter.spec.mrope:
            delta = self.adapter.model.model.rope_deltas.detach().clone()
        return out.past_key_values, delta

    @torch.no_grad()
    def _decode_from(
        self, inputs: Any, prompt: tuple[Any, torch.Tensor | None], edits: list[Edit]
    ) -> torch.Tensor:
        """New tokens decoded from a copy of the prompt cache; images are already in the cache."""
        cache, delta = prompt
        if delta is not None:  # another image may have run since the prompt pass
            self.adapter.model.model.rope_deltas = delta.clone()
        text_inputs = {k: v for k, v in inputs.items() if k in _PER_TOKEN}
        length = inputs["input_ids"].shape[1]
        with intervene(self.adapter.model, edits, prompt_length=length):
            out = self.adapter.model.generate(
                **text_inputs, past_key_values=copy_cache(cache), **self._gen_kwargs()
            )
        return out[:, length:]


UNMASKED = Condition("unmasked", (), ())
"""No intervention: the steps a hierarchy condition scoped to its early steps answers as is."""


def decode_chains(
    sweeper: Sweeper,
    adapter: ModelAdapter,
    items: Sequence[MainItem],
    condition: Condition,
    options: PromptOptions,
) -> list[tuple[Work, Condition]]:
    """Answer every item's sub-questions in order, feeding the model's OWN earlier answers as
    context (the hierarchy experiment); returns each decoded step with the condition it was
    decoded under (their texts are in the cache).

    With ``condition.meta["steps"] == "early"`` only the steps of the masked function are
    decoded under ``condition``; the others are answered unmasked, so a later step can only
    suffer through the earlier answers fed forward. Step k of all items is decoded as one batch
    (two with "early": masked and unmasked steps), so the batches only depend on ``items``.
    """
    own: dict[str, list[tuple[str, str]]] = {item.main_id: [] for item in items}
    images = {item.main_id: item.image() is not None for item in items}
    early = condition.meta.get("steps") == "early"
    steps: list[tuple[Work, Condition]] = []
    for k in range(max((len(item.subs) for item in items), default=0)):
        batch = []
        for item in items:
            if k < len(item.subs):
                sub = replace(item.subs[k], context=tuple(own[item.main_id]))
                text = adapter.chat_text(
                    prompt_text(item, sub, options), image=images[item.main_id]
                )
                masked = not early or sub.function == condition.meta.get("masked")
                batch.append((Work(item, sub, text), condition if masked else UNMASKED))
        for decoded_under in dict.fromkeys(c for _, c in batch):
            sweeper.run_batch([w for w, c in batch if c is decoded_under], [decoded_under])
        for w, c in batch:
            answer = parse_answer(sweeper.cache[sweeper.key(w, c)])
            own[w.item.main_id].append((w.sub.question, answer))
        steps.extend(batch)
    return steps
