"""Prompt templates (versioned files), the response cache, and Retry-After parsing."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import pytest

from cogvision.config import resolve
from cogvision.decompose import DecomposeConfig
from cogvision.decompose.cache import ResponseCache, cache_key
from cogvision.decompose.client import _retry_after
from cogvision.decompose.runner import _cost
from cogvision.decompose.templates import TEMPLATE_NAMES, functions_block, load_prompts
from cogvision.errors import UsageError
from cogvision.schema import get_taxonomy


def test_builtin_prompts_render_taxonomy_definitions() -> None:
    prompts = load_prompts()
    assert prompts.version.startswith("v1+") and len(prompts.version) == 11
    tax = get_taxonomy("cogvsr")
    text = prompts.render("plan_system", schema="{}", functions=functions_block(tax),
                          min_steps="2", max_steps="8")
    for fn in tax.functions:
        assert f"- {fn.name}: {fn.definition}" in text
    assert "${" not in text


def copy_prompts(folder: Path) -> Path:
    builtin = load_prompts()
    folder.mkdir()
    for name in TEMPLATE_NAMES:
        (folder / f"{name}.txt").write_text(builtin.templates[name].template)
    return folder


def test_user_prompt_folder_gets_its_own_version(tmp_path: Path) -> None:
    folder = copy_prompts(tmp_path / "mine")
    same = load_prompts(folder)
    assert same.version.split("+")[1] == load_prompts().version.split("+")[1]
    (folder / "repair.txt").write_text("Fix: ${errors}")
    assert load_prompts(folder).version != same.version
    assert load_prompts(folder).render("repair", errors="- x") == "Fix: - x"


def test_bad_prompt_folders_are_usage_errors(tmp_path: Path) -> None:
    folder = copy_prompts(tmp_path / "p")
    (folder / "repair.txt").write_text("Fix ${nonsense}")
    with pytest.raises(UsageError, match=r"repair.txt uses an unknown placeholder 'nonsense'"):
        load_prompts(folder).render("repair", errors="x")
    (folder / "cot_user.txt").unlink()
    with pytest.raises(UsageError, match="lacks cot_user.txt"):
        load_prompts(folder)


def test_cache_round_trip_and_key_sensitivity(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    messages = [{"role": "user", "content": "hi"}]
    key = cache_key("m", messages, {"temperature": 0}, "v1+x")
    assert cache.get(key) is None
    cache.put(key, '{"a": 1}', {"prompt_tokens": 3, "completion_tokens": 2})
    assert cache.get(key) == {"text": '{"a": 1}', "usage": {"prompt_tokens": 3,
                                                           "completion_tokens": 2}}
    others = [cache_key("m2", messages, {"temperature": 0}, "v1+x"),
              cache_key("m", messages, {"temperature": 1}, "v1+x"),
              cache_key("m", messages, {"temperature": 0}, "v2+x"),
              cache_key("m", [{"role": "user", "content": "ho"}], {"temperature": 0}, "v1+x")]
    assert len({key, *others}) == 5
    (tmp_path / key[:2] / f"{key}.json").write_text("{torn")
    assert cache.get(key) is None  # unreadable entry is a miss, not a crash


def test_retry_after_forms() -> None:
    assert _retry_after({"retry-after": "1.5"}) == 1.5
    assert _retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert _retry_after({}) is None
    assert _retry_after({"retry-after": "soon"}) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (_retry_after({"retry-after": date}) or 0) <= 30


def test_prices_merge_over_the_defaults(tmp_path: Path) -> None:
    config_file = tmp_path / "run.yaml"
    config_file.write_text("model: m\nprices:\n  gpt-4.1: {output: 9.5}\n  my.model: "
                           "{input: 0.2, output: 0.6}\n")
    cfg = resolve(DecomposeConfig, path=config_file)
    assert cfg.prices["gpt-4.1"].input == 2.0 and cfg.prices["gpt-4.1"].output == 9.5
    assert cfg.prices["my.model"].output == 0.6 and "o3" in cfg.prices
    usage = {"my.model": {"prompt_tokens": 1_000_000, "completion_tokens": 500_000},
             "gpt-4.1": {"prompt_tokens": 0, "completion_tokens": 1_000_000}}
    assert _cost(usage, cfg) == {"usd": 0.5 + 9.5, "unpriced_models": []}
    assert _cost({"local": {"prompt_tokens": 5, "completion_tokens": 5}}, cfg) == {
        "usd": None, "unpriced_models": ["local"]}
