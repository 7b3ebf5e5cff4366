"""The Markdown report of ``cogvision eval``: one section per experiment, plots beside it.

Besides the papers' tables it shows what the organism study (issue 8) found necessary to read
them honestly: the exact-match baseline beside the primary metric (with a warning when integrated
accuracy is far more lenient), Welch cells without variance printed as ``n/a (no variance)``, and
the function specificity of every masking effect under the cross-function matrix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cogvision.artifacts import write_text_atomic
from cogvision.harness.eval_plots import (
    key_caption,
    plot_cross,
    plot_dose,
    plot_importance,
    short_labels,
)
from cogvision.harness.specificity import function_specificity, specificity_table
from cogvision.harness.stats import NO_VARIANCE


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 0.01 and v != 0 else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def probe_rows(probe: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows (None where missing) of the best head per function beside the lexical
    baseline, and chance for answer probes; shared by ``report.md`` and the organism report."""
    chance = probe.get("chance") or {}
    headers = ["function", "best head", "validation acc.", "lexical baseline",
               *(["chance"] if chance else [])]
    rows = [[f, probe["best_head"].get(f, "-"), probe["best_score"].get(f),
             probe["lexical_accuracy"].get(f), *([chance.get(f)] if chance else [])]
            for f in probe["functions"]]
    return headers, rows


def _probe_section(probe: dict[str, Any]) -> str:
    """Best head per function next to the lexical baseline (and chance for answer probes): a probe
    no better than the question's wording has not shown that heads carry the function."""
    headers, rows = probe_rows(probe)
    rows = [[_or_dash(v) if i >= 2 else v for i, v in enumerate(row)] for row in rows]
    return (f"Probe `{probe['method']}` of the {probe.get('target', 'function')} at "
            f"`{probe['position']}` (train split only; lexical baseline: the same probe on the "
            f"question's words).\n\n" + _table(headers, rows))


def _or_dash(v: float | None) -> Any:
    return "-" if v is None else float(v)


def _baseline_section(results: dict[str, Any], primary: str) -> str:
    """Baseline accuracy under the primary metric, with exact match (and every other computed
    metric) beside it, and the lenient-metric warning when it applies."""
    by_metric = results.get("baseline_metrics") or {primary: results["baseline"]}
    metrics = list(dict.fromkeys([primary, "exact_match", *by_metric]))
    metrics = [m for m in metrics if m in by_metric]
    headers = ["function", *(f"{m} (primary)" if m == primary else m for m in metrics)]
    rows = [[f, *(by_metric[m].get(f, "-") for m in metrics)] for f in results["baseline"]]
    text = "## Baseline\n\n" + _table(headers, rows)
    if results.get("metric_warning"):
        text += "\n" + results["metric_warning"] + "\n"
    return text


def random_control(results: dict[str, Any]) -> str:
    """The run's random-head control ("any" or "layer_matched"); results written before the
    summary carried it hold it in every masking row."""
    rows = results.get("masking") or [{}]
    return str(results["summary"].get("random_control") or rows[0].get("random_control", "any"))


def _welch(r: dict[str, Any], key: str) -> Any:
    return NO_VARIANCE if r.get("degenerate") else r[key]


def _random(r: dict[str, Any]) -> str:
    if r.get("random_mean") is None:
        return "-"
    return f"{r['random_mean']:.2f} ± {r['random_std']:.2f}"


def _control_notes(rows: Sequence[dict[str, Any]], results: dict[str, Any]) -> str:
    text = ""
    if rows and random_control(results) == "layer_matched":
        text += ("\nRandom heads are layer-matched: as many from each layer as the functional "
                 "set has there.\n")
    if any(r.get("degenerate") for r in rows):
        text += (
            f"\n{NO_VARIANCE}: the random-head accuracies are equal over all seeds and the "
            "functional accuracy is one number, so Welch's t-test is undefined; such cells are "
            "left out of the Holm family.\n"
        )
    return text


def _masking_section(results: dict[str, Any]) -> str:
    masking = results["masking"]
    rows = [
        [r["function"], r["baseline"], r["functional"], r["lowest"], _random(r), r["gap"],
         _welch(r, "t"), _welch(r, "p"), _welch(r, "p_holm")]
        for r in masking
    ]
    headers = ["function", "baseline", "functional", "lowest", "random", "gap", "t", "p"]
    return ("## Masking: functional vs random vs lowest heads\n\n"
            + _table([*headers, "p (Holm)"], rows) + _control_notes(masking, results))


def _patch_section(results: dict[str, Any]) -> str:
    patch = results["patch"]
    rows = [
        [r["function"], r["group"], r["donor"], r["before"], r["after"], _random(r),
         _welch(r, "p"), _welch(r, "p_holm")]
        for r in patch
    ]
    headers = ["function", "patched with", "donor", "before", "functional heads",
               "random heads", "p", "p (Holm)"]
    return ("## Activation patching: functional vs random heads, same donor\n\n"
            + _table(headers, rows) + _control_notes(patch, results))


def _hierarchy_section(results: dict[str, Any]) -> str:
    hier = results["hierarchy"]
    rows = [
        [r["masked"], r["originally_correct"], r["accuracy"], _random(r), _welch(r, "p"),
         _welch(r, "p_holm")]
        for r in hier
    ]
    headers = ["masked function", "originally correct", "functional heads masked",
               "random heads masked", "p", "p (Holm)"]
    early = any(r.get("steps") == "early" for r in hier)
    scope = ("Heads masked only on the masked function's own steps (`hierarchy_steps=early`): a "
             "later step can fail only through the earlier answers fed forward.\n\n" if early
             else "Heads masked on every step of the chain, the evaluated later steps too "
             "(`hierarchy_steps=early` separates what is fed forward).\n\n")
    return ("## Hierarchy (own answers fed forward; later Math/Decision/Inference "
            "sub-questions the unmasked chain got right)\n\n" + scope
            + _table(headers, rows) + _control_notes(hier, results))


def _cross_section(results: dict[str, Any]) -> str:
    c = results["cross"]
    labels = short_labels(list(dict.fromkeys([*c["evaluated"], *c["masked"]])))
    rows = [[m, *vals] for m, vals in zip(c["masked"], c["accuracy"], strict=True)]
    specificity = results.get("specificity") or function_specificity(c)
    return (
        "## Cross-function matrix (rows: masked, columns: evaluated)\n\n"
        f"![cross](cross.png)\n\n{key_caption(labels)}\n\n"
        + _table(["masked", *(labels[e] for e in c["evaluated"])], rows)
        + "\n## Function specificity (points; own drop minus mean drop of the other functions, "
        "> 0 means specific)\n\n" + specificity_table(specificity)
    )


def _before_after_sections(results: dict[str, Any]) -> list[str]:
    parts = [_patch_section(results)] if "patch" in results else []
    for name, title in (("steer", "Steering"), ("fhi", "FHI/CCR rescaling")):
        if name in results:
            rows = [
                [r["condition"], r["function"], r["before"], r["after"], r["delta"]]
                for r in results[name]
            ]
            parts.append(
                f"## {title}\n\n"
                + _table(["condition", "function", "before", "after", "delta"], rows)
            )
    if "downstream" in results:
        rows = [[r["masked"], r["before"], r["after"], r["delta"]] for r in results["downstream"]]
        parts.append(
            "## Downstream VQA set\n\n"
            + _table(["masked function", "before", "after", "delta"], rows)
        )
    if "hierarchy" in results:
        parts.append(_hierarchy_section(results))
    return parts


def write_report(out: Path, results: dict[str, Any], plan: dict[str, Any]) -> list[Path]:
    """``report.md`` with the experiments' tables and PNG plots next to it; returns the PNGs."""
    s = results["summary"]
    parts = [
        f"# Intervention evaluation\n\nPrimary metric: `{s['primary_metric']}`; "
        f"{s['test_subquestions']} test sub-questions, {s['conditions']} conditions, "
        f"{s['samples']} scored responses ({s['undecided_scores']} undecided scores). "
        "Accuracies in %.\n"
    ]
    if results.get("metric_warning"):
        parts.append(results["metric_warning"] + "\n")
    plots = [plot_importance(out / "importance.png", plan["importance"])]
    caption = key_caption(short_labels(list(plan["importance"])))
    parts.append(
        f"## Head importance (train probes)\n\n![importance](importance.png)\n\n{caption}\n"
    )
    if (out / "probe" / "probe.json").is_file():
        parts.append(_probe_section(json.loads((out / "probe" / "probe.json").read_text())))
    parts.append(_baseline_section(results, s["primary_metric"]))
    if "masking" in results:
        parts.append(_masking_section(results))
    if "dose" in results:
        plots.append(plot_dose(out / "dose.png", results["dose"]))
        rows = [
            [
                r["function"],
                r["fraction"],
                r["functional"],
                f"{r['random_mean']:.2f} ± {r['random_std']:.2f}",
            ]
            for r in results["dose"]
        ]
        parts.append(
            "## Dose-response\n\n![dose](dose.png)\n\n"
            + _table(["function", "fraction", "functional", "random"], rows)
        )
    if "cross" in results:
        plots.append(plot_cross(out / "cross.png", results["cross"]))
        parts.append(_cross_section(results))
    parts += _before_after_sections(results)
    write_text_atomic(out / "report.md", "\n".join(parts))
    return plots
