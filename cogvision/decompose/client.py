"""An async chat-completions client: bounded concurrency, classified retries, structured-output
fallback, the response cache and token accounting.

The openai SDK's own retries are switched off (``max_retries=0``) so that every retry is classified,
counted and logged here: 429, 5xx, 408/409, timeouts and connection errors are retried with
exponential backoff and jitter, honouring ``Retry-After``; anything else fails the item (or, for
authentication and unknown-model errors, the whole run). When a server rejects ``json_schema``
the client falls back to JSON mode and then to plain text (the prompts carry the schema too, and
replies are parsed leniently); when a model refuses a sampling parameter (o-series models refuse
``temperature``), that parameter is dropped for that model.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from cogvision.decompose.cache import ResponseCache, cache_key
from cogvision.decompose.responses import response_format
from cogvision.errors import LLMError, require

log = logging.getLogger(__name__)

MODES = ("json_schema", "json_object", "text")
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema", "structured")
_RETRY_STATUS = {408, 409, 429}
RETRY_AFTER_CAP_S = 600.0  # a server's Retry-After is honoured as given, up to ten minutes


class RequestFailed(Exception):
    """One request failed for good (retries exhausted or a non-retryable error): fails the item."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class RetryPolicy:
    """How long to wait for and how often to retry one request."""

    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    timeout_s: float = 120.0


@dataclass
class ModelUsage:
    """Token and request counts of one model in one run."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_replies: int = 0


@dataclass
class ClientStats:
    retries: int = 0
    retries_by_reason: dict[str, int] = field(default_factory=dict)
    format_fallbacks: list[str] = field(default_factory=list)
    dropped_parameters: dict[str, list[str]] = field(default_factory=dict)
    usage: dict[str, ModelUsage] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"retries": self.retries, "retries_by_reason": dict(self.retries_by_reason),
                "format_fallbacks": list(self.format_fallbacks),
                "dropped_parameters": {m: list(p) for m, p in self.dropped_parameters.items()},
                "usage": {m: asdict(u) for m, u in sorted(self.usage.items())}}


class LLMClient:
    """Chat completions against any OpenAI-compatible server, with cache and retries."""

    def __init__(self, *, base_url: str | None, api_key: str, policy: RetryPolicy,
                 concurrency: int, rng: np.random.Generator, prompt_version: str,
                 cache: ResponseCache | None = None,
                 on_retry: Callable[[str], None] | None = None) -> None:
        self._errors = require("openai", "llm")
        self._client_args = {"api_key": api_key, "base_url": base_url, "max_retries": 0,
                             "timeout": policy.timeout_s}
        self._client: Any = None  # built on the first cache miss: a warm re-run never needs it
        self._completion_type = require("openai.types.chat", "llm").ChatCompletion
        self.policy = policy
        self.cache = cache
        self.prompt_version = prompt_version
        self.mode = MODES[0]
        self.stats = ClientStats()
        self._rng = rng
        self._semaphore = asyncio.Semaphore(concurrency)
        self._on_retry = on_retry
        self._dropped: dict[str, set[str]] = {}  # per model: parameters its server refused

    @property
    def _openai(self) -> Any:
        if self._client is None:
            self._client = self._errors.AsyncOpenAI(**self._client_args)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    def _usage(self, model: str) -> ModelUsage:
        return self.stats.usage.setdefault(model, ModelUsage())

    async def complete(self, model: str, messages: list[dict[str, Any]],
                       reply_model: type[BaseModel], parameters: dict[str, Any],
                       label: str = "") -> str:
        """The reply text for ``messages``: from the cache, else from the server (then cached)."""
        if self.cache is None:
            return (await self._request(model, messages, reply_model, parameters, label))[0]
        key = cache_key(model, messages, parameters, self.prompt_version)
        if (hit := self.cache.get(key)) is not None:
            self._usage(model).cached_replies += 1
            return str(hit["text"])
        text, usage = await self._request(model, messages, reply_model, parameters, label)
        # creating a file can take milliseconds: keep it off the event loop
        await asyncio.to_thread(self.cache.put, key, text, usage)
        return text

    async def _request(self, model: str, messages: list[dict[str, Any]],
                       reply_model: type[BaseModel], parameters: dict[str, Any],
                       label: str) -> tuple[str, dict[str, int]]:
        attempt = fixes = 0
        while True:
            mode = self.mode
            try:
                return await self._send(model, messages, reply_model, parameters, mode)
            except self._errors.APIStatusError as exc:
                name = _rejected_parameter(exc, parameters) if exc.status_code == 400 else None
                if name is not None and fixes < len(parameters):
                    fixes += 1
                    self._drop_parameter(model, name, exc)
                    continue
                if exc.status_code == 400 and mode != "text" and _mentions_format(exc):
                    self._downgrade(mode, exc)
                    continue
                if exc.status_code in (401, 403, 404):
                    raise LLMError(f"{model}: the server refused the request (HTTP "
                                   f"{exc.status_code}): {_short(exc)}") from None
                if exc.status_code not in _RETRY_STATUS and exc.status_code < 500:
                    raise RequestFailed(f"HTTP {exc.status_code}: {_short(exc)}",
                                        kind="http_error") from None
                reason, retry_after = f"http_{exc.status_code}", _retry_after(exc.response.headers)
            except self._errors.APITimeoutError:
                reason, retry_after = "timeout", None
            except self._errors.APIConnectionError as exc:
                reason, retry_after = "connection", None
                log.debug("connection error: %s", exc)
            if attempt >= self.policy.max_retries:
                raise RequestFailed(f"gave up after {attempt} retries (last: {reason})",
                                    kind=reason)
            attempt += 1
            await self._wait(attempt, reason, retry_after, label)

    async def _send(self, model: str, messages: list[dict[str, Any]],
                    reply_model: type[BaseModel], parameters: dict[str, Any],
                    mode: str) -> tuple[str, dict[str, int]]:
        extra: dict[str, Any] = {}
        if mode == "json_schema":
            extra["response_format"] = response_format(reply_model)
        elif mode == "json_object":
            extra["response_format"] = {"type": "json_object"}
        async with self._semaphore:
            dropped = self._dropped.get(model, set())
            body = {"model": model, "messages": messages, **extra,
                    **{k: v for k, v in parameters.items() if k not in dropped}}
            # The SDK's generic POST with the typed ChatCompletion result: the same request as
            # chat.completions.create, minus its type-driven transform of every message and of
            # the JSON Schema (2-5 ms of CPU per request, which capped throughput at 32 in flight).
            completion = await self._openai.post("/chat/completions", body=body,
                                                 cast_to=self._completion_type)
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        if completion.usage is not None:
            usage = {"prompt_tokens": completion.usage.prompt_tokens or 0,
                     "completion_tokens": completion.usage.completion_tokens or 0}
        counts = self._usage(model)
        counts.requests += 1
        counts.prompt_tokens += usage["prompt_tokens"]
        counts.completion_tokens += usage["completion_tokens"]
        choices = completion.choices or []
        text = (choices[0].message.content or "") if choices else ""
        return text, usage

    def _drop_parameter(self, model: str, name: str, exc: Exception) -> None:
        dropped = self._dropped.setdefault(model, set())
        if name not in dropped:
            dropped.add(name)
            self.stats.dropped_parameters.setdefault(model, []).append(name)
            log.warning("%s rejects '%s' (%s); sending it without", model, name, _short(exc))

    def _downgrade(self, mode: str, exc: Exception) -> None:
        if self.mode != mode:  # another request already downgraded from this mode
            return
        self.mode = MODES[MODES.index(mode) + 1]
        self.stats.format_fallbacks.append(f"{mode}->{self.mode}")
        log.warning("server rejected response_format %s (%s); falling back to %s", mode,
                    _short(exc), self.mode)

    async def _wait(self, attempt: int, reason: str, retry_after: float | None,
                    label: str) -> None:
        policy = self.policy
        if retry_after is not None:
            delay = min(retry_after, RETRY_AFTER_CAP_S)
        else:
            ceiling = min(policy.backoff_max_s, policy.backoff_base_s * 2 ** (attempt - 1))
            delay = ceiling * (0.5 + 0.5 * float(self._rng.random()))
        self.stats.retries += 1
        self.stats.retries_by_reason[reason] = self.stats.retries_by_reason.get(reason, 0) + 1
        log.warning("%s: %s, retry %d/%d in %.2fs", label or "request", reason, attempt,
                    policy.max_retries, delay)
        if self._on_retry is not None:
            self._on_retry(reason)
        await asyncio.sleep(delay)


def _rejected_parameter(exc: Exception, sent: dict[str, Any]) -> str | None:
    """The sampling parameter a 400 complains about (o-series models refuse ``temperature``)."""
    text = str(exc).lower()
    return next((name for name in sent if re.search(rf"\b{re.escape(name)}\b", text)), None)


def _mentions_format(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _FORMAT_WORDS)


def _short(exc: Exception, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), else None."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
