"""Spine commands: `schema export`, `validate`, `stats`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cogvision.cli.common import console, err_console

schema_app = typer.Typer(help="Record schemas (JSON Schema export).", no_args_is_help=True)


@schema_app.command("export")
def schema_export(
    out: Annotated[Path, typer.Option(help="Folder for the *.schema.json files.")] = Path(
        "schemas"
    ),
    check: Annotated[bool, typer.Option(help="Only report stale files; exit 1 if any.")] = False,
) -> None:
    """Write the JSON Schema of every record type (SourceQuestion, Decomposition, ...)."""
    from cogvision.schema.export import export_json_schemas, stale_schemas

    if check:
        stale = stale_schemas(out)
        for name in stale:
            err_console.print(f"stale: {out / name}")
        raise typer.Exit(1 if stale else 0)
    for path in export_json_schemas(out):
        console.print(f"wrote {path}")


def validate(
    file: Annotated[
        Path, typer.Argument(help="A JSONL artifact (questions, decompositions, failures).")
    ],
    images: Annotated[
        bool, typer.Option(help="Also check that image files exist and match sha256.")
    ] = True,
    max_errors: Annotated[int, typer.Option(help="Print at most this many problems.")] = 50,
) -> None:
    """Validate every line of FILE; exit 1 with line-numbered errors."""
    from cogvision.checks import validate_file

    records, problems = validate_file(file, check_images=images)
    for problem in problems[:max_errors]:
        err_console.print(str(problem), highlight=False, soft_wrap=True)
    if len(problems) > max_errors:
        err_console.print(f"... and {len(problems) - max_errors} more problems")
    if problems:
        raise typer.Exit(1)
    console.print(f"{file}: {len(records)} valid {type(records[0]).__name__} records")


def stats(
    file: Annotated[Path, typer.Argument(help="Questions or decompositions JSONL.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Counts per function, source and split (like the paper's Table 8)."""
    from cogvision.artifacts import read_jsonl
    from cogvision.checks import compute_stats, detect_record_type

    result = compute_stats(list(read_jsonl(file, detect_record_type(file))))
    if as_json:
        console.print_json(json.dumps(result.as_dict()))
        return
    console.print(f"{file}: {result.questions} questions, {result.subquestions} sub-questions")
    for title, counter in (
        ("function", result.by_function),
        ("source", result.by_source),
        ("split", result.by_split),
    ):
        if not counter:
            continue
        total = sum(counter.values())
        table = Table(title=f"by {title}")
        table.add_column(title)
        table.add_column("count", justify="right")
        table.add_column("share", justify="right")
        for name, count in counter.most_common():
            table.add_row(name, str(count), f"{100 * count / total:.1f}%")
        console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
    app.command("validate")(validate)
    app.command("stats")(stats)
