"""Held-out accuracy of an organism on several fresh synthetic samples, per function and per
program-step kind, each sample and pooled (issue 8: the held-out tables of benchmarks/organism.md).

Every sample is scored through the harness's own loading and answering path
(``cogvision.organism.evaluate.evaluate_model``, the same as ``cogvision organism eval``). A
sample is ``SEED:N`` (N scenes drawn from SEED); use seeds no training pool of the model used (the
manifest's ``pool_seeds`` and ``second_stage_pool_seeds`` list them). Example (the figures in
benchmarks/organism.md):

    python benchmarks/organism_heldout.py --model models/organism-cogvision \\
        --samples 13:150 3:150 23:150 10000:100 --json work/heldout.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cogvision.organism.evaluate import evaluate_model

GOALS = {"decide": 95, "attribute": 95, "count": 95, "position": 90, "relation": 90}


def pooled(results: list[dict[str, Any]], part: str) -> dict[str, dict[str, float]]:
    """Per row name: hits and n summed over the samples, and the pooled accuracy."""
    rows: dict[str, dict[str, float]] = {}
    for result in results:
        for name, row in result[part].items():
            cell = rows.setdefault(name, {"hits": 0.0, "n": 0})
            cell["hits"] += row["accuracy"] * row["n"]
            cell["n"] += row["n"]
    for cell in rows.values():
        cell["hits"] = round(cell["hits"])
        cell["accuracy"] = cell["hits"] / cell["n"] if cell["n"] else 0.0
    return rows


def table(results: list[dict[str, Any]], part: str, goals: dict[str, int] | None) -> str:
    seeds = [r["sample"]["seed"] for r in results]
    total = pooled(results, part)
    head = ["function" if part == "per_function" else "kind", *(["goal"] if goals else []),
            *(f"seed {s} (n)" for s in seeds), "pooled (n)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in sorted(total):
        cells = []
        for r in results:
            row = r[part].get(name)
            cells.append("-" if row is None else f"{100 * row['accuracy']:.1f} ({row['n']})")
        goal = [str(goals.get(name, "-"))] if goals else []
        lines.append(f"| {name} | " + " | ".join([*goal, *cells,
                     f"{100 * total[name]['accuracy']:.1f} ({total[name]['n']:.0f})"]) + " |")
    if part == "per_function":
        overall = pooled([{"overall": {"all": r["overall"]}} for r in results], "overall")["all"]
        lines.append("| all | " + " | ".join(
            [*(f"{100 * r['overall']['accuracy']:.1f} ({r['overall']['n']})" for r in results),
             f"{100 * overall['accuracy']:.1f} ({overall['n']:.0f})"]) + " |")
    return "\n".join(lines)


def parse_samples(parser: argparse.ArgumentParser, samples: list[str]) -> list[tuple[int, int]]:
    """(seed, n) of each ``SEED:N`` value of ``--samples`` (a usage error names a bad one)."""
    out = []
    for sample in samples:
        seed, _, n = sample.partition(":")
        if not (seed.isdigit() and n.isdigit()):
            parser.error(f"--samples: expected SEED:N, got {sample!r}")
        out.append((int(seed), int(n)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/organism-cogvision")
    parser.add_argument("--samples", nargs="+", default=["13:150", "3:150", "23:150", "10000:100"],
                        help="SEED:N, one per fresh sample")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the per-sample results here")
    args = parser.parse_args()

    results = [evaluate_model(args.model, n=n, seed=seed, threads=args.threads)
               for seed, n in parse_samples(parser, args.samples)]
    print(f"{args.model}: held-out accuracy (%, normalised exact match, harness answer path)\n")
    print(table(results, "per_function", None), "\n")
    print(table(results, "per_kind", GOALS))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
