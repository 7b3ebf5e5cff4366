"""Scoring, analyses, results and the Markdown report of ``cogvision eval``.

``finalize`` reads one or more run folders (one per shard), unions their generation caches, scores
every (condition, test sub-question) response with the configured metrics (identical responses are
scored once), computes accuracy per condition and function from the primary metric, runs the
experiments' analyses and writes ``samples.jsonl``, ``results.json``, ``report.md`` (see
:mod:`cogvision.harness.eval_markdown`), PNG plots and ``manifest.json``. Undecided scores
(``None``, e.g. a judge without a verdict) count as incorrect and are counted in ``results.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from cogvision.artifacts import strict_json, write_manifest, write_text_atomic
from cogvision.errors import ArtifactError, UsageError
from cogvision.harness.analyses import (
    analyze_before_after,
    analyze_cross,
    analyze_dose,
    analyze_hierarchy,
    analyze_masking,
    analyze_patch,
)
from cogvision.harness.answer import parse_answer
from cogvision.harness.eval_markdown import write_report
from cogvision.harness.experiments import DOWNSTREAM, Condition, HeadSets
from cogvision.harness.score import Metric, Sample, build_metric, exact_match, score_samples
from cogvision.harness.specificity import function_specificity
from cogvision.harness.sweep import UNMASKED, GenerationCache, generation_key

PLAN, GENERATIONS, WORK, CHAINS = "plan.json", "generations.jsonl", "work.jsonl", "chains.jsonl"


def build_metrics(scoring: Any, cache_dir: Path) -> list[Metric]:
    """The configured metrics, with their options."""
    metrics = []
    for name in scoring.metrics:
        options: dict[str, Any] = {}
        if name == "integrated_accuracy":
            options = {
                "bleu_threshold": scoring.bleu_threshold,
                "rouge_threshold": scoring.rouge_threshold,
                "cosine_threshold": scoring.cosine_threshold,
            }
        elif name == "llm_judge":
            if not scoring.judge_model:
                raise UsageError("metric llm_judge needs scoring.judge_model (and judge_base_url)")
            options = {
                "model": scoring.judge_model,
                "base_url": scoring.judge_base_url,
                "prompt_version": scoring.judge_prompt_version,
                "cache_dir": str(cache_dir),
            }
        metrics.append(build_metric(name, **options))
    return metrics


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise ArtifactError(f"{path}: not found")
    return json.loads(path.read_text(encoding="utf-8"))


def _read_chains(runs: Sequence[Path]) -> list[dict[str, Any]]:
    """Hierarchy chain steps of all runs, in a canonical order (condition, item, step)."""
    rows = []
    for run in runs:
        if (run / CHAINS).is_file():
            text = (run / CHAINS).read_text(encoding="utf-8")
            rows += [json.loads(line) for line in text.splitlines()]
    return sorted(rows, key=lambda r: (r["condition"], r["main_id"], r["index"]))


def _read_runs(runs: Sequence[Path]) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    """The common plan, the union of work rows and of generation caches of the run folders."""
    plan = _read_json(runs[0] / PLAN)
    work: dict[str, dict[str, Any]] = {}
    texts: dict[str, str] = {}
    for run in runs:
        other = _read_json(run / PLAN)
        if other["fingerprint"] != plan["fingerprint"] or other["conditions"] != plan["conditions"]:
            raise ArtifactError(f"{run / PLAN}: differs from {runs[0] / PLAN}; shards of one run?")
        for line in (run / WORK).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            work.setdefault(row["doc_id"], row)
        texts.update(GenerationCache(run / GENERATIONS).data)
    return plan, sorted(work.values(), key=lambda row: row["position"]), texts


def collect_samples(
    plan: dict[str, Any],
    work: Sequence[dict[str, Any]],
    texts: dict[str, str],
    chains: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """One record per (condition, test sub-question of its functions), in plan order.

    Hierarchy conditions take their rows from the decoded chains (own answers as context) and
    keep only the later steps (index > 0) of their evaluated functions.
    """
    from cogvision.harness.plan import condition_from_json

    samples, missing = [], 0
    for data in plan["conditions"]:
        condition: Condition = condition_from_json(data)
        hierarchy = condition.meta.get("experiment") == "hierarchy"
        rows = [r for r in chains if r["condition"] == condition.name] if hierarchy else work
        for row in rows:
            if row["function"] not in condition.functions or (hierarchy and row["index"] == 0):
                continue
            # a hierarchy step scoped out of its condition's mask was decoded unmasked
            specs = condition.key if row.get("masked", True) else UNMASKED.key
            key = generation_key(
                plan["fingerprint"], row["doc_id"], row["input"], specs, plan["max_new_tokens"]
            )
            if key not in texts:
                missing += 1
                continue
            samples.append(
                {
                    "doc_id": row["doc_id"],
                    "condition": condition.name,
                    "experiment": condition.meta.get("experiment", ""),
                    "function": row["function"],
                    "input": row["input"],
                    "question": row["question"],
                    "target": row["target"],
                    "resps": [texts[key]],
                    "response": parse_answer(texts[key]),
                }
            )
    if missing:
        raise ArtifactError(
            f"{missing} generations are missing; rerun the same eval command "
            "(it resumes) or run the missing shards"
        )
    return samples


def score_all(samples: list[dict[str, Any]], metrics: Sequence[Metric]) -> None:
    """Add every metric's values to each sample; identical triples are scored once."""
    unique: dict[tuple[str, str, str], int] = {}
    for s in samples:
        unique.setdefault((s["question"], s["target"], s["response"]), len(unique))
    triples = list(unique)
    scores = score_samples([Sample(q, t, r) for q, t, r in triples], metrics)
    for s in samples:
        s.update(scores[unique[(s["question"], s["target"], s["response"])]])


def accuracies(samples: Sequence[dict[str, Any]], primary: str) -> dict[tuple[str, str], float]:
    """Accuracy in % per (condition, function) from the primary metric (None counts as 0)."""
    sums: dict[tuple[str, str], list[float]] = {}
    for s in samples:
        if primary not in s:
            raise UsageError(f"primary metric {primary!r} is not among the computed ones")
        value = s[primary]
        sums.setdefault((s["condition"], s["function"]), []).append(float(value or 0.0))
    return {k: 100.0 * float(np.mean(v)) for k, v in sums.items()}


LENIENT_GAP = 20.0  # points by which integrated accuracy may exceed exact match before a warning


def baseline_metrics(
    samples: Sequence[dict[str, Any]], metrics: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Baseline accuracy (%) per metric and function; exact match always (computed if needed)."""
    base = [s for s in samples if s["condition"] == "baseline"]
    out: dict[str, dict[str, float]] = {}
    for metric in dict.fromkeys([*metrics, "exact_match"]):
        per: dict[str, list[float]] = {}
        for s in base:
            value = s.get(metric) if metric in s else exact_match(s["response"], s["target"])
            per.setdefault(s["function"], []).append(float(value or 0.0))
        out[metric] = {f: 100.0 * float(np.mean(v)) for f, v in per.items()}
    return out


def lenient_metric_warning(
    by_metric: dict[str, dict[str, float]], primary: str = "integrated_accuracy"
) -> str | None:
    """One line when integrated accuracy exceeds exact match by > 20 points on some function."""
    lenient, exact = by_metric.get("integrated_accuracy"), by_metric["exact_match"]
    if lenient is None:
        return None
    gaps = {f: lenient[f] - exact[f] for f in lenient if lenient[f] - exact[f] > LENIENT_GAP}
    if not gaps:
        return None
    worst = ", ".join(f"{f} {lenient[f]:.0f} vs {exact[f]:.0f}" for f in gaps)
    advice = (
        "prefer `-C scoring.primary=exact_match` (or an LLM judge) for claims"
        if primary == "integrated_accuracy"
        else f"the primary metric here is `{primary}`"
    )
    return (
        f"Warning: integrated_accuracy exceeds exact_match by more than {LENIENT_GAP:.0f} points "
        f"on {len(gaps)} function(s) ({worst}): it is lenient for short answers; {advice}."
    )


def analyze(
    plan: dict[str, Any],
    acc: dict[tuple[str, str], float],
    experiments: Any,
    samples: Sequence[dict[str, Any]] = (),
    primary: str = "exact_match",
) -> dict[str, Any]:
    """Every experiment's analysis; hierarchy's reads the scored chain ``samples``."""
    from cogvision.harness.plan import condition_from_json

    conditions = [condition_from_json(c) for c in plan["conditions"]]
    kinds = {c.meta.get("experiment") for c in conditions}
    out: dict[str, Any] = {
        "baseline": {f: acc[("baseline", f)] for f in plan["functions"] if ("baseline", f) in acc}
    }
    if "masking" in kinds:
        out["masking"] = analyze_masking(conditions, acc, experiments)
    if "dose" in kinds:
        out["dose"] = analyze_dose(conditions, acc, experiments)
    if "cross" in kinds:
        out["cross"] = analyze_cross(conditions, acc)
        out["specificity"] = function_specificity(out["cross"])
    if "patch" in kinds:
        out["patch"] = analyze_patch(conditions, acc, experiments)
    for name in ("steer", "fhi"):
        if name in kinds:
            out[name] = analyze_before_after(conditions, acc, name)
    if any(s["experiment"] == "hierarchy" for s in samples):
        out["hierarchy"] = analyze_hierarchy(samples, primary, conditions, experiments)
    if "downstream" in kinds:
        before = acc[("downstream/none", DOWNSTREAM)]
        out["downstream"] = [
            {
                "masked": c.meta["masked"],
                "before": before,
                "after": acc[(c.name, DOWNSTREAM)],
                "delta": acc[(c.name, DOWNSTREAM)] - before,
            }
            for c in conditions
            if c.meta.get("experiment") == "downstream" and c.meta["masked"] is not None
        ]
    return out


def finalize(
    out: Path, runs: Sequence[Path], config: Any, started: datetime | None = None
) -> dict[str, Any]:
    """Score, analyse and write results, samples, report and manifest into ``out``."""
    plan, work, texts = _read_runs(runs)
    samples = collect_samples(plan, work, texts, _read_chains(runs))
    score_all(samples, build_metrics(config.scoring, out))
    acc = accuracies(samples, config.scoring.primary)
    analyses = analyze(plan, acc, config.experiments, samples, config.scoring.primary)
    by_metric = baseline_metrics(samples, config.scoring.metrics)
    analyses["baseline_metrics"] = by_metric
    analyses["metric_warning"] = lenient_metric_warning(by_metric, config.scoring.primary)
    undecided = sum(1 for s in samples for m in config.scoring.metrics if s.get(m, 0) is None)
    summary = {
        "samples": len(samples),
        "conditions": len(plan["conditions"]),
        "test_subquestions": len(work),
        "primary_metric": config.scoring.primary,
        "random_control": config.experiments.random_control,
        "undecided_scores": undecided,
    }
    results = {
        "summary": summary,
        "functions": plan["functions"],
        "accuracy": {f"{c}|{f}": a for (c, f), a in sorted(acc.items())},
        "heads": _heads(plan),
        "selected": _selected(plan, config.experiments.top_fraction),
        "fhi_heads": plan.get("fhi"),
        **analyses,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        out / "samples.jsonl", "".join(strict_json(s, ensure_ascii=False) + "\n" for s in samples)
    )
    write_text_atomic(out / "results.json", strict_json(results, indent=1) + "\n")
    plots = write_report(out, results, plan)
    write_manifest(
        out / "manifest.json",
        "eval",
        config=config.model_dump(mode="json"),
        counts={k: v for k, v in summary.items() if isinstance(v, int)},
        outputs=[out / "samples.jsonl", out / "results.json", out / "report.md", *plots],
        seed=config.experiments.seed,
        started_at=started,
        extra={"fingerprint": plan["fingerprint"], "runs": [str(r) for r in runs]},
    )
    return results


def _selected(plan: dict[str, Any], fraction: float) -> dict[str, list[str]]:
    """Each function's functional heads (the top ``fraction`` of its train importance), whatever
    experiments ran."""
    sets = HeadSets({f: np.asarray(v) for f, v in plan["importance"].items()})
    return {f: [str(h) for h in sets.functional(f, fraction)] for f in sets.functions}


def _heads(plan: dict[str, Any]) -> dict[str, list[str]]:
    return {
        c["name"]: c["specs"][0]["heads"]
        for c in plan["conditions"]
        if c["name"].endswith("/functional") and c["name"].startswith("masking/")
    }
