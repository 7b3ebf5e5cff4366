"""Review throughput against a real local Label Studio: push N tasks, pull N annotated tasks.

Starts its own server (loopback, ephemeral port, data in a temp dir, stopped by PID), signs up three
reviewers, then times, in one run:

- ``push``: ``cogvision.review.push.push`` of N new decompositions (image upload + import with
  pre-annotations), then a re-push of the same file (nothing changes: export + compare only);
- ``raw import``: the SDK's ``projects.import_tasks`` of the same N task payloads with predictions
  into a fresh project (the floor our push builds on: baseline for the ratio);
- ``pull``: ``cogvision.review.pull.pull`` of N tasks (the pushed ones, copied with three reviewers'
  annotations each): export, validation of every result against the label config, aggregation,
  write; once with the images push left in the local cache (the CLI's default on one machine) and
  once downloading every image from the server;
- ``raw export``: the SDK's JSON export of the same project (baseline for the ratio).

Goals (issue 4): push of 1,000 tasks < 30 s, pull of 1,000 annotated tasks < 10 s. Printed, never
asserted. The server shares the machine's cores with this client (and with anything else running).

    .venv/bin/python benchmarks/perf_review.py [--n 1000]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cogvision.review import labelconfig as lc  # noqa: E402
from cogvision.review.client import ReviewClient  # noqa: E402
from cogvision.review.pull import pull  # noqa: E402
from cogvision.review.push import push  # noqa: E402
from cogvision.review.server import start_server, stop_server  # noqa: E402
from cogvision.review.tasks import prediction_result, task_data  # noqa: E402
from tests.integration.review.conftest import sign_up  # noqa: E402
from tests.unit.review.builders import write_decompositions  # noqa: E402

N_SUB = 5


def timed(fn, *args, **kwargs):  # noqa: ANN001, ANN201 - tiny helper
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def review_result(i: int, reviewer: int) -> list[dict]:
    """A plausible annotation: reviewer-dependent invalid votes and one relabel."""
    result = []
    for k in range(N_SUB):
        to_name = lc.SUBQUESTION.format(i=k)
        invalid = (i + reviewer + k) % 7 == 0
        result.append({"from_name": lc.VALID.format(i=k), "to_name": to_name, "type": "choices",
                       "value": {"choices": ["invalid" if invalid else "valid"]}})
        result.append({"from_name": lc.ANSWER.format(i=k), "to_name": to_name, "type": "choices",
                       "value": {"choices": ["correct"]}})
    return result


def annotated_copy(admin: ReviewClient, source: str, target: str,
                   reviewer_ids: list[int]) -> tuple[int, float]:
    """Project ``target``: the tasks of ``source`` (same data and image URLs) imported together
    with three reviewers' annotations each (``completed_by`` = the reviewer's id). Setting them up
    through the import is the fast way; the per-annotation API is exercised by the tests."""
    tasks = admin.export_tasks(int(admin.require_project(source).id))
    project = admin.create_project(target, lc.build_label_config("cogvision"), "annotated copy")
    payload = [{"data": t["data"], "annotations": [
        {"result": review_result(i, r), "completed_by": uid} for r, uid in enumerate(reviewer_ids)]}
        for i, t in enumerate(tasks)]
    start = time.perf_counter()
    for s in range(0, len(payload), 250):
        admin.import_tasks(int(project.id), payload[s:s + 250])
    return int(project.id), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="perf-review-") as tmp:
        root = Path(tmp)
        token = secrets.token_hex(20)
        info, boot = timed(start_server, root / "server", username="admin@example.com",
                           password="admin-pass-1234", token=token, timeout=600)
        try:
            run(root, info.url, token, args, boot)
        finally:
            stop_server(root / "server")


def run(root: Path, url: str, token: str, args: argparse.Namespace, boot: float) -> None:
    path, records = write_decompositions(root / "in", args.n, seed=0, n_sub=N_SUB)
    admin = ReviewClient(url, token)
    cache = root / "image-cache"
    report, t_push = timed(push, path, "perf", admin, image_cache=cache)
    again, t_repush = timed(push, path, "perf", admin)
    assert report.created == args.n and again.unchanged == args.n
    raw_tasks = [{"data": task_data(r, "/data/upload/1/x.png"),
                  "predictions": [{"result": prediction_result(r), "model_version": "gpt-test"}]}
                 for r in records]
    raw_project = admin.create_project("perf-raw", lc.build_label_config("cogvision"), "baseline")
    _, t_raw_import = timed(lambda: [admin.import_tasks(int(raw_project.id), raw_tasks[s:s + 250])
                                     for s in range(0, len(raw_tasks), 250)])
    tokens = [sign_up(url, f"r{k}@example.com", "reviewer-pass-1234")[0] for k in range(3)]
    reviewer_ids = [int(ReviewClient(url, t).me.id) for t in tokens]
    project_id, t_annotate = annotated_copy(admin, "perf", "perf-annotated", reviewer_ids)
    pulled, t_pull = timed(pull, admin, "perf-annotated", root / "out" / "reviewed.jsonl",
                           image_cache=cache)
    _, t_pull_cold = timed(pull, admin, "perf-annotated", root / "cold" / "reviewed.jsonl")
    _, t_export = timed(admin.export_tasks, project_id)
    counts = pulled.counts()
    assert counts["tasks"] == args.n
    rows = [
        ("server start (cold, migrations)", boot, None, "-"),
        (f"push {args.n} new (upload images + import)", t_push, t_raw_import, "< 30 s"),
        (f"raw SDK import of the same {args.n} tasks", t_raw_import, t_raw_import, "baseline"),
        (f"re-push {args.n} unchanged", t_repush, t_raw_import, "-"),
        (f"import {args.n} tasks x 3 annotations (setup)", t_annotate, None, "-"),
        (f"pull {args.n} annotated, images from push's cache", t_pull, t_export, "< 10 s"),
        (f"pull {args.n} annotated, downloading every image", t_pull_cold, t_export, "-"),
        (f"raw SDK JSON export of {args.n} tasks", t_export, t_export, "baseline"),
    ]
    print(f"\nLabel Studio review benchmark, n={args.n}, {N_SUB} sub-questions per item, "
          f"3 reviewers; pull outcome {counts}")
    print(f"{'case':<52} {'seconds':>9} {'tasks/s':>9} {'x baseline':>11}  goal")
    for name, seconds, base, goal in rows:
        rate = f"{args.n / seconds:9.1f}" if "start" not in name else f"{'-':>9}"
        ratio = f"{seconds / base:11.2f}" if base else f"{'-':>11}"
        print(f"{name:<52} {seconds:9.2f} {rate} {ratio}  {goal}")


if __name__ == "__main__":
    main()
