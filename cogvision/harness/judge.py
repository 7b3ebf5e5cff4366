"""The ``llm_judge`` metric: an LLM behind an OpenAI-compatible endpoint decides whether a response
answers the sub-question (versioned prompt in ``judge_prompts/``, verdicts cached on disk).

The API key comes from the environment only (``api_key_env``) and is never written anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from cogvision.errors import LLMError, UsageError, require
from cogvision.schema.ids import content_hash

if TYPE_CHECKING:  # score.py registers the judge, so only the types come from there
    from cogvision.harness.score import Sample, Scores

log = logging.getLogger(__name__)

_VERDICT = re.compile(r"\b(yes|no|correct|incorrect|true|false)\b", re.I)


def load_judge_prompt(version: str = "judge-v1") -> dict[str, str]:
    """The versioned judge prompt ``judge_prompts/<version with - as _>.yaml`` (system, user)."""
    import yaml

    name = version.replace("judge-", "judge_") + ".yaml"
    path = resources.files("cogvision.harness") / "judge_prompts" / name
    if not path.is_file():
        raise UsageError(f"unknown judge prompt version {version!r} (no {name} in judge_prompts/)")
    prompt = yaml.safe_load(path.read_text(encoding="utf-8"))
    if prompt.get("version") != version:
        raise UsageError(f"judge prompt {name} declares version {prompt.get('version')!r}")
    return prompt


def parse_verdict(reply: str) -> bool | None:
    """``True``/``False`` from the first yes/no-like word of a judge reply, else ``None``."""
    match = _VERDICT.search(reply or "")
    if match is None:
        return None
    return match.group(1).lower() in {"yes", "correct", "true"}


class LLMJudge:
    """An LLM behind an OpenAI-compatible endpoint judges each response; verdicts cached on disk.

    The cache (``cache_dir/judge_cache.jsonl``) is keyed by model, prompt version, question, target
    and response, so re-runs and resumed runs never ask twice. The API key is read from the
    environment variable named by ``api_key_env`` when the judge is built, never written anywhere.
    """

    name = "llm_judge"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        prompt_version: str = "judge-v1",
        cache_dir: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        max_retries: int = 2,
        timeout: float = 60.0,
        max_tokens: int = 8,
    ) -> None:
        openai = require("openai", "llm")
        self.model, self.prompt_version, self.max_tokens = model, prompt_version, max_tokens
        self.prompt = load_judge_prompt(prompt_version)
        api_key = os.environ.get(api_key_env) or "not-needed-for-local-servers"
        self.client = openai.OpenAI(
            base_url=base_url, api_key=api_key, max_retries=max_retries, timeout=timeout
        )
        self.cache_path = Path(cache_dir) / "judge_cache.jsonl" if cache_dir else None
        self.cache = self._read_cache()
        self.calls = 0

    def _key(self, sample: Sample) -> str:
        return content_hash(
            [self.model, self.prompt_version, sample.question, sample.target, sample.response]
        )

    def _read_cache(self) -> dict[str, bool]:
        cache: dict[str, bool] = {}
        if self.cache_path is None or not self.cache_path.exists():
            return cache
        for text in self.cache_path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(text)
                cache[row["key"]] = bool(row["correct"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a torn last line from an interrupted run
        return cache

    def _remember(self, key: str, verdict: bool) -> None:
        self.cache[key] = verdict
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            with self.cache_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"key": key, "correct": verdict}) + "\n")

    def _ask(self, sample: Sample) -> str:
        openai = require("openai", "llm")
        user = self.prompt["user"].format(
            question=sample.question, target=sample.target, response=sample.response
        )
        messages = [
            {"role": "system", "content": self.prompt["system"]},
            {"role": "user", "content": user},
        ]
        self.calls += 1
        try:
            reply = self.client.chat.completions.create(
                model=self.model, messages=messages, temperature=0.0, max_tokens=self.max_tokens
            )
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            raise LLMError(f"LLM judge {self.model}: {type(exc).__name__}: {exc}") from None
        return reply.choices[0].message.content or ""

    def judge(self, sample: Sample) -> bool | None:
        """The cached or fresh verdict for one sample; ``None`` when the reply has no verdict."""
        key = self._key(sample)
        if key in self.cache:
            return self.cache[key]
        reply = self._ask(sample)
        verdict = parse_verdict(reply)
        if verdict is None:
            log.warning("LLM judge gave no yes/no verdict: %r", reply[:80])
            return None
        self._remember(key, verdict)
        return verdict

    def score(self, samples: Sequence[Sample]) -> list[Scores]:
        verdicts = [self.judge(s) for s in samples]
        return [{self.name: None if v is None else float(v)} for v in verdicts]
