"""Report follow-ups of the organism findings (issue 8): function specificity from the cross
matrix, degenerate Welch cells, taxonomy keys on plots, exact match beside the primary metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cogvision.harness.analyses import analyze_masking
from cogvision.harness.eval_markdown import write_report
from cogvision.harness.eval_plots import key_caption, plot_cross, short_labels
from cogvision.harness.eval_report import analyze, baseline_metrics, lenient_metric_warning
from cogvision.harness.experiments import ExperimentConfig, HeadSets
from cogvision.harness.experiments import build_conditions as build
from cogvision.harness.plan import condition_json
from cogvision.harness.specificity import function_specificity, specificity_table
from cogvision.harness.stats import NO_VARIANCE, holm
from cogvision.organism.report import masking_table, probe_table

CROSS = {
    "masked": ["A", "B"],
    "evaluated": ["A", "B", "C"],
    "baseline": [90.0, 80.0, 70.0],
    "accuracy": [[30.0, 80.0, 60.0], [90.0, 70.0, 10.0]],  # A: own -60, others 0 and -10
}


def test_specificity_known_answer() -> None:
    rows = function_specificity(CROSS)
    assert rows[0] == {"function": "A", "own_drop": 60.0, "other_drop": 5.0, "specificity": 55.0}
    assert rows[1]["own_drop"] == 10.0 and rows[1]["other_drop"] == 30.0
    assert rows[1]["specificity"] == -20.0  # B's heads hurt C more than B
    table = specificity_table(rows)
    assert "| A | +60.0 | +5.0 | +55.0 |" in table and "| B | +10.0 | +30.0 | -20.0 |" in table


def test_masked_function_not_evaluated_has_no_specificity() -> None:
    cross = {"masked": ["D"], "evaluated": ["A"], "baseline": [50.0], "accuracy": [[40.0]]}
    assert function_specificity(cross)[0]["specificity"] is None


def _masking_acc(random: dict[str, list[float]], functional: dict[str, float]) -> dict:
    acc = {}
    for f, values in random.items():
        acc[("baseline", f)] = 100.0
        acc[(f"masking/{f}/functional", f)] = functional[f]
        acc[(f"masking/{f}/lowest", f)] = 99.0
        for s, v in enumerate(values):
            acc[(f"masking/{f}/random/{s}", f)] = v
    return acc


def _masking(cfg: ExperimentConfig) -> tuple[list, list]:
    functions = ("A", "B", "C")
    sets = HeadSets({f: np.random.default_rng(1).random((2, 5)) for f in functions})
    conditions = build(sets, cfg)
    random = {"A": [100.0] * 3, "B": [58.0, 66.0, 61.0], "C": [70.0, 75.0, 72.0]}
    acc = _masking_acc(random, {"A": 80.0, "B": 60.0, "C": 10.0})
    return conditions, analyze_masking(conditions, acc, cfg)


def test_degenerate_cell_is_marked_and_left_out_of_holm() -> None:
    _, rows = _masking(ExperimentConfig(seeds=3))
    a, b, c = rows
    assert a["degenerate"] and a["p"] == 0.0  # 100 ± 0 vs 80: numeric convention kept
    assert a["p_holm"] is None and a["significant"] is None
    assert not b["degenerate"] and not c["degenerate"]
    assert [b["p_holm"], c["p_holm"]] == pytest.approx(holm([b["p"], c["p"]]))  # family of 2


def _report(tmp_path: Path, metrics: dict[str, dict[str, float]]) -> tuple[dict, str]:
    functions = ["Low-level Visual Reception", "Math Reasoning"]
    cfg = ExperimentConfig(experiments=["masking", "cross"], seeds=3)
    sets = HeadSets({f: np.random.default_rng(3).random((2, 4)) for f in functions})
    conditions = build(sets, cfg)
    acc = {(c.name, f): 50.0 for c in conditions for f in c.functions}
    acc |= {("baseline", functions[0]): 83.0, ("baseline", functions[1]): 95.0}
    for s in range(3):  # random heads never change Low-level: a degenerate Welch cell
        acc[(f"masking/{functions[0]}/random/{s}", functions[0])] = 83.0
        acc[(f"masking/{functions[1]}/random/{s}", functions[1])] = 90.0 + s
    plan = {
        "functions": functions,
        "conditions": [condition_json(c) for c in conditions],
        "importance": {f: sets.importance[f].tolist() for f in functions},
    }
    results = analyze(plan, acc, cfg)
    results["baseline_metrics"] = metrics
    results["metric_warning"] = lenient_metric_warning(metrics)
    results["summary"] = {
        "primary_metric": "integrated_accuracy",
        "test_subquestions": 4,
        "conditions": len(conditions),
        "samples": 9,
        "undecided_scores": 0,
    }
    plots = write_report(tmp_path, results, plan)
    assert {p.name for p in plots} == {"importance.png", "cross.png"}
    json.dumps(results)  # results.json stays serialisable
    return results, (tmp_path / "report.md").read_text()


def test_report_shows_findings(tmp_path: Path) -> None:
    metrics = {
        "integrated_accuracy": {"Low-level Visual Reception": 83.0, "Math Reasoning": 95.0},
        "exact_match": {"Low-level Visual Reception": 13.0, "Math Reasoning": 90.0},
    }
    results, report = _report(tmp_path, metrics)
    assert [r["function"] for r in results["specificity"]] == results["cross"]["masked"]
    assert "## Function specificity" in report and "| masked function | own drop" in report
    masking = report.split("## Masking")[1].split("##")[0]
    low = next(line for line in masking.splitlines() if line.startswith("| Low-level"))
    assert low.count(NO_VARIANCE) == 3 and "inf" not in low and "| 0.00 |" not in low
    math = next(line for line in masking.splitlines() if line.startswith("| Math"))
    assert NO_VARIANCE not in math
    assert "left out of the Holm family" in masking
    baseline = report.split("## Baseline")[1].split("##")[0]
    assert "| function | integrated_accuracy (primary) | exact_match |" in baseline
    assert "| Low-level Visual Reception | 83.00 | 13.00 |" in baseline
    assert report.count("Warning: integrated_accuracy exceeds exact_match") == 2  # top + table
    assert "Low-level Visual Reception 83 vs 13" in report and "Math Reasoning 95" not in report
    cross = report.split("## Cross-function")[1]
    assert "| masked | low_level | math |" in cross
    assert "`low_level` = Low-level Visual Reception" in cross


def test_no_warning_within_20_points(tmp_path: Path) -> None:
    metrics = {
        "integrated_accuracy": {"Low-level Visual Reception": 33.0, "Math Reasoning": 95.0},
        "exact_match": {"Low-level Visual Reception": 13.0, "Math Reasoning": 90.0},
    }
    assert lenient_metric_warning(metrics) is None  # exactly 20 points: no warning
    _, report = _report(tmp_path, metrics)
    assert "Warning" not in report


def test_baseline_metrics_always_include_exact_match() -> None:
    samples = [
        {"condition": "baseline", "function": "F", "response": "Red.", "target": "red"},
        {"condition": "baseline", "function": "F", "response": "blue", "target": "red"},
        {"condition": "masking/F/functional", "function": "F", "response": "red", "target": "red"},
    ]
    for s, value in zip(samples, (1.0, 1.0, 1.0), strict=True):
        s["integrated_accuracy"] = value
    by_metric = baseline_metrics(samples, ["integrated_accuracy"])
    assert by_metric == {"integrated_accuracy": {"F": 100.0}, "exact_match": {"F": 50.0}}
    assert "F 100 vs 50" in str(lenient_metric_warning(by_metric))
    assert "prefer `-C scoring.primary=exact_match`" in str(lenient_metric_warning(by_metric))
    on_em = str(lenient_metric_warning(by_metric, "exact_match"))
    assert "primary metric here is `exact_match`" in on_em and "prefer" not in on_em


def test_short_labels_use_taxonomy_keys() -> None:
    cogvision = ["Decision-Making", "Language Information Extraction and Understanding"]
    assert short_labels(cogvision) == {cogvision[0]: "decision", cogvision[1]: "semantic"}
    assert short_labels(["Spatial Perception", "Relational Reasoning"]) == {
        "Spatial Perception": "spatial",
        "Relational Reasoning": "relational",
    }
    mixed = short_labels(["Math Reasoning", "Counting Sheep", "Counting Sheep Twice"])
    assert mixed == {
        "Math Reasoning": "math",
        "Counting Sheep": "counting_sheep",
        "Counting Sheep Twice": "counting_sheep'",
    }
    assert key_caption({"Math Reasoning": "math"}) == "Keys: `math` = Math Reasoning"


def test_cross_plot_ticks_are_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.axes

    ticks: list[list[str]] = []
    original = matplotlib.axes.Axes.set_xticks

    def spy(self, positions, labels=None, **kw):  # type: ignore[no-untyped-def]
        ticks.append(list(labels or []))
        return original(self, positions, labels, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_xticks", spy)
    cross = {
        "masked": ["Decision-Making"],
        "evaluated": ["Decision-Making", "Low-level Visual Reception"],
        "baseline": [90.0, 80.0],
        "accuracy": [[10.0, 70.0]],
    }
    path = plot_cross(tmp_path / "cross.png", cross)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert ticks == [["decision", "low_level"]]


def test_cli_and_organism_tables_print_no_variance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cogvision.cli.eval import _print_results

    _, rows = _masking(ExperimentConfig(seeds=3))
    (tmp_path / "results.json").write_text(json.dumps({"masking": rows}))
    _print_results(tmp_path, {"samples": 3, "primary_metric": "exact_match"})
    printed = capsys.readouterr().out
    assert "n/a (no" in printed and "inf" not in printed
    table = masking_table({"masking": rows})
    line_a = next(line for line in table.splitlines() if line.startswith("| A |"))
    assert line_a.endswith(f"| {NO_VARIANCE} | {NO_VARIANCE} |")
    assert NO_VARIANCE not in next(line for line in table.splitlines() if line.startswith("| B"))


def test_report_shows_probe_scores_beside_lexical_baseline(tmp_path: Path) -> None:
    probe = {"method": "logistic", "target": "answer", "position": "last_prompt",
             "functions": ["Low-level Visual Reception", "Math Reasoning"],
             "best_head": {"Low-level Visual Reception": "L3H2"},
             "best_score": {"Low-level Visual Reception": 0.875},
             "lexical_accuracy": {"Low-level Visual Reception": 0.25, "Math Reasoning": None},
             "chance": {"Low-level Visual Reception": 0.3125, "Math Reasoning": None}}
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "probe.json").write_text(json.dumps(probe))
    metrics = {"exact_match": {"Low-level Visual Reception": 83.0, "Math Reasoning": 95.0}}
    _, report = _report(tmp_path, metrics)
    section = report.split("## Head importance")[1].split("## Baseline")[0]
    assert "Probe `logistic` of the answer at `last_prompt`" in section
    assert "| function | best head | validation acc. | lexical baseline | chance |" in section
    assert "| Low-level Visual Reception | L3H2 | 0.88 | 0.25 | 0.31 |" in section
    assert "| Math Reasoning | - | - | - | - |" in section


def test_organism_probe_table_has_chance_only_for_answer_probes() -> None:
    probe = {"functions": ["A", "B"], "best_head": {"A": "L0H1"}, "best_score": {"A": 0.9},
             "lexical_accuracy": {"A": 0.5, "B": None}}
    heads = {"masking/A/functional": ["L0H1", "L2H0"]}
    table = probe_table(probe, heads)
    assert "chance" not in table and "| A | L0H1 | 0.900 | 0.500 | L0H1 L2H0 |" in table
    table = probe_table({**probe, "chance": {"A": 0.4, "B": None}}, heads)
    assert "| validation acc. | lexical baseline | chance | functional heads |" in table
    assert "| A | L0H1 | 0.900 | 0.500 | 0.400 | L0H1 L2H0 |" in table
    assert "| B | - | - | - | - | - |" in table


def test_organism_summary_of_a_patch_and_hierarchy_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A run without masking: heads from ``selected``, patch and hierarchy rows beside random
    heads, a hierarchy row without variance undecided."""
    from cogvision.organism.report import harness_summary

    probe = {"functions": ["A"], "best_head": {"A": "L1H0"}, "best_score": {"A": 0.9},
             "lexical_accuracy": {"A": 0.5}, "method": "logistic", "position": "last_prompt"}
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "probe.json").write_text(json.dumps(probe))
    patch = {"function": "A", "group": "patch_mean", "donor": "B", "before": 100.0, "after": 20.0,
             "random_mean": 97.0, "random_std": 1.5, "p": 1e-6, "p_holm": 2e-6,
             "degenerate": False}
    hier = {"masked": "A", "steps": "early", "originally_correct": 77, "accuracy": 97.4,
            "random_mean": 100.0, "random_std": 0.0, "p": 0.0, "p_holm": None,
            "degenerate": True}
    results = {"summary": {"primary_metric": "exact_match", "test_subquestions": 10},
               "heads": {}, "selected": {"A": ["L1H0", "L2H0"]}, "patch": [patch],
               "hierarchy": [hier]}
    (tmp_path / "results.json").write_text(json.dumps(results))
    text = harness_summary(tmp_path)
    assert "| A | L1H0 | 0.900 | 0.500 | L1H0 L2H0 |" in text and "Masking" not in text
    assert "| A | patch_mean | B | 100.0 | 20.0 | 97.0 ± 1.5 | 0.0000 | 0.0000 |" in text
    assert (f"| A | early | 77 | 97.4 | 100.0 ± 0.0 | {NO_VARIANCE} | {NO_VARIANCE} |"
            in text)


def test_masking_section_names_a_layer_matched_control() -> None:
    from cogvision.harness.eval_markdown import _masking_section

    row = {"function": "A", "baseline": 90.0, "functional": 40.0, "lowest": 88.0,
           "random_mean": 80.0, "random_std": 5.0, "gap": 40.0, "t": 9.0, "p": 0.001,
           "p_holm": 0.001, "degenerate": False, "random_control": "any"}
    summary = {"random_control": "any"}
    assert "layer-matched" not in _masking_section({"summary": summary, "masking": [row]})
    assert "Random heads are layer-matched" in _masking_section(
        {"summary": {"random_control": "layer_matched"}, "masking": [row]})
    # results.json written before the summary held the control: read from the masking rows
    assert "Random heads are layer-matched" in _masking_section(
        {"summary": {}, "masking": [row | {"random_control": "layer_matched"}]})
