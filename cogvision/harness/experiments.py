"""The papers' intervention experiments as sets of named conditions.

A :class:`Condition` is a named list of intervention specs evaluated on the test sub-questions of
some functions. Experiments (CogVision §4, REFERENCE.md):

- ``masking``: per function, its functional heads vs the same number of random heads (one draw per
  seed, functional heads excluded; ``random_control=layer_matched`` draws them layer by layer, see
  :mod:`cogvision.harness.heads`) vs its lowest-ranked heads.
- ``dose``: accuracy vs fraction of heads masked, functional (top fraction) vs random.
- ``cross``: mask function A's heads, evaluate on every function B.
- ``patch``: replace A's functional heads by a random sample's / the mean activations of a donor
  function (mapping configurable; default: the next function in taxonomy order), and as many
  random heads by the same donor's (one draw per seed), as masking's control.
- ``steer``: ITI-style steering of A's functional heads, before/after.
- ``fhi``: FHI/CCR gains on perception/reasoning heads, before/after on all functions.
- ``hierarchy``: chains answered with the model's own earlier answers, unmasked and with an early
  function's heads masked (and as many random heads, one draw per seed), scored on the later
  Math/Decision/Inference sub-questions.
- ``downstream``: a separate VQA set, unmasked and with each function's heads masked.

Identical spec lists share generations (the generation cache is keyed by specs, not by names).
Their analyses (random-head statistics, Welch, Holm) are in :mod:`cogvision.harness.analyses`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cogvision.errors import UsageError
from cogvision.harness.heads import HeadId, RandomControl, control_heads
from cogvision.harness.intervene import InterventionSpec, Scope, spec_for

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
    hierarchy_steps: Literal["all", "early"] = Field(
        default="all", description="all: the heads stay masked on every step of the chain, the "
        "evaluated later ones too; early: only on the masked function's own steps, so a later "
        "step can only suffer through the earlier answers fed forward.")
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
    evaluated: tuple[str, ...] | None = None,
) -> list[Condition]:
    """One condition per seed masking as many random heads as ``fraction`` selects for ``f``,
    evaluated on ``f`` (or on ``evaluated``)."""
    out = []
    for s in range(cfg.seeds):
        seed = cfg.seed + s
        heads = sets.random(f, fraction, seed, cfg.random_control)
        spec = _mask(heads, cfg, f"random:{f}", seed=seed)
        group = meta | {"group": "random", "seed": seed}
        out.append(Condition(f"{prefix}/random/{seed}", (spec,), evaluated or (f,), group))
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
    """Per function and kind: its functional heads patched from the donor, and one condition per
    seed patching as many random heads from the same donor (the control)."""
    out = []
    for f in sets.functions:
        donor = donor_for(f, sets.functions, cfg)
        meta = {"experiment": "patch", "function": f, "donor": donor}
        draws = [(None, sets.functional(f, cfg.top_fraction))] + [
            (cfg.seed + s, sets.random(f, cfg.top_fraction, cfg.seed + s, cfg.random_control))
            for s in range(cfg.seeds)
        ]
        for kind in ("patch_random", "patch_mean"):
            for seed, heads in draws:
                spec = spec_for(
                    kind,
                    heads,
                    scope=cfg.scope,
                    source=donor,
                    seed=cfg.seed,  # the donor sample; only the heads differ between draws
                    label=f"{kind}:{f if seed is None else 'random'}<-{donor}",
                )
                name = f"patch/{f}/{kind}" + ("" if seed is None else f"/random/{seed}")
                extra = {} if seed is None else {"control": "random", "head_seed": seed}
                out.append(Condition(name, (spec,), (f,), meta | {"group": kind} | extra))
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
    """Chains answered with the model's own earlier answers: unmasked, with each early
    function's heads masked, and with as many random heads masked (one draw per seed);
    evaluated on the later sub-questions of ``hierarchy_evaluated``."""
    evaluated = tuple(cfg.hierarchy_evaluated)
    masked = cfg.hierarchy_masked or [f for f in sets.functions if f not in evaluated]
    meta = {"experiment": "hierarchy", "steps": cfg.hierarchy_steps}
    out = [Condition("hierarchy/none", (), evaluated, meta | {"masked": None})]
    for f in masked:
        if f not in sets.functions:
            continue
        spec = _mask(sets.functional(f, cfg.top_fraction), cfg, f"functional:{f}")
        out.append(Condition(f"hierarchy/{f}", (spec,), evaluated,
                             meta | {"masked": f, "group": "functional"}))
        out.extend(_random_conditions(sets, cfg, f, cfg.top_fraction, f"hierarchy/{f}",
                                      meta | {"masked": f}, evaluated))
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
