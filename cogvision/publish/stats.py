"""Measured statistics of a published dataset, machine-readable and as card tables.

Computed from the published rows themselves (``publish`` before writing, ``--check`` after
reloading), so the card's numbers can be compared with the data's. Counts follow the paper's
Table 8: sub-questions per function and split, questions per source and split, plus sub-questions
per question and answer lengths (in whitespace-separated words).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

SPLIT_ORDER = ("train", "test")
STATS_BEGIN = "<!-- cogvision:stats:begin (generated; `cogvision publish --check` compares it) -->"
STATS_END = "<!-- cogvision:stats:end -->"


def _words(text: str) -> int:
    return len(text.split())


def _summary(values: list[int]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "median": 0.0, "min": 0, "max": 0}
    return {"mean": round(statistics.fmean(values), 3), "median": float(statistics.median(values)),
            "min": min(values), "max": max(values)}


def _by_split(counter: Counter[tuple[str, str]], names: list[str],
              splits: list[str]) -> dict[str, dict[str, int]]:
    table = {}
    for name in names:
        row = {split: counter[(name, split)] for split in splits}
        row["total"] = sum(row.values())
        table[name] = row
    return table


def compute_stats(main_rows: Mapping[str, Iterable[Mapping[str, Any]]],
                  function_order: list[str]) -> dict[str, Any]:
    """Statistics of the ``main`` rows per split (images not needed; sub-questions are nested).

    Args:
        main_rows: split name -> rows of the ``main`` config (at least ``source``, ``license``,
            ``answer`` and ``subquestions``).
        function_order: the taxonomy's canonical names, for the row order of the function table.
    """
    splits = [s for s in SPLIT_ORDER if s in main_rows] + sorted(set(main_rows) - set(SPLIT_ORDER))
    by_function: Counter[tuple[str, str]] = Counter()
    by_source: Counter[tuple[str, str]] = Counter()
    licenses: Counter[str] = Counter()
    questions: dict[str, int] = {}
    subquestions: dict[str, int] = {}
    per_question: list[int] = []
    sub_words: list[int] = []
    main_words: list[int] = []
    for split in splits:
        questions[split] = subquestions[split] = 0
        for row in main_rows[split]:
            steps = row["subquestions"]
            questions[split] += 1
            subquestions[split] += len(steps)
            per_question.append(len(steps))
            by_source[(row["source"], split)] += 1
            licenses[row["license"]] += 1
            main_words.append(_words(row["answer"]))
            for step in steps:
                by_function[(step["function"], split)] += 1
                sub_words.append(_words(step["answer"]))
    seen_functions = {name for name, _ in by_function}
    functions = [f for f in function_order if f in seen_functions]
    functions += sorted(seen_functions - set(functions))
    return {
        "splits": splits,
        "questions": {**questions, "total": sum(questions.values())},
        "subquestions": {**subquestions, "total": sum(subquestions.values())},
        "by_function": _by_split(by_function, functions, splits),
        "by_source": _by_split(by_source, sorted({name for name, _ in by_source}), splits),
        "licenses": dict(sorted(licenses.items())),
        "subquestions_per_question": {
            **_summary(per_question),
            "histogram": {str(k): v for k, v in sorted(Counter(per_question).items())},
        },
        "answer_words": {"main": _summary(main_words), "subquestions": _summary(sub_words)},
    }


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "-"


def _count_table(title: str, table: dict[str, dict[str, int]], splits: list[str]) -> list[str]:
    totals = {s: sum(row[s] for row in table.values()) for s in [*splits, "total"]}
    head = f"| {title} | " + " | ".join(splits) + " | total | share |"
    lines = [head, "|" + "---|" * (len(splits) + 3)]
    for name, row in table.items():
        cells = " | ".join(str(row[s]) for s in splits)
        share = _share(row["total"], totals["total"])
        lines.append(f"| {name} | {cells} | {row['total']} | {share} |")
    cells = " | ".join(str(totals[s]) for s in splits)
    lines.append(f"| **total** | {cells} | {totals['total']} | 100.0% |")
    return lines


def render_stats(stats: dict[str, Any]) -> str:
    """The card's statistics section (between the stats markers), deterministic for given stats."""
    splits = stats["splits"]
    q, s = stats["questions"], stats["subquestions"]
    per = stats["subquestions_per_question"]
    words = stats["answer_words"]
    lines = [STATS_BEGIN, "", "| split | main questions | sub-questions |", "|---|---|---|"]
    lines += [f"| {split} | {q[split]} | {s[split]} |" for split in splits]
    lines += [f"| **total** | {q['total']} | {s['total']} |", ""]
    lines += ["Sub-questions per function (like the paper's Table 8):", ""]
    lines += _count_table("function", stats["by_function"], splits) + [""]
    lines += ["Main questions per source:", ""]
    lines += _count_table("source", stats["by_source"], splits) + [""]
    histogram = ", ".join(f"{k}: {v}" for k, v in per["histogram"].items())
    lines += [
        f"Sub-questions per main question: mean {per['mean']}, median {per['median']}, "
        f"min {per['min']}, max {per['max']} (histogram {histogram}).",
        "",
        "Answer length in words: main answers mean {mean}, median {median}, max {max}; ".format(
            **words["main"])
        + "sub-question answers mean {mean}, median {median}, max {max}.".format(
            **words["subquestions"]),
        "",
        "Licences (main questions): "
        + ", ".join(f"{name}: {count}" for name, count in stats["licenses"].items()) + ".",
        "",
        STATS_END,
    ]
    return "\n".join(lines)


def extract_stats_section(card: str) -> str | None:
    """The stats section of a card, markers included, or None when the markers are missing."""
    start = card.find(STATS_BEGIN)
    end = card.find(STATS_END, start)
    if start < 0 or end < 0:
        return None
    return card[start: end + len(STATS_END)]
