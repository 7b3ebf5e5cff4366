"""Experiment conditions and analyses on hand-made importance maps and accuracies."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from cogvision.errors import UsageError
from cogvision.harness.analyses import (
    analyze_before_after,
    analyze_cross,
    analyze_dose,
    analyze_hierarchy,
    analyze_masking,
    analyze_patch,
)
from cogvision.harness.experiments import (
    ExperimentConfig,
    HeadSets,
    build_conditions,
    donor_for,
    ranked_heads,
)
from cogvision.harness.heads import HeadId
from cogvision.harness.stats import holm


def _sets() -> HeadSets:
    rng = np.random.default_rng(0)
    importance = {f: rng.random((4, 5)) for f in ("Math", "Inference", "Decision")}
    importance["Math"][2, 3] = 2.0  # planted best head
    return HeadSets(importance)


def test_ranking_and_head_sets() -> None:
    imp = np.array([[0.1, 0.9], [0.9, 0.2]])
    assert ranked_heads(imp) == [HeadId(0, 1), HeadId(1, 0), HeadId(1, 1), HeadId(0, 0)]
    sets = _sets()
    top = sets.functional("Math", 0.1)  # 10% of 20 heads
    assert top[0] == HeadId(2, 3) and len(top) == 2
    low = sets.lowest("Math", 0.1)
    assert not set(low) & set(top)
    draws = [sets.random("Math", 0.1, seed) for seed in range(20)]
    assert all(len(d) == 2 and not set(d) & set(top) for d in draws)
    assert sets.random("Math", 0.1, 3) == draws[3]  # seeded
    assert len({tuple(d) for d in draws}) > 5


def test_conditions_of_every_experiment() -> None:
    cfg = ExperimentConfig(
        experiments=["masking", "dose", "cross", "patch", "steer"],
        seeds=3,
        dose_fractions=[0.1, 0.5],
        scope="generated",
    )
    conditions = build_conditions(_sets(), cfg)
    names = [c.name for c in conditions]
    assert len(names) == len(set(names))
    by_exp = {}
    for c in conditions:
        by_exp.setdefault(c.meta["experiment"], []).append(c)
    assert len(by_exp["masking"]) == 3 * (2 + 3)
    assert len(by_exp["dose"]) == 3 * 2 * (1 + 3)
    assert len(by_exp["cross"]) == 3 and by_exp["cross"][0].functions == (
        "Math",
        "Inference",
        "Decision",
    )
    assert {c.specs[0].kind for c in by_exp["patch"]} == {"patch_random", "patch_mean"}
    assert len(by_exp["patch"]) == 3 * 2 * (1 + 3)  # functional + one random draw per seed
    patched = {c.name: c for c in by_exp["patch"]}
    top = patched["patch/Math/patch_mean"].specs[0]
    for seed in range(3):
        control = patched[f"patch/Math/patch_mean/random/{seed}"].specs[0]
        assert control.source == top.source == "Inference" and control.seed == top.seed
        assert len(control.heads) == len(top.heads) and not set(control.heads) & set(top.heads)
        assert control.heads == tuple(str(h) for h in _sets().random("Math", 0.1, seed))
    assert by_exp["steer"][0].specs[0].alpha == 15.0
    assert all(s.scope == "generated" for c in conditions for s in c.specs)
    functional = next(c for c in conditions if c.name == "masking/Math/functional")
    dose_same = next(c for c in conditions if c.name == "dose/Math/0.1/functional")
    cross_same = next(c for c in conditions if c.name == "cross/Math")
    assert functional.key == dose_same.key == cross_same.key  # shared generations
    with pytest.raises(UsageError, match="known: masking, dose"):
        ExperimentConfig(experiments=["ablate"])


def test_patch_donors() -> None:
    functions = ["Math", "Inference", "Decision"]
    cfg = ExperimentConfig(patch_donors={"Math": "Decision"})
    assert donor_for("Math", functions, cfg) == "Decision"
    assert donor_for("Decision", functions, cfg) == "Math"  # default: next, cyclic
    with pytest.raises(UsageError, match="not among"):
        donor_for("Math", functions, ExperimentConfig(patch_donors={"Math": "Poetry"}))


def test_masking_analysis_matches_scipy_and_holm() -> None:
    cfg = ExperimentConfig(seeds=3)
    sets = HeadSets({f: np.random.default_rng(1).random((2, 5)) for f in ("A", "B")})
    conditions = build_conditions(sets, cfg)
    acc = {
        ("baseline", "A"): 80.0,
        ("baseline", "B"): 70.0,
        ("masking/A/functional", "A"): 10.0,
        ("masking/A/lowest", "A"): 78.0,
        ("masking/B/functional", "B"): 60.0,
        ("masking/B/lowest", "B"): 69.0,
    }
    random = {"A": [70.0, 75.0, 72.0], "B": [58.0, 66.0, 61.0]}
    for f, values in random.items():
        for s, v in enumerate(values):
            acc[(f"masking/{f}/random/{s}", f)] = v
    rows = analyze_masking(conditions, acc, cfg)
    assert [r["function"] for r in rows] == ["A", "B"]
    for row, f, functional in ((rows[0], "A", 10.0), (rows[1], "B", 60.0)):
        ref = sps.ttest_1samp(random[f], functional)  # functional heads are fixed
        assert row["p"] == pytest.approx(float(ref.pvalue))
        assert row["random_mean"] == pytest.approx(np.mean(random[f]))
        assert row["random_std"] == pytest.approx(np.std(random[f], ddof=1))
    assert [r["p_holm"] for r in rows] == pytest.approx(holm([rows[0]["p"], rows[1]["p"]]))
    assert rows[0]["significant"] and not rows[1]["significant"]
    assert rows[0]["gap"] == pytest.approx(np.mean(random["A"]) - 10.0)


def test_dose_cross_and_before_after() -> None:
    cfg = ExperimentConfig(
        experiments=["dose", "cross", "steer"], seeds=2, dose_fractions=[0.1, 0.5]
    )
    sets = HeadSets({f: np.random.default_rng(2).random((2, 5)) for f in ("A", "B")})
    conditions = build_conditions(sets, cfg)
    acc = {(c.name, f): 50.0 + i for i, c in enumerate(conditions) for f in c.functions}
    dose = analyze_dose(conditions, acc, cfg)
    assert [(r["function"], r["fraction"]) for r in dose] == [
        ("A", 0.1),
        ("A", 0.5),
        ("B", 0.1),
        ("B", 0.5),
    ]
    cross = analyze_cross(conditions, acc)
    assert cross["masked"] == ["A", "B"] and np.array(cross["accuracy"]).shape == (2, 2)
    steer = analyze_before_after(conditions, acc, "steer")
    assert [r["function"] for r in steer] == ["A", "B"]
    assert all(r["delta"] == r["after"] - r["before"] for r in steer)


def test_patch_analysis_against_random_heads() -> None:
    cfg = ExperimentConfig(experiments=["patch"], seeds=3)
    sets = HeadSets({f: np.random.default_rng(3).random((2, 5)) for f in ("A", "B")})
    conditions = build_conditions(sets, cfg)
    acc = {("baseline", "A"): 90.0, ("baseline", "B"): 80.0}
    random = {"patch_random": [85.0, 88.0, 80.0], "patch_mean": [70.0, 75.0, 79.0]}
    after = {("A", "patch_random"): 20.0, ("A", "patch_mean"): 30.0,
             ("B", "patch_random"): 78.0, ("B", "patch_mean"): 76.0}
    for (f, kind), value in after.items():
        acc[(f"patch/{f}/{kind}", f)] = value
        for s, v in enumerate(random[kind]):
            acc[(f"patch/{f}/{kind}/random/{s}", f)] = v
    rows = analyze_patch(conditions, acc, cfg)
    assert [(r["function"], r["group"], r["donor"]) for r in rows] == [
        ("A", "patch_random", "B"), ("A", "patch_mean", "B"),
        ("B", "patch_random", "A"), ("B", "patch_mean", "A"),
    ]
    for row in rows:
        values = random[row["group"]]
        assert row["after"] == after[(row["function"], row["group"])]
        assert row["delta"] == row["after"] - row["before"]
        assert row["random_mean"] == pytest.approx(np.mean(values))
        assert row["random_std"] == pytest.approx(np.std(values, ddof=1))
        assert row["p"] == pytest.approx(float(sps.ttest_1samp(values, row["after"]).pvalue))
    assert [r["p_holm"] for r in rows] == pytest.approx(holm([r["p"] for r in rows]))
    assert rows[0]["significant"] and not rows[2]["significant"]


def test_hierarchy_analysis_against_random_heads() -> None:
    cfg = ExperimentConfig(experiments=["hierarchy"], seeds=2,
                           hierarchy_evaluated=["Math"])
    sets = HeadSets({f: np.random.default_rng(4).random((2, 5)) for f in ("Vision", "Math")})
    conditions = build_conditions(sets, cfg)
    names = [c.name for c in conditions if c.meta["experiment"] == "hierarchy"]
    assert names == ["hierarchy/none", "hierarchy/Vision", "hierarchy/Vision/random/0",
                     "hierarchy/Vision/random/1"]
    assert all(c.functions == ("Math",) for c in conditions if c.name in names)
    # four later steps; the unmasked chain got d0-d2 right, so d3 is never counted
    right = {"hierarchy/none": [1, 1, 1, 0], "hierarchy/Vision": [0, 0, 1, 1],
             "hierarchy/Vision/random/0": [1, 1, 0, 1], "hierarchy/Vision/random/1": [1, 1, 1, 0]}
    samples = [{"experiment": "hierarchy", "condition": name, "doc_id": f"d{k}", "em": float(v)}
               for name, values in right.items() for k, v in enumerate(values)]
    samples.append({"experiment": "masking", "condition": "hierarchy/Vision", "doc_id": "d0",
                    "em": 1.0})  # other experiments do not count
    (row,) = analyze_hierarchy(samples, "em", conditions, cfg)
    assert row["masked"] == "Vision" and row["originally_correct"] == 3 and row["steps"] == "all"
    assert row["accuracy"] == pytest.approx(100 / 3)
    assert row["random_mean"] == pytest.approx((200 / 3 + 100) / 2)
    random = [200 / 3, 100.0]
    assert row["p"] == pytest.approx(float(sps.ttest_1samp(random, 100 / 3).pvalue))
    assert row["p_holm"] == pytest.approx(row["p"])  # a family of one


def test_layer_matched_random_control() -> None:
    from cogvision.harness.heads import layer_matched_heads

    importance = np.zeros((4, 8))
    importance[0, [1, 4]] = [2.0, 1.9]
    importance[3, 6] = 1.8  # the top 3 heads: L0H1, L0H4, L3H6
    sets = HeadSets({"Low": importance})
    top = sets.functional("Low", 3 / 32)
    assert top == [HeadId(0, 1), HeadId(0, 4), HeadId(3, 6)]
    layers_any = set()
    for seed in range(30):
        drawn = sets.random("Low", 3 / 32, seed, "layer_matched")
        assert sorted(h.layer for h in drawn) == [0, 0, 3] and not set(drawn) & set(top)
        layers_any |= {h.layer for h in sets.random("Low", 3 / 32, seed)}
    assert layers_any == {0, 1, 2, 3}  # the papers' control goes anywhere
    # a layer without enough other heads gives what it has, the rest comes from other layers
    full = [HeadId(1, h) for h in range(3)]
    drawn = layer_matched_heads(full, 2, 4, np.random.default_rng(0))
    assert len(drawn) == 3 and HeadId(1, 3) in drawn and not set(drawn) & set(full)
    assert sum(h.layer == 0 for h in drawn) == 2


def test_random_control_reaches_the_conditions() -> None:
    cfg = ExperimentConfig(experiments=["masking"], seeds=3, random_control="layer_matched")
    sets = _sets()
    conds = build_conditions(sets, cfg)
    top_layers = sorted(h.layer for h in sets.functional("Math", cfg.top_fraction))
    randoms = [c for c in conds if c.name.startswith("masking/Math/random/")]
    assert len(randoms) == 3
    for c in randoms:
        assert sorted(HeadId.parse(h).layer for h in c.specs[0].heads) == top_layers
    with pytest.raises(ValueError):
        ExperimentConfig(random_control="nearby")  # type: ignore[arg-type]
