"""`cogvision review`: human review of decompositions in a local Label Studio."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cogvision.cli.common import ConfigOption, OverrideOption, console, progress

review_app = typer.Typer(
    help=(
        "Human review in Label Studio: serve/stop a local server, push LLM drafts as pre-annotated "
        "tasks, pull and aggregate three reviewers' verdicts, show progress and agreement. "
        "The token comes from LABEL_STUDIO_API_KEY only."
    ),
    no_args_is_help=True,
)

WorkDir = Annotated[Path, typer.Option("--work-dir", help="Server data, PID file and run logs.")]
UrlOption = Annotated[str | None, typer.Option(
    "--url", help="Label Studio URL (default: $LABEL_STUDIO_URL, the server `serve` started, "
    "or http://127.0.0.1:8080).")]
ProjectOption = Annotated[str, typer.Option("--project", help="Label Studio project title.")]
DEFAULT_WORK_DIR = Path("work/review")


def _url(url: str | None, work_dir: Path) -> str:
    from cogvision.review.client import DEFAULT_URL
    from cogvision.review.server import read_state

    if url:
        return url
    if os.environ.get("LABEL_STUDIO_URL"):
        return os.environ["LABEL_STUDIO_URL"]
    state = read_state(work_dir)
    return state.url if state else DEFAULT_URL


def _client(url: str | None, work_dir: Path):  # noqa: ANN202 - ReviewClient, imported lazily
    from cogvision.review.client import ReviewClient, api_key_from_env

    return ReviewClient(_url(url, work_dir), api_key_from_env())


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "project"


@review_app.command("serve")
def serve(
    work_dir: WorkDir = DEFAULT_WORK_DIR,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8080,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for /health/.")] = 300.0,
) -> None:
    """Start Label Studio on 127.0.0.1 (admin from LABEL_STUDIO_USERNAME / LABEL_STUDIO_PASSWORD,
    optional fixed token LABEL_STUDIO_API_KEY) and print its URL."""
    from cogvision.errors import UsageError
    from cogvision.review.server import start_server

    username = os.environ.get("LABEL_STUDIO_USERNAME", "admin@localhost.localdomain")
    password = os.environ.get("LABEL_STUDIO_PASSWORD", "")
    if len(password) < 8:
        raise UsageError("set LABEL_STUDIO_PASSWORD (8+ characters) for the Label Studio admin")
    info = start_server(work_dir, username=username, password=password, port=port or None,
                        token=os.environ.get("LABEL_STUDIO_API_KEY") or None, timeout=timeout)
    console.print(f"Label Studio ready at {info.url} (pid {info.pid}, log {info.log})")
    console.print(info.url, highlight=False)


@review_app.command("stop")
def stop(work_dir: WorkDir = DEFAULT_WORK_DIR) -> None:
    """Stop the Label Studio server started by `serve` (by its recorded PID)."""
    from cogvision.review.server import stop_server

    info = stop_server(work_dir)
    console.print(f"stopped Label Studio pid {info.pid}" if info else "no server recorded")


@review_app.command("push")
def push(
    project: ProjectOption,
    input_file: Annotated[Path, typer.Option("--in", help="decompositions.jsonl to review.")],
    url: UrlOption = None,
    work_dir: WorkDir = DEFAULT_WORK_DIR,
) -> None:
    """Create or update PROJECT with one pre-annotated task per decomposition (idempotent)."""
    from cogvision.artifacts import write_manifest
    from cogvision.review.push import push as push_records
    from cogvision.review.push import write_failures
    from cogvision.schema.records import utc_now

    started = utc_now()
    run_dir = work_dir / "runs" / f"push-{_slug(project)}"
    with _client(url, work_dir) as client, progress() as bar:
        task = bar.add_task("push", total=None, failures=0, retries=0)
        report = push_records(input_file, project, client, image_cache=work_dir / "images",
                              on_progress=lambda k: bar.advance(task, k))
    write_failures(run_dir / "failures.jsonl", report.failures)
    write_manifest(run_dir / "manifest.json", "review-push", inputs=[input_file],
                   counts=report.counts(), started_at=started,
                   config={"project": project, "url": client.url, "project_id": report.project_id})
    console.print(f"project {project!r} (id {report.project_id}): " +
                  ", ".join(f"{k} {v}" for k, v in report.counts().items()))
    if report.failures:
        console.print(f"failures written to {run_dir / 'failures.jsonl'}")


@review_app.command("pull")
def pull(
    project: ProjectOption,
    out: Annotated[Path, typer.Option("--out", help="reviewed.jsonl to write.")],
    url: UrlOption = None,
    work_dir: WorkDir = DEFAULT_WORK_DIR,
    strict: Annotated[bool, typer.Option(
        help="Stop at the first invalid annotation (else: failure record, go on).")] = True,
    config: ConfigOption = None,
    overrides: OverrideOption = None,
) -> None:
    """Export PROJECT's annotations, validate them, apply the review rules, write OUT."""
    from cogvision.artifacts import write_manifest
    from cogvision.config import resolve
    from cogvision.review.aggregate import ReviewRules
    from cogvision.review.pull import pull as pull_records
    from cogvision.review.push import write_failures
    from cogvision.schema.records import utc_now

    rules = resolve(ReviewRules, path=config, overrides=overrides)
    started = utc_now()
    with _client(url, work_dir) as client, progress() as bar:
        task = bar.add_task("pull", total=None, failures=0, retries=0)
        report = pull_records(client, project, out, rules=rules, strict=strict,
                              image_cache=work_dir / "images",
                              on_progress=lambda k: bar.advance(task, k))
    failures = out.parent / "failures.jsonl"
    failures.unlink(missing_ok=True)
    write_failures(failures, report.failures)
    write_manifest(out.parent / "manifest.json", "review-pull", outputs=[out],
                   counts=report.counts(), started_at=started,
                   config={"project": project, "url": client.url, "strict": strict,
                           "rules": rules.model_dump()})
    console.print(f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in report.counts().items()))


@review_app.command("status")
def status(
    project: ProjectOption,
    url: UrlOption = None,
    work_dir: WorkDir = DEFAULT_WORK_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    config: ConfigOption = None,
    overrides: OverrideOption = None,
) -> None:
    """Per-stage counts, per-reviewer progress and agreement (Krippendorff's alpha)."""
    from cogvision.config import resolve
    from cogvision.review.aggregate import ReviewRules
    from cogvision.review.status import project_status

    rules = resolve(ReviewRules, path=config, overrides=overrides)
    with _client(url, work_dir) as client:
        result = project_status(client, project, rules)
    if as_json:
        console.print_json(json.dumps(result.as_dict()))
        return
    console.print(f"project {project!r}: {result.tasks} tasks; " +
                  ", ".join(f"{k} {v}" for k, v in sorted(result.items.items())))
    stages = Table(title="stages (sub-question judgements)")
    for column in ("stage", "judged", "needed", "corrections"):
        stages.add_column(column, justify="left" if column == "stage" else "right")
    for name, counts in result.stages.items():
        stages.add_row(name, str(counts["judged"]), str(counts["needed"]),
                       str(counts.get("corrections", "")))
    console.print(stages)
    people = Table(title="reviewers")
    for column in ("reviewer", "complete", "partial", "tasks"):
        people.add_column(column)
    for name, counts in result.reviewers.items():
        people.add_row(name, str(counts["complete"]), str(counts["partial"]), str(counts["tasks"]))
    console.print(people)
    console.print(f"Krippendorff's alpha: validity {_fmt(result.alpha_validity)}, "
                  f"function {_fmt(result.alpha_function)}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
