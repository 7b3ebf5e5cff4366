"""The analyses of the intervention experiments: accuracies per condition -> result rows.

Every experiment that intervenes on a function's selected heads (masking, patching, hierarchy) is
compared with the same intervention on random heads (``seeds`` draws; ``random_control`` says
from which layers, see :mod:`cogvision.harness.heads`): mean ± std over draws, Welch t-test of the
random accuracies against the functional one (the functional heads are fixed, so this is a
one-sample t-test), Holm-corrected over the experiment's rows. A row whose random accuracies have
no variance is ``degenerate`` (Welch undefined): ``p_holm`` and ``significant`` are None and it is
left out of the Holm family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cogvision.harness.experiments import Condition, ExperimentConfig
from cogvision.harness.stats import holm, mean_std, welch_t_test

Accuracy = dict[tuple[str, str], float]  # (condition name, function) -> accuracy in %


def versus_random(random: Sequence[float], functional: float, cfg: ExperimentConfig
                  ) -> dict[str, Any]:
    """Random-head accuracies against the functional heads' one: mean, std, gap, Welch t and p."""
    stats = mean_std(random)
    test = welch_t_test(random, [functional] * len(random))
    return {
        "random_mean": stats.mean,
        "random_std": stats.std,
        "gap": stats.mean - functional,
        "random_control": cfg.random_control,
        "t": test.t,
        "p": test.p,
        "degenerate": test.degenerate,
    }


def holm_rows(rows: list[dict[str, Any]], cfg: ExperimentConfig) -> list[dict[str, Any]]:
    """Add ``p_holm`` and ``significant`` to ``rows`` (one Holm family; degenerate rows: None)."""
    tested = [r for r in rows if not r["degenerate"]]
    for row, adjusted in zip(tested, holm([r["p"] for r in tested]), strict=True):
        row["p_holm"] = adjusted
        row["significant"] = bool(adjusted <= cfg.alpha_level)
    for row in rows:
        if row["degenerate"]:
            row["p_holm"], row["significant"] = None, None
    return rows


def _seeds(cfg: ExperimentConfig) -> list[int]:
    return [cfg.seed + s for s in range(cfg.seeds)]


def analyze_masking(
    conditions: Sequence[Condition], acc: Accuracy, cfg: ExperimentConfig
) -> list[dict[str, Any]]:
    """One row per function: baseline, functional, lowest, random mean ± std, Welch, Holm."""
    rows = []
    for f in dict.fromkeys(
        c.meta["function"] for c in conditions if c.meta.get("experiment") == "masking"
    ):
        random = [acc[(f"masking/{f}/random/{seed}", f)] for seed in _seeds(cfg)]
        functional = acc[(f"masking/{f}/functional", f)]
        rows.append(
            {
                "function": f,
                "baseline": acc[("baseline", f)],
                "functional": functional,
                "lowest": acc[(f"masking/{f}/lowest", f)],
                **versus_random(random, functional, cfg),
            }
        )
    return holm_rows(rows, cfg)


def analyze_dose(
    conditions: Sequence[Condition], acc: Accuracy, cfg: ExperimentConfig
) -> list[dict[str, Any]]:
    rows = []
    for c in conditions:
        if c.meta.get("experiment") != "dose" or c.meta["group"] != "functional":
            continue
        f, fraction = c.meta["function"], c.meta["fraction"]
        random = [acc[(f"dose/{f}/{fraction}/random/{seed}", f)] for seed in _seeds(cfg)]
        stats = mean_std(random)
        rows.append(
            {
                "function": f,
                "fraction": fraction,
                "functional": acc[(c.name, f)],
                "random_mean": stats.mean,
                "random_std": stats.std,
            }
        )
    return rows


def analyze_cross(conditions: Sequence[Condition], acc: Accuracy) -> dict[str, Any]:
    cross = [c for c in conditions if c.meta.get("experiment") == "cross"]
    functions = list(cross[0].functions) if cross else []
    matrix = [[acc[(c.name, g)] for g in functions] for c in cross]
    baseline = [acc[("baseline", g)] for g in functions]
    return {
        "masked": [c.meta["masked"] for c in cross],
        "evaluated": functions,
        "accuracy": matrix,
        "baseline": baseline,
    }


def analyze_patch(
    conditions: Sequence[Condition], acc: Accuracy, cfg: ExperimentConfig
) -> list[dict[str, Any]]:
    """One row per (function, patch kind): before, after with its functional heads patched, and
    after with as many random heads patched from the same donor (mean ± std, Welch, Holm over all
    patch rows)."""
    rows = []
    for c in conditions:
        if c.meta.get("experiment") != "patch" or c.meta.get("control") == "random":
            continue
        f, kind = c.meta["function"], c.meta["group"]
        before, after = acc[("baseline", f)], acc[(c.name, f)]
        random = [acc[(f"{c.name}/random/{seed}", f)] for seed in _seeds(cfg)]
        rows.append(
            {
                "condition": c.name,
                "function": f,
                "group": kind,
                "donor": c.meta["donor"],
                "before": before,
                "after": after,
                "delta": after - before,
                **versus_random(random, after, cfg),
            }
        )
    return holm_rows(rows, cfg)


def analyze_before_after(
    conditions: Sequence[Condition], acc: Accuracy, experiment: str
) -> list[dict[str, Any]]:
    """Rows of (condition, function, before = baseline, after) for steer / fhi."""
    rows = []
    for c in conditions:
        if c.meta.get("experiment") != experiment:
            continue
        for f in c.functions:
            before, after = acc[("baseline", f)], acc[(c.name, f)]
            rows.append(
                {
                    "condition": c.name,
                    "function": f,
                    "group": c.meta.get("group", ""),
                    "before": before,
                    "after": after,
                    "delta": after - before,
                }
            )
    return rows


def analyze_hierarchy(
    samples: Sequence[dict[str, Any]],
    primary: str,
    conditions: Sequence[Condition],
    cfg: ExperimentConfig,
) -> list[dict[str, Any]]:
    """Per masked function: accuracy (%) on the later sub-questions the unmasked chain got right,
    with its functional heads masked and with random heads masked (mean ± std, Welch, Holm)."""
    hier = [s for s in samples if s["experiment"] == "hierarchy"]
    right = {s["doc_id"] for s in hier if s["condition"] == "hierarchy/none" and s[primary]}

    def accuracy(name: str) -> float | None:
        kept = [s for s in hier if s["condition"] == name and s["doc_id"] in right]
        return 100.0 * float(np.mean([s[primary] or 0.0 for s in kept])) if kept else None

    rows = []
    for c in conditions:
        if c.meta.get("experiment") != "hierarchy" or c.meta.get("group") != "functional":
            continue
        functional = accuracy(c.name)
        random = [accuracy(f"{c.name}/random/{seed}") for seed in _seeds(cfg)]
        row: dict[str, Any] = {
            "masked": c.meta["masked"],
            "steps": c.meta.get("steps", "all"),
            "originally_correct": len(right),
            "accuracy": functional,
        }
        if functional is None or any(r is None for r in random):  # nothing was right unmasked
            row |= {"random_mean": None, "random_std": None, "gap": None, "t": None, "p": None,
                    "degenerate": True, "random_control": cfg.random_control}
        else:
            row |= versus_random([float(r) for r in random if r is not None], functional, cfg)
        rows.append(row)
    return holm_rows(rows, cfg)
