"""Choosing functional heads from probe scores (``cogvision probe select``).

Methods (``select.method``): ``top_p`` (the best fraction of all heads per function, default 10% as
in CogVision), ``top_k`` (ITI), ``elbow`` (the knee of the sorted score curve: the point farthest
from the line joining its ends, as used with joint-MLP importances), ``threshold`` (score >= a
value). For every function two control sets of the same size are drawn from the heads NOT selected
for it: random heads (a passed-in numpy Generator) and the lowest-scoring heads. Selection reads
only a fit folder whose rows are all from the train split (checked against the capture index): it
refuses otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cogvision.artifacts import strict_json, write_manifest, write_text_atomic
from cogvision.errors import ArtifactError, UsageError
from cogvision.harness.capture import read_index
from cogvision.harness.heads import HeadId
from cogvision.harness.probe import ROWS_JSON, read_probe

METHODS = ("top_p", "top_k", "elbow", "threshold")
HEADS_JSON, MANIFEST = "heads.json", "manifest.json"


class SelectOptions(BaseModel):
    """How heads are selected (recorded in the manifest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str = "top_p"
    top_p: float = Field(default=0.10, gt=0.0, le=1.0)
    top_k: int = Field(default=48, ge=1)
    threshold: float = 0.9
    seed: int = 0


def elbow(sorted_scores: np.ndarray) -> int:
    """Number of heads before the knee of a descending curve (at least 1).

    The knee is the point farthest from the chord joining the curve's ends (the first point of the
    flat tail); the heads before it are kept.
    """
    y = np.asarray(sorted_scores, dtype=np.float64)
    n = len(y)
    if n < 3 or y[0] == y[-1]:
        return min(n, 1)
    x = np.arange(n, dtype=np.float64)
    # distance of each point to the chord from (0, y0) to (n-1, y_last)
    dx, dy = x[-1] - x[0], y[-1] - y[0]
    dist = np.abs(dy * x - dx * y + dx * y[0] - dy * x[0]) / np.hypot(dx, dy)
    return max(1, int(np.argmax(dist)))


def _count(scores: np.ndarray, order: np.ndarray, options: SelectOptions) -> int:
    n = len(scores)
    if options.method == "top_p":
        return max(1, int(round(options.top_p * n)))
    if options.method == "top_k":
        return min(n, options.top_k)
    if options.method == "elbow":
        return elbow(scores[order])
    return int((scores >= options.threshold).sum())


def select_function(scores: np.ndarray, options: SelectOptions,
                    rng: np.random.Generator) -> dict[str, list[int]]:
    """Selected, random-control and lowest-control flat head indices for one function.

    Args:
        scores: [layers * heads] (NaN = not scored; never selected).
    """
    valid = np.flatnonzero(~np.isnan(scores))
    order = valid[np.argsort(-scores[valid], kind="stable")]
    k = _count(scores[valid], np.argsort(-scores[valid], kind="stable"), options)
    selected = order[:k]
    rest = np.setdiff1d(np.arange(len(scores)), selected)
    size = min(k, len(rest))
    random = np.sort(rng.choice(rest, size, replace=False)) if size else np.array([], int)
    chosen = set(selected.tolist())
    lowest_pool = [i for i in order[::-1] if i not in chosen]
    return {"selected": [int(i) for i in selected], "random": [int(i) for i in random],
            "lowest": [int(i) for i in lowest_pool[:size]]}


def check_train_only(fit_dir: Path, capture_dir: Path) -> int:
    """Refuse a fit whose rows include anything but train-split rows; returns rows checked."""
    used = json.loads((fit_dir / ROWS_JSON).read_text(encoding="utf-8"))
    split_of = {r.id: r.split for r in read_index(capture_dir)}
    ids = used["fit"] + used["val"]
    leaked = [i for i in ids if split_of.get(i) != "train"]
    if leaked:
        raise UsageError(f"{fit_dir}: probes were fitted on {len(leaked)} row(s) outside the train "
                         f"split (e.g. {leaked[0]}); head selection must never see the evaluation "
                         "split")
    return len(ids)


class SelectResult(BaseModel):
    out: str
    sizes: dict[str, int]
    top: dict[str, list[str]]


def select_heads(fit_dir: str | Path, out: str | Path, options: SelectOptions, *,
                 config: dict[str, Any] | None = None) -> SelectResult:
    """Select functional heads and controls for every function; write ``heads.json``."""
    if options.method not in METHODS:
        raise UsageError(f"unknown selection method {options.method!r}; known: "
                         f"{', '.join(METHODS)}")
    fit_dir, out = Path(fit_dir), Path(out)
    scores, meta = read_probe(fit_dir)
    capture_dir = Path(meta["capture"])
    if not capture_dir.is_dir():
        raise ArtifactError(f"{fit_dir}: its capture folder {capture_dir} is missing")
    checked = check_train_only(fit_dir, capture_dir)
    rng = np.random.default_rng(options.seed)
    n_heads = int(meta["n_heads"])
    result: dict[str, Any] = {"n_layers": meta["n_layers"], "n_heads": n_heads,
                              "method": options.method, "probe_method": meta["method"],
                              "position": meta["position"], "functions": {}}
    for fi, f in enumerate(meta["functions"]):
        flat = scores[fi].reshape(-1)
        if np.isnan(flat).all():
            continue
        sets = select_function(flat, options, rng)
        entry: dict[str, Any] = {name: [str(HeadId.from_flat(i, n_heads)) for i in idx]
                 for name, idx in sets.items()}
        entry["scores"] = [round(float(flat[i]), 6) for i in sets["selected"]]
        result["functions"][f] = entry
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / HEADS_JSON, strict_json(result, indent=2) + "\n")
    write_manifest(out / MANIFEST, "probe.select", config=config or options.model_dump(),
                   seed=options.seed, inputs=[fit_dir / "scores.npy", fit_dir / ROWS_JSON],
                   outputs=[out / HEADS_JSON], counts={"train_rows_checked": checked})
    funcs = result["functions"]
    return SelectResult(out=str(out), sizes={f: len(e["selected"]) for f, e in funcs.items()},
                        top={f: e["selected"][:3] for f, e in funcs.items()})


def read_heads(folder: str | Path) -> dict[str, Any]:
    """The ``heads.json`` of a select folder (the input of interventions)."""
    path = Path(folder) / HEADS_JSON
    if not path.is_file():
        raise ArtifactError(f"{path}: not found (run `cogvision probe select` first)")
    return json.loads(path.read_text(encoding="utf-8"))
