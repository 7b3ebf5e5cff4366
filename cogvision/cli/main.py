"""Entry point: ``cogvision <stage> ...``. Each stage's commands live in their own module."""

from __future__ import annotations

import logging
import os
import sys

import typer

from cogvision.cli import core, organism, probe, publish, review, sources, synth
from cogvision.cli import decompose as decompose_cli
from cogvision.cli import eval as eval_cli
from cogvision.cli.common import err_console
from cogvision.errors import CogvisionError

app = typer.Typer(
    name="cogvision",
    help=(
        "Build, review, publish and evaluate CogVision-style benchmarks: complex image questions "
        "decomposed into sub-questions labelled with cognitive functions, and the functional "
        "attention heads of vision-language models that serve them."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Registered in pipeline order, which is the order `cogvision --help` lists them in.
for stage in (sources, synth, decompose_cli, review, publish, probe, eval_cli, organism, core):
    stage.register(app)

def run() -> None:
    """Console-script entry: one-line errors with the documented exit codes."""
    logging.basicConfig(
        level=os.environ.get("COGVISION_LOG", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        app()
    except CogvisionError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    run()
