"""Reports of probing results (``cogvision probe report``).

From a fit folder (scores) and a select folder (heads): per-function importance heatmaps (layers x
heads, PNG), sparsity (heads whose score exceeds a threshold, 0.9 by default: CogVision found < 7%
for any function), overlap between functions' head sets (pairwise Jaccard and the share of selected
heads used by more than one function: CogVision reports 18%), histograms of selected heads per
layer, and the lexical baseline next to the best head's accuracy. Everything goes into one results
folder with ``summary.json``, ``summary.md`` and a manifest.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from cogvision.artifacts import strict_json, write_manifest, write_text_atomic
from cogvision.errors import require
from cogvision.harness.heads import HeadId
from cogvision.harness.probe import read_probe
from cogvision.harness.select import read_heads


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def sparsity(scores: np.ndarray, functions: list[str], threshold: float) -> dict[str, Any]:
    """Share of heads above ``threshold`` per function and for any function."""
    above = np.nan_to_num(scores, nan=-np.inf) > threshold  # [F, L, H]
    return {"threshold": threshold,
            "per_function": {f: float(above[i].mean()) for i, f in enumerate(functions)},
            "any_function": float(above.any(axis=0).mean())}


def overlap(heads: dict[str, Any]) -> dict[str, Any]:
    """Pairwise Jaccard of selected head sets and the share of heads selected for > 1 function."""
    sets = {f: set(e["selected"]) for f, e in heads["functions"].items()}
    names = sorted(sets)
    jaccard = {a: {b: (len(sets[a] & sets[b]) / len(sets[a] | sets[b]) if sets[a] | sets[b]
                       else 0.0) for b in names} for a in names}
    counts: dict[str, int] = {}
    for s in sets.values():
        for h in s:
            counts[h] = counts.get(h, 0) + 1
    shared = sum(1 for c in counts.values() if c > 1)
    return {"jaccard": jaccard, "distinct_heads": len(counts),
            "shared_share": shared / len(counts) if counts else 0.0}


def layer_histogram(heads: dict[str, Any]) -> dict[str, list[int]]:
    """Selected heads per layer, per function."""
    n_layers = int(heads["n_layers"])
    out = {}
    for f, entry in heads["functions"].items():
        counts = [0] * n_layers
        for h in entry["selected"]:
            counts[HeadId.parse(h).layer] += 1
        out[f] = counts
    return out


def _plots(scores: np.ndarray, functions: list[str], hist: dict[str, list[int]], out: Path,
           label: str) -> list[Path]:
    matplotlib = require("matplotlib", "harness")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for i, f in enumerate(functions):
        fig, ax = plt.subplots(figsize=(6, 4))
        im = ax.imshow(scores[i], aspect="auto", origin="lower", cmap="viridis")
        ax.set(title=f, xlabel="head", ylabel="layer")
        fig.colorbar(im, ax=ax, label=label)
        path = out / f"heatmap_{slug(f)}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    fig, ax = plt.subplots(figsize=(7, 4))
    for f, counts in hist.items():
        ax.plot(range(len(counts)), counts, marker="o", label=f)
    ax.set(xlabel="layer", ylabel="selected heads", title="Functional heads per layer")
    ax.legend(fontsize=7)
    path = out / "layer_histogram.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return [*paths, path]


def _markdown(summary: dict[str, Any]) -> str:
    lines = ["| function | best head | best score | lexical baseline | share > threshold |",
             "|---|---|---|---|---|"]
    sp = summary["sparsity"]["per_function"]
    for f in summary["functions"]:
        lex = summary["lexical_accuracy"].get(f)
        lines.append(f"| {f} | {summary['best_head'].get(f, '-')} | "
                     f"{summary['best_score'].get(f, float('nan')):.3f} | "
                     f"{'-' if lex is None else f'{lex:.3f}'} | {sp[f]:.3f} |")
    lines.append("")
    lines.append(f"Heads above {summary['sparsity']['threshold']} for any function: "
                 f"{summary['sparsity']['any_function']:.3f}; selected heads shared by more than "
                 f"one function: {summary['overlap']['shared_share']:.3f}.")
    return "\n".join(lines) + "\n"


def make_report(fit_dir: str | Path, select_dir: str | Path, out: str | Path, *,
                threshold: float = 0.9) -> dict[str, Any]:
    """Write heatmaps, histograms and a summary of a fit + select run into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scores, meta = read_probe(fit_dir)
    heads = read_heads(select_dir)
    functions = list(meta["functions"])
    hist = layer_histogram(heads)
    summary = {"functions": functions, "method": meta["method"], "position": meta["position"],
               "best_head": meta.get("best_head", {}), "best_score": meta.get("best_score", {}),
               "lexical_accuracy": meta.get("lexical_accuracy", {}),
               "sparsity": sparsity(scores, functions, threshold), "overlap": overlap(heads),
               "layer_histogram": hist}
    label = "validation accuracy" if meta["method"] == "logistic" else "importance"
    plots = _plots(scores, functions, hist, out, label)
    write_text_atomic(out / "summary.json", strict_json(summary, indent=2) + "\n")
    write_text_atomic(out / "summary.md", _markdown(summary))
    write_manifest(out / "manifest.json", "probe.report", config={"threshold": threshold},
                   inputs=[Path(fit_dir) / "scores.npy", Path(select_dir) / "heads.json"],
                   outputs=[out / "summary.json", *plots])
    return summary
