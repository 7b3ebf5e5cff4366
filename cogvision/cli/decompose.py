"""`cogvision decompose`: questions -> validated, function-labelled sub-questions via any
OpenAI-compatible model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cogvision.cli.common import ConfigOption, OverrideOption, console, progress

EPILOG = (
    "The API key is read from OPENAI_API_KEY only (any value for a local server). "
    "Examples: cogvision decompose --in q.jsonl --out out --model gpt-4.1  |  "
    "cogvision decompose --in q.jsonl --out out --model qwen2.5-vl "
    "--base-url http://localhost:8000/v1 --concurrency 32"
)


def decompose(
    in_path: Annotated[Path, typer.Option("--in", help="questions.jsonl of SourceQuestions.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (resumed if it has outputs).")],
    model: Annotated[str | None, typer.Option(help="Model name as the server knows it.")] = None,
    base_url: Annotated[str | None, typer.Option(
        help="Server URL, e.g. http://localhost:8000/v1 (default: OPENAI_BASE_URL or OpenAI).")
    ] = None,
    taxonomy: Annotated[str | None, typer.Option(help="cogvision | cogvsr | cogqa.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Requests in flight at most.")] = None,
    send_images: Annotated[bool | None, typer.Option(
        "--send-images/--no-images", help="Send images as data URLs (default: send).")] = None,
    max_attempts: Annotated[int | None, typer.Option(
        help="Asks per step, re-asks with the validation errors included.")] = None,
    verify_model: Annotated[str | None, typer.Option(
        help="Second model that re-answers every sub-question; disagreements are flagged.")
    ] = None,
    prompts: Annotated[Path | None, typer.Option(
        help="Folder with your own prompt templates (same file names as the built-in v1).")
    ] = None,
    cache_dir: Annotated[Path | None, typer.Option(
        help="Response cache folder (default: $COGVISION_CACHE_DIR or ~/.cache/cogvision/llm).")
    ] = None,
    cache: Annotated[bool | None, typer.Option("--cache/--no-cache",
                                               help="Use the response cache.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Per-request timeout (s).")] = None,
    retry_failures: Annotated[bool, typer.Option(
        help="Drop earlier decompose failures from failures.jsonl and try those items again.")
    ] = False,
    config: ConfigOption = None,
    overrides: OverrideOption = None,
) -> None:
    """Decompose main questions into 2-8 sub-questions, each answered and function-labelled.

    Writes OUT/decompositions.jsonl, OUT/failures.jsonl and OUT/manifest.json; every input id
    ends in exactly one of the two files. A re-run skips finished items, replays cached replies.
    """
    from cogvision.config import resolve
    from cogvision.decompose import DecomposeConfig, Hooks, decompose_file

    flags: dict[str, Any] = {
        "model": model, "base_url": base_url, "taxonomy": taxonomy, "concurrency": concurrency,
        "send_images": send_images, "max_attempts": max_attempts, "verify_model": verify_model,
        "prompts": prompts, "cache_dir": cache_dir, "cache": cache, "timeout_s": timeout,
    }
    cfg = resolve(DecomposeConfig, path=config, overrides=overrides, flags=flags)
    with progress() as bar:
        task = bar.add_task("decompose", total=None, failures=0, retries=0)
        counter = {"failures": 0, "retries": 0}

        def on_item(outcome: str) -> None:
            counter["failures"] += outcome == "failed"
            bar.update(task, advance=1, failures=counter["failures"])

        def on_retry(reason: str) -> None:
            counter["retries"] += 1
            bar.update(task, retries=counter["retries"])

        hooks = Hooks(start=lambda n: bar.update(task, total=n), item=on_item, retry=on_retry)
        result = decompose_file(in_path, out, cfg, retry_failures=retry_failures, hooks=hooks)
    _summary(result)


def _summary(result: Any) -> None:
    counts, stats = result.counts, result.stats
    console.print(
        f"{result.out_dir}: {counts['decompositions']} decompositions, {counts['failures']} "
        f"failures of {counts['input']} questions ({counts['skipped_already_done']} were already "
        f"done) in {result.seconds:.1f}s; retries {stats.get('retries', 0)}", soft_wrap=True)
    for model, usage in stats.get("usage", {}).items():
        console.print(f"  {model}: {usage['requests']} requests, {usage['cached_replies']} cached, "
                      f"{usage['prompt_tokens']}+{usage['completion_tokens']} tokens",
                      soft_wrap=True)
    if stats.get("verifier_disagreement_rate") is not None:
        console.print(f"  verifier disagreement rate: {stats['verifier_disagreement_rate']:.1%}")
    cost = stats.get("cost", {})
    if cost.get("usd") is not None:
        console.print(f"  cost: ${cost['usd']:.4f}")


def register(app: typer.Typer) -> None:
    app.command("decompose", epilog=EPILOG)(decompose)
