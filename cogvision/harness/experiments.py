"""The papers' intervention experiments as sets of named conditions, and their analyses.

A :class:`Condition` is a named list of intervention specs evaluated on the test sub-questions of
some functions. Experiments (CogVision §4, REFERENCE.md):

- ``masking``: per function, its functional heads vs the same number of random heads (one draw per
  seed, functional heads excluded; ``random_control=layer_matched`` draws them layer by layer, see
  :mod:`cogvision.harness.heads`) vs its lowest-ranked heads; mean ± std over seeds, Welch t-test
  random vs functional (functional heads are fixed, so this is a one-sample t-test against the
  functional accuracy), Holm-corrected over functions. A cell where the random accuracies have no
  variance is ``degenerate`` (Welch undefined): ``p_holm`` and ``significant`` are None and it is
  left out of the Holm family.
- ``dose``: accuracy vs fraction of heads masked, functional (top fraction) vs random.
- ``cross``: mask function A's heads, evaluate on every function B.
- ``patch``: replace A's functional heads by a random sample's / the mean activations of a donor
  function (mapping configurable; default: the next function in taxonomy order).
- ``steer``: ITI-style steering of A's functional heads, before/after.
- ``fhi``: FHI/CCR gains on perception/reasoning heads, before/after on all functions.

Identical spec lists share generations (the generation cache is keyed by specs, not by names).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cogvision.errors import UsageError
from cogvision.harness.heads import HeadId, RandomControl, control_heads
from cogvision.harness.intervene import InterventionSpec, Scope, spec_for
from cogvision.harness.stats import holm, mean_std, welch_t_test

EXPERIMENTS = ("masking", "dose", "cross", "patch", "steer", "fhi", "hierarchy", "downstream")
DOWNSTREAM = "downstream"  # the function name given to downstream VQA items
LATER_FUNCTIONS = ("Math Reasoning", "Decision-Making", "Inference")


class ExperimentConfig(BaseModel):
    """Options of the intervention experiments (recorded in the manifest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    experiments: list[str] = Field(default_factory=lambda: ["masking"])
    top_fraction: float = Field(default=0.1, gt=0, le=1, description="Functional = top fraction.")
    seeds: int = Field(default=5, ge=2, description="Random-head draws per function.")
    random_control: RandomControl = Field(
        default="any", description="any: random heads from all non-selected heads (the papers); "
        "layer_matched: as many from each layer as were selected there.")
    seed: int = Field(default=0, description="Base seed; draw s uses seed + s.")
    epsilon: float = 0.001
    scope: Scope = "all"
    dose_fractions: list[float] = Field(default_factory=lambda: [0.02, 0.05, 0.1, 0.2, 0.3])
    patch_donors: dict[str, str] = Field(default_factory=dict, description="function -> donor.")
    steer_alpha: float = 15.0
    steer_unit: bool = True
    alpha_level: float = 0.05
    hierarchy_masked: list[str] = Field(
        default_factory=list, description="Early functions to mask (default: all but the later)."
    )
    hierarchy_evaluated: list[str] = Field(default_factory=lambda: list(LATER_FUNCTIONS))
    downstream_masked: list[str] = Field(
        default_factory=list, description="Functions masked on the downstream set (default: all)."
    )

    def model_post_init(self, __context: Any) -> None:
        unknown = [e for e in self.experiments if e not in EXPERIMENTS]
        if unknown:
            raise UsageError(f"unknown experiment(s) {unknown}; known: {', '.join(EXPERIMENTS)}")


@dataclass(frozen=True)
class Condition:
    """A named intervention, evaluated on the test sub-questions of ``functions``."""

    name: str
    specs: tuple[InterventionSpec, ...]
    functions: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def key(self) -> str:
        return "+".join(s.key for s in self.specs) or "none"


# --------------------------------------------------------------------------- head sets


def ranked_heads(importance: np.ndarray) -> list[HeadId]:
    """All heads by importance ``[layers, heads]``, best first (ties: lower flat index first)."""
    n_layers, n_heads = importance.shape
    order = np.argsort(-importance.reshape(-1), kind="stable")
    return [HeadId.from_flat(int(i), n_heads) for i in order[: n_layers * n_heads]]


def top_count(fraction: float, n_total: int) -> int:
    return max(1, int(round(fraction * n_total)))


@dataclass
class HeadSets:
    """Per-function head rankings (from probe importance on the TRAIN split only)."""

    importance: dict[str, np.ndarray]  # function -> [layers, heads]

    @property
    def functions(self) -> list[str]:
        return list(self.importance)

    @property
    def shape(self) -> tuple[int, int]:
        first = next(iter(self.importance.values()))
        return int(first.shape[0]), int(first.shape[1])

    def functional(self, function: str, fraction: float) -> list[HeadId]:
        n = top_count(fraction, self.shape[0] * self.shape[1])
        return ranked_heads(self.importance[function])[:n]

    def lowest(self, function: str, fraction: float) -> list[HeadId]:
        n = top_count(fraction, self.shape[0] * self.shape[1])
        return ranked_heads(self.importance[function])[-n:]

    def random(self, function: str, fraction: float, seed: int,
               control: RandomControl = "any") -> list[HeadId]:
        top = self.functional(function, fraction)
        return control_heads(control, top, *self.shape, np.random.default_rng(seed))


# --------------------------------------------------------------------------- conditions


def _mask(
    heads: Sequence[HeadId], cfg: ExperimentConfig, label: str, **kw: Any
) -> InterventionSpec:
    return spec_for("scale", heads, epsilon=cfg.epsilon, scope=cfg.scope, label=label, **kw)


def _random_conditions(
    sets: HeadSets,
    cfg: ExperimentConfig,
    f: str,
    fraction: float,
    prefix: str,
    meta: dict[str, Any],
) -> list[Condition]:
    """One condition per seed masking as many random heads as ``fraction`` selects for ``f``."""
    out = []
    for s in range(cfg.seeds):
        seed = cfg.seed + s
        heads = sets.random(f, fraction, seed, cfg.random_control)
        spec = _mask(heads, cfg, f"random:{f}", seed=seed)
        group = meta | {"group": "random", "seed": seed}
        out.append(Condition(f"{prefix}/random/{seed}", (spec,), (f,), group))
    return out


def baseline_condition(functions: Sequence[str]) -> Condition:
    return Condition("baseline", (), tuple(functions), {"experiment": "baseline"})


def masking_conditions(sets: HeadSets, cfg: ExperimentConfig) -> list[Condition]:
    out = []
    for f in sets.functions:
        top, low = sets.functional(f, cfg.top_fraction), sets.lowest(f, cfg.top_fraction)
        meta = {"experiment": "masking", "function": f, "n_heads": len(top)}
        out.append(
            Condition(
                f"masking/{f}/functional",
                (_mask(top, cfg, f"functional:{f}"),),
                (f,),
                meta | {"group": "functional"},
            )
        )
        out.append(
            Condition(
                f"masking/{f}/lowest",
                (_mask(low, cfg, f"lowest:{f}"),),
                (f,),
                meta | {"group": "lowest"},
            )
        )
        out.extend(_random_conditions(sets, cfg, f, cfg.top_fraction, f"masking/{f}", meta))
    return out


def dose_conditions(sets: HeadSets, cfg: ExperimentConfig) -> list[Condition]:
    out = []
    for f in sets.functions:
        for fraction in cfg.dose_fractions:
            meta = {"experiment": "dose", "function": f, "fraction": fraction}
            top = sets.functional(f, fraction)
            out.append(
                Condition(
                    f"dose/{f}/{fraction}/functional",
                    (_mask(top, cfg, f"functional:{f}"),),
                    (f,),
                    meta | {"group": "functional"},
                )
            )
            out.extend(_random_conditions(sets, cfg, f, fraction, f"dose/{f}/{fraction}", meta))
    return out


def cross_conditions(sets: HeadSets, cfg: ExperimentConfig) -> list[Condition]:
    functions = tuple(sets.functions)
    return [
        Condition(
            f"cross/{f}",
            (_mask(sets.functional(f, cfg.top_fraction), cfg, f"functional:{f}"),),
            functions,
            {"experiment": "cross", "masked": f},
        )
        for f in functions
    ]


def donor_for(function: str, functions: Sequence[str], cfg: ExperimentConfig) -> str:
    if function in cfg.patch_donors:
        donor = cfg.patch_donors[function]
        if donor not in functions:
            raise UsageError(f"patch donor {donor!r} for {function!r} is not among {functions}")
        return donor
    return functions[(list(functions).index(function) + 1) % len(functions)]


def patch_conditions(sets: HeadSets, cfg: ExperimentConfig) -> list[Condition]:
    out = []
    for f in sets.functions:
        donor = donor_for(f, sets.functions, cfg)
        heads = sets.functional(f, cfg.top_fraction)
        meta = {"experiment": "patch", "function": f, "donor": donor}
        for kind in ("patch_random", "patch_mean"):
            spec = spec_for(
                kind,
                heads,
                scope=cfg.scope,
                source=donor,
                seed=cfg.seed,
                label=f"{kind}:{f}<-{donor}",
            )
            out.append(Condition(f"patch/{f}/{kind}", (spec,), (f,), meta | {"group": kind}))
    return out


def steer_conditions(sets: HeadSets, cfg: ExperimentConfig) -> list[Condition]:
    out = []
    for f in sets.functions:
        spec = spec_for(
            "steer",
            sets.functional(f, cfg.top_fraction),
            scope=cfg.scope,
            alpha=cfg.steer_alpha,
            unit_direction=cfg.steer_unit,
            source=f,
            label=f"steer:{f}",
        )
        out.append(Condition(f"steer/{f}", (spec,), (f,), {"experiment": "steer", "function": f}))
    return out


def fhi_condition(specs: Sequence[InterventionSpec], functions: Sequence[str]) -> Condition:
    return Condition("fhi", tuple(specs), tuple(functions), {"experiment": "fhi"})


def hierarchy_conditions(sets: HeadSets, cfg: ExperimentConfig) -> list[Condition]:
    """Chains answered with the model's own earlier answers: unmasked, and with each early
    function's heads masked; evaluated on the later sub-questions of ``hierarchy_evaluated``."""
    evaluated = tuple(cfg.hierarchy_evaluated)
    masked = cfg.hierarchy_masked or [f for f in sets.functions if f not in evaluated]
    meta = {"experiment": "hierarchy"}
    out = [Condition("hierarchy/none", (), evaluated, meta | {"masked": None})]
    for f in masked:
        if f not in sets.functions:
            continue
        spec = _mask(sets.functional(f, cfg.top_fraction), cfg, f"functional:{f}")
        out.append(Condition(f"hierarchy/{f}", (spec,), evaluated, meta | {"masked": f}))
    return out


def downstream_conditions(sets: HeadSets, cfg: ExperimentConfig) -> list[Condition]:
    """Unmasked and per-function masked answers on a separate VQA set (``downstream_data``)."""
    meta = {"experiment": "downstream"}
    out = [Condition("downstream/none", (), (DOWNSTREAM,), meta | {"masked": None})]
    for f in cfg.downstream_masked or sets.functions:
        if f in sets.functions:
            spec = _mask(sets.functional(f, cfg.top_fraction), cfg, f"functional:{f}")
            out.append(Condition(f"downstream/{f}", (spec,), (DOWNSTREAM,), meta | {"masked": f}))
    return out


BUILDERS = {
    "masking": masking_conditions,
    "dose": dose_conditions,
    "cross": cross_conditions,
    "patch": patch_conditions,
    "steer": steer_conditions,
    "hierarchy": hierarchy_conditions,
    "downstream": downstream_conditions,
}


def build_conditions(sets: HeadSets, cfg: ExperimentConfig) -> list[Condition]:
    """The baseline plus every requested experiment's conditions (FHI is added by the caller)."""
    out = [baseline_condition(sets.functions)]
    for name in cfg.experiments:
        if name in BUILDERS:
            out.extend(BUILDERS[name](sets, cfg))
    return out


# --------------------------------------------------------------------------- analyses

Accuracy = dict[tuple[str, str], float]  # (condition name, function) -> accuracy in %


def analyze_masking(
    conditions: Sequence[Condition], acc: Accuracy, cfg: ExperimentConfig
) -> list[dict[str, Any]]:
    """One row per function: baseline, functional, lowest, random mean ± std, Welch, Holm.

    Rows with ``degenerate`` True (no variance in either group) keep Welch's conventional ``t``
    and ``p`` but get ``p_holm = significant = None`` and do not count in the Holm family.
    """
    rows = []
    for f in dict.fromkeys(
        c.meta["function"] for c in conditions if c.meta.get("experiment") == "masking"
    ):
        random = [acc[(f"masking/{f}/random/{cfg.seed + s}", f)] for s in range(cfg.seeds)]
        functional = acc[(f"masking/{f}/functional", f)]
        stats = mean_std(random)
        test = welch_t_test(random, [functional] * cfg.seeds)
        rows.append(
            {
                "function": f,
                "baseline": acc[("baseline", f)],
                "functional": functional,
                "lowest": acc[(f"masking/{f}/lowest", f)],
                "random_mean": stats.mean,
                "random_std": stats.std,
                "gap": stats.mean - functional,
                "random_control": cfg.random_control,
                "t": test.t,
                "p": test.p,
                "degenerate": test.degenerate,
            }
        )
    tested = [r for r in rows if not r["degenerate"]]  # degenerate cells: no test, no Holm
    for row, adjusted in zip(tested, holm([r["p"] for r in tested]), strict=True):
        row["p_holm"] = adjusted
        row["significant"] = bool(adjusted <= cfg.alpha_level)
    for row in rows:
        if row["degenerate"]:
            row["p_holm"], row["significant"] = None, None
    return rows


def analyze_dose(
    conditions: Sequence[Condition], acc: Accuracy, cfg: ExperimentConfig
) -> list[dict[str, Any]]:
    rows = []
    for c in conditions:
        if c.meta.get("experiment") != "dose" or c.meta["group"] != "functional":
            continue
        f, fraction = c.meta["function"], c.meta["fraction"]
        random = [acc[(f"dose/{f}/{fraction}/random/{cfg.seed + s}", f)] for s in range(cfg.seeds)]
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


def analyze_before_after(
    conditions: Sequence[Condition], acc: Accuracy, experiment: str
) -> list[dict[str, Any]]:
    """Rows of (condition, function, before = baseline, after) for patch / steer / fhi."""
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
