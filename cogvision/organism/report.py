"""Markdown tables of a ``cogvision eval`` run on the organism: probes next to the lexical baseline,
functional heads, masking (functional vs random vs lowest, Welch + Holm), cross-function matrix and
function specificity (:mod:`cogvision.harness.specificity`), dose-response, steering, and patching
and hierarchy against random heads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cogvision.harness.eval_markdown import probe_rows, random_control
from cogvision.harness.eval_plots import key_caption, short_labels
from cogvision.harness.specificity import function_specificity, specificity_table
from cogvision.harness.stats import NO_VARIANCE


def _f(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _p(row: dict[str, Any], key: str) -> str:
    """A p-value cell; Welch cells without variance in either group are not decided."""
    return NO_VARIANCE if row.get("degenerate") else _f(row[key], 4)


def probe_table(probe: dict[str, Any], heads: dict[str, list[str]]) -> str:
    """Best head, its validation accuracy, the lexical baseline (and chance, for answer probes),
    and the heads selected (``heads``: function -> heads, as ``results.json["selected"]``, or
    the masking conditions' ``results.json["heads"]`` of runs before it existed)."""
    headers, rows = probe_rows(probe)
    lines = ["| " + " | ".join([*headers, "functional heads"]) + " |",
             "|" + "---|" * (len(headers) + 1)]
    for f, best, *scores in rows:
        chosen = " ".join(heads.get(f, heads.get(f"masking/{f}/functional", []))) or "-"
        lines.append("| " + " | ".join([f, best, *(_f(v, 3) for v in scores), chosen]) + " |")
    return "\n".join(lines)


def _md(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of already formatted cells."""
    return "\n".join(["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
                      *("| " + " | ".join(row) + " |" for row in rows)])


def _random(r: dict[str, Any]) -> str:
    return f"{_f(r.get('random_mean'))} ± {_f(r.get('random_std'))}"


def masking_table(results: dict[str, Any]) -> str:
    return _md(["function", "baseline", "functional", "lowest", "random (mean ± std)", "gap", "p",
                "p (Holm)"],
               [[m["function"], _f(m["baseline"]), _f(m["functional"]), _f(m.get("lowest")),
                 _random(m), _f(m["gap"]), _p(m, "p"), _p(m, "p_holm")]
                for m in results["masking"]])


def cross_table(results: dict[str, Any]) -> str:
    """The cross-function matrix, columns keyed as in ``report.md`` and the plots, keys below."""
    cross = results["cross"]
    labels = short_labels(list(dict.fromkeys([*cross["evaluated"], *cross["masked"]])))
    short = [labels[e] for e in cross["evaluated"]]
    lines = ["| masked \\ evaluated | " + " | ".join(short) + " |",
             "|---" * (len(short) + 1) + "|",
             "| (none: baseline) | " + " | ".join(_f(b) for b in cross["baseline"]) + " |"]
    for name, row in zip(cross["masked"], cross["accuracy"], strict=True):
        lines.append(f"| {name} | " + " | ".join(_f(a) for a in row) + " |")
    return "\n".join([*lines, "", key_caption(labels)])


def dose_table(results: dict[str, Any]) -> str:
    """Functional / random (mean ± std) accuracy per function and share of heads masked."""
    fractions = sorted({d["fraction"] for d in results["dose"]})
    cells = {(d["function"], d["fraction"]): d for d in results["dose"]}
    functions = list(dict.fromkeys(d["function"] for d in results["dose"]))
    lines = ["| function | " + " | ".join(f"{100 * f:g}%" for f in fractions) + " |",
             "|---" * (len(fractions) + 1) + "|"]
    for f in functions:
        row = [cells.get((f, x)) for x in fractions]
        lines.append(f"| {f} | " + " | ".join(
            "-" if d is None else f"{d['functional']:.0f} / {d['random_mean']:.0f}±"
            f"{d['random_std']:.0f}" for d in row) + " |")
    return "\n".join(lines)


def steer_table(results: dict[str, Any]) -> str:
    lines = ["| function | before | after | change |", "|---|---|---|---|"]
    for r in results["steer"]:
        lines.append(f"| {r['function']}{' ' + r['group'] if r.get('group') else ''} | "
                     f"{_f(r['before'])} | {_f(r['after'])} | {r['delta']:+.1f} |")
    return "\n".join(lines)


def patch_table(results: dict[str, Any]) -> str:
    """Patched functional heads against as many random heads patched from the same donor."""
    return _md(["function", "patched with", "donor", "before", "functional heads",
                "random heads (mean ± std)", "p", "p (Holm)"],
               [[r["function"], r["group"], r["donor"], _f(r["before"]), _f(r["after"]),
                 _random(r), _p(r, "p"), _p(r, "p_holm")] for r in results["patch"]])


def hierarchy_table(results: dict[str, Any]) -> str:
    """Later steps the unmasked chain got right, with functional or random heads masked."""
    return _md(["masked function", "steps masked", "originally correct", "functional heads",
                "random heads (mean ± std)", "p", "p (Holm)"],
               [[r["masked"], r.get("steps", "all"), str(r["originally_correct"]),
                 _f(r["accuracy"]), _random(r), _p(r, "p"), _p(r, "p_holm")]
                for r in results["hierarchy"]])


def harness_summary(run: str | Path) -> str:
    """All tables of one run folder as Markdown."""
    run = Path(run)
    results = json.loads((run / "results.json").read_text())
    probe = json.loads((run / "probe" / "probe.json").read_text())
    parts = [f"Primary metric: `{results['summary']['primary_metric']}`; "
             f"{results['summary']['test_subquestions']} test sub-questions; probe "
             f"`{probe['method']}` of the {probe.get('target', 'function')} at "
             f"`{probe['position']}`.",
             "", "Probes (train split; validation accuracy) and the heads selected:", "",
             probe_table(probe, results.get("selected") or results["heads"])]
    if results.get("masking"):
        parts += ["", f"Masking on the test split (random control `{random_control(results)}`):",
                  "", masking_table(results)]
    if results.get("cross"):
        rows = results.get("specificity") or function_specificity(results["cross"])
        parts += ["", "Cross-function matrix (accuracy, %):", "", cross_table(results), "",
                  "Function specificity (points):", "", specificity_table(rows).rstrip()]
    if results.get("dose"):
        parts += ["", "Dose-response (functional / random mean±std over the seeds, %; share of "
                  "heads masked, top-ranked by the function's probe):", "", dose_table(results)]
    if results.get("steer"):
        parts += ["", "Steering:", "", steer_table(results)]
    if results.get("patch"):
        parts += ["", "Activation patching against random heads patched from the same donor:", "",
                  patch_table(results)]
    if results.get("hierarchy"):
        parts += ["", "Hierarchy (later Math / Decision / Inference steps the unmasked chain got "
                  "right):", "", hierarchy_table(results)]
    return "\n".join(parts) + "\n"


def masking_record(sources: list[tuple[str | Path, list[str], dict[str, Any]]], *,
                   fresh_seed: int = 10_002, fresh_n: int = 60,
                   epsilon: float = 0.001) -> dict[str, Any]:
    """The numbers ``tests/integration/organism/test_shipped_masking.py`` checks, taken from
    ``cogvision eval`` run folders (``sources``: run folder, the functions to record from it, and
    per-check overrides such as a larger ``fresh_n`` for a smaller effect): per function its
    selected heads, how they were selected, the random control, and the recorded baseline,
    functional and random-head accuracies (``models/<organism>/masking_record.json``).
    """
    checks = [c | extra for run, functions, extra in sources
              for c in _masking_checks(Path(run), functions)]
    return {"source": "benchmarks/organism.md (cogvision eval runs, exact match)",
            "epsilon": epsilon, "scope": "all", "fresh_seed": fresh_seed, "fresh_n": fresh_n,
            "checks": checks}


def _masking_checks(run: Path, functions: list[str]) -> list[dict[str, Any]]:
    results = json.loads((run / "results.json").read_text())
    rows = {r["function"]: r for r in results["masking"]}
    unknown = [f for f in functions if f not in rows]
    if unknown:
        raise ValueError(f"{run}/results.json: no masking row for {unknown}; "
                         f"functions: {sorted(rows)}")
    probe = json.loads((run / "probe" / "probe.json").read_text())
    selection = f"{probe.get('target', 'function')} probe at {probe['position']}"
    checks = []
    for f in functions:
        r = rows[f]
        entry = {"function": f, "selection": selection,
                 "random_control": random_control(results),
                 "heads": results["heads"][f"masking/{f}/functional"],
                 **{k: round(r[k], 2) for k in ("baseline", "functional", "random_mean",
                                                "random_std")},
                 "p_holm": None if r.get("p_holm") is None else round(r["p_holm"], 4)}
        if r.get("degenerate"):
            entry["degenerate"] = True
        checks.append(entry)
    return checks
