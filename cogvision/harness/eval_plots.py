"""PNG plots of ``cogvision eval``: head-importance heatmaps, dose-response curves and the
cross-function matrix. Functions are labelled by their taxonomy's short ``key`` (``math``,
``low_level``); :func:`key_caption` gives the key -> name mapping printed under the plots."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cogvision.schema.taxonomy import TAXONOMY_NAMES, get_taxonomy


def _fallback_key(name: str) -> str:
    """``Some New Function`` -> ``some_new`` (a function no built-in taxonomy knows)."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    return "_".join(words[:2]) or "function"


def short_labels(functions: Sequence[str]) -> dict[str, str]:
    """Short, unique plot label per function: the key of the first built-in taxonomy that knows
    every function (``cogvision``, ``cogvsr``, ``cogqa``), else per name, else a slug."""
    known = [f for f in functions if f]
    for name in TAXONOMY_NAMES:
        taxonomy = get_taxonomy(name)
        if all(taxonomy.find(f) is not None for f in known):
            return {f: taxonomy.key_of(f) for f in known}
    labels: dict[str, str] = {}
    for f in known:
        found = next((t for t in TAXONOMY_NAMES if get_taxonomy(t).find(f) is not None), None)
        key = get_taxonomy(found).key_of(f) if found else _fallback_key(f)
        while key in labels.values():
            key += "'"
        labels[f] = key
    return labels


def key_caption(labels: dict[str, str]) -> str:
    """``Keys: math = Math Reasoning; ...`` (one line, for a report caption)."""
    return "Keys: " + "; ".join(f"`{k}` = {f}" for f, k in labels.items())


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(n: int) -> tuple[int, int]:
    cols = min(4, max(1, n))
    return (n + cols - 1) // cols, cols


def plot_importance(path: Path, importance: dict[str, Any]) -> Path:
    """One heatmap ``[layers, heads]`` of probe accuracy per function."""
    plt = _pyplot()
    labels = short_labels(list(importance))
    rows, cols = _grid(len(importance))
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False, constrained_layout=True
    )
    for ax, (f, values) in zip(axes.flat, importance.items(), strict=False):
        grid = np.asarray(values)  # [layers, heads]
        im = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
        if max(grid.shape) <= 16:
            ax.set_xticks(range(grid.shape[1]))
            ax.set_yticks(range(grid.shape[0]))
        ax.set_title(labels[f], fontsize=9)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
    for ax in list(axes.flat)[len(importance) :]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label="probe accuracy")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_dose(path: Path, dose: Sequence[dict[str, Any]]) -> Path:
    """Accuracy vs % of heads masked, functional vs random (mean ± std), one panel per function."""
    plt = _pyplot()
    functions = list(dict.fromkeys(r["function"] for r in dose))
    labels = short_labels(functions)
    rows, cols = _grid(len(functions))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax, f in zip(axes.flat, functions, strict=False):
        part = [r for r in dose if r["function"] == f]
        x = [100 * r["fraction"] for r in part]
        ax.plot(x, [r["functional"] for r in part], "o-", label="functional")
        ax.errorbar(
            x,
            [r["random_mean"] for r in part],
            yerr=[r["random_std"] for r in part],
            fmt="s--",
            capsize=3,
            label="random",
        )
        ax.set_title(labels[f], fontsize=9)
        ax.set_xlabel("% heads masked")
        ax.set_ylabel("accuracy %")
    for ax in list(axes.flat)[len(functions) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_cross(path: Path, cross: dict[str, Any]) -> Path:
    """Heatmap of accuracy (rows: masked function, columns: evaluated), keys as tick labels and
    the key -> name legend right of the colour bar."""
    plt = _pyplot()
    matrix = np.asarray(cross["accuracy"], dtype=float)  # [masked, evaluated]
    labels = short_labels(list(dict.fromkeys([*cross["evaluated"], *cross["masked"]])))
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * matrix.shape[1], 1.0 + 0.7 * matrix.shape[0]))
    im = ax.imshow(matrix, cmap="magma", vmin=0, vmax=100)
    ax.set_xticks(
        range(len(cross["evaluated"])),
        [labels[f] for f in cross["evaluated"]],
        rotation=45,
        ha="right",
        fontsize=8,
    )
    ax.set_yticks(range(len(cross["masked"])), [labels[f] for f in cross["masked"]], fontsize=8)
    ax.set_xlabel("evaluated function")
    ax.set_ylabel("masked function")
    bar = fig.colorbar(im, ax=ax, label="accuracy %")
    legend = "\n".join(f"{k} = {f}" for f, k in labels.items())
    bar.ax.annotate(  # 50 points right of the colour bar: clear of its ticks and label
        legend,
        xy=(1.0, 0.5),
        xycoords="axes fraction",
        xytext=(50, 0),
        textcoords="offset points",
        fontsize=7,
        va="center",
        ha="left",
        family="monospace",
    )
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path
