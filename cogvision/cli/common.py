"""Shared CLI pieces: consoles, config options, a progress bar with rate, ETA and failures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML config file (defaults < YAML < flags < -C).")
]
OverrideOption = Annotated[
    list[str] | None,
    typer.Option("-C", "--set", help="Override a config value: -C key.sub=value (repeatable)."),
]


class RateColumn(ProgressColumn):
    """Items per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} it/s" if speed else "- it/s")


def progress(*, failures: bool = True) -> Progress:
    """A progress bar on stderr: count, rate, elapsed, ETA, and a ``failures`` task field.

    Create tasks with ``add_task(desc, total=n, failures=0, retries=0)``.
    """
    columns: list[ProgressColumn | str] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    if failures:
        columns.append(
            TextColumn("retries {task.fields[retries]} failures {task.fields[failures]}")
        )
    return Progress(*columns, console=err_console)
