"""Selectors of the "important" answer tokens for the ``topk_answer`` capture position.

CogVision asks an LLM which k tokens of the model's answer carry it (k in {1, 3, 5}) and averages
the activations there. ``HeuristicSelector`` is the offline stand-in (content tokens first, longest
first); ``LLMSelector`` asks any OpenAI-compatible endpoint, validates the reply and re-asks, and
falls back to the heuristic (counted) when the endpoint cannot give a valid answer. Selectors return
0-based indices into the answer's tokens.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from typing import Protocol

from cogvision.errors import LLMError, UsageError, require

log = logging.getLogger(__name__)

_STOP = frozenset("a an the is are was were be of to in on at and or it its this that answer final"
                  .split())
_WORD = re.compile(r"\w")


class TokenSelector(Protocol):
    name: str

    def select(self, question: str, tokens: Sequence[str], k: int) -> list[int]:
        """Indices (ascending, distinct, < len(tokens)) of at most ``k`` important tokens."""
        ...


class HeuristicSelector:
    """Content tokens (a letter or digit, not a stop word) first, longer first, then position."""

    name = "heuristic"

    def select(self, question: str, tokens: Sequence[str], k: int) -> list[int]:
        def rank(i: int) -> tuple[int, int, int]:
            word = tokens[i].strip().lower()
            content = bool(_WORD.search(word)) and word not in _STOP
            return (0 if content else 1, -len(word), i)

        return sorted(sorted(range(len(tokens)), key=rank)[:k])


_PROMPT = (
    "A model answered a question. Its answer is split into numbered tokens. Pick the {k} tokens "
    "that carry the answer's meaning (fewer if the answer is shorter).\n"
    "Question: {question}\nTokens:\n{listing}\n"
    'Reply with JSON only: {{"indices": [<token numbers>]}}'
)


def parse_indices(text: str, n_tokens: int, k: int) -> list[int]:
    """Validate an LLM reply ``{"indices": [...]}``; raises ValueError naming the problem."""
    match = re.search(r"\{.*\}", text, re.S)
    if match is None:
        raise ValueError(f"no JSON object in reply {text[:80]!r}")
    data = json.loads(match.group(0))
    indices = data.get("indices") if isinstance(data, dict) else None
    if not isinstance(indices, list) or not all(isinstance(i, int) for i in indices):
        raise ValueError(f"'indices' must be a list of integers, got {indices!r}")
    bad = [i for i in indices if not 0 <= i < n_tokens]
    if bad:
        raise ValueError(f"indices {bad} out of range 0..{n_tokens - 1}")
    chosen = sorted(set(indices))
    if not chosen or len(chosen) > k:
        raise ValueError(f"expected 1..{k} distinct indices, got {chosen}")
    return chosen


class LLMSelector:
    """Ask an OpenAI-compatible endpoint; re-ask on invalid replies; fall back to the heuristic.

    The API key comes from the environment variable ``api_key_env`` (never from config files).
    """

    name = "llm"

    def __init__(self, *, model: str, base_url: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", max_attempts: int = 3,
                 timeout: float = 60.0) -> None:
        openai = require("openai", "llm")
        key = os.environ.get(api_key_env) or ("not-needed" if base_url else None)
        if key is None:
            raise UsageError(f"the LLM token selector needs ${api_key_env} (or a base_url)")
        self.client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=2)
        self.model = model
        self.max_attempts = max_attempts
        self.fallback = HeuristicSelector()
        self.fallbacks = 0

    def select(self, question: str, tokens: Sequence[str], k: int) -> list[int]:
        if len(tokens) <= 1:
            return list(range(len(tokens)))
        listing = "\n".join(f"{i}: {t!r}" for i, t in enumerate(tokens))
        messages = [{"role": "user",
                     "content": _PROMPT.format(k=k, question=question, listing=listing)}]
        for attempt in range(1, self.max_attempts + 1):
            reply = self._ask(messages)
            try:
                return parse_indices(reply, len(tokens), k)
            except (ValueError, json.JSONDecodeError) as exc:
                log.warning("token selector: invalid reply (attempt %d): %s", attempt, exc)
                messages += [{"role": "assistant", "content": reply},
                             {"role": "user", "content": f"Invalid: {exc}. Reply with JSON only."}]
        self.fallbacks += 1
        return self.fallback.select(question, tokens, k)

    def _ask(self, messages: list[dict[str, str]]) -> str:
        openai = require("openai", "llm")
        try:
            response = self.client.chat.completions.create(model=self.model, messages=messages,
                                                           temperature=0)
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            raise LLMError(f"token selector endpoint failed: {exc}") from None
        return response.choices[0].message.content or ""


SELECTORS = ("heuristic", "llm")


def make_selector(name: str, **options: object) -> TokenSelector:
    """A selector by name (``heuristic`` | ``llm``)."""
    if name == "heuristic":
        return HeuristicSelector()
    if name == "llm":
        return LLMSelector(**options)  # type: ignore[arg-type]
    raise UsageError(f"unknown token selector {name!r}; known: {', '.join(SELECTORS)}")
