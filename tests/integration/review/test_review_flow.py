"""Push -> three reviewers annotate through the API -> pull, against a real Label Studio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cogvision.artifacts import read_jsonl, write_jsonl_atomic
from cogvision.errors import ReviewError
from cogvision.images import verify_image
from cogvision.review.client import ReviewClient
from cogvision.review.pull import pull
from cogvision.review.push import push
from cogvision.review.server import free_port
from cogvision.review.status import project_status
from cogvision.schema.records import Decomposition
from cogvision.schema.taxonomy import get_taxonomy
from tests.integration.review.conftest import REPO, annotate, task_ids
from tests.unit.review.builders import make_decomposition, write_decompositions

NAMES = get_taxonomy("cogvision").names
A, B, C = "ann@example.com", "bob@example.com", "cat@example.com"
PROJECT = "flow"


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory, admin: ReviewClient,
         reviewers: dict[str, ReviewClient]) -> tuple[Path, list[Decomposition]]:
    """Seven pushed items, annotated to exercise each aggregation rule."""
    folder = tmp_path_factory.mktemp("flow")
    path, records = write_decompositions(folder, 7, seed=1)
    report = push(path, PROJECT, admin)
    assert report.counts() == {"created": 7, "updated": 0, "unchanged": 0, "images_uploaded": 7,
                               "failed": 0}
    ids = task_ids(admin, PROJECT)
    t = [ids[r.id] for r in records]
    a, b, c = reviewers[A], reviewers[B], reviewers[C]
    # 0: accepted; sub 4 invalid (2 of 3), sub 2 relabelled by majority, sub 3 corrected by ann.
    annotate(a, t[0], 5, invalid={4}, functions={2: NAMES[6]}, corrected={3: "blue"}, wrong={3})
    annotate(b, t[0], 5, invalid={4}, functions={2: NAMES[6]})
    annotate(c, t[0], 5, functions={2: NAMES[2]})
    # 1: dropped, cat marks only 40% valid (no sub-question has 2 invalid votes).
    annotate(a, t[1], 5)
    annotate(b, t[1], 5)
    annotate(c, t[1], 5, invalid={0, 1, 2})
    # 2: dropped, 3 of 5 sub-questions invalid (60% > 40%), every reviewer at exactly 60% valid.
    annotate(a, t[2], 5, invalid={0, 1})
    annotate(b, t[2], 5, invalid={1, 2})
    annotate(c, t[2], 5, invalid={0, 2})
    # 3: three-way function tie on sub 0 -> pending, sent back for relabelling.
    annotate(a, t[3], 5, functions={0: NAMES[1]})
    annotate(b, t[3], 5, functions={0: NAMES[2]})
    annotate(c, t[3], 5, functions={0: NAMES[3]})
    # 4: cat's annotation is partial -> pending.
    annotate(a, t[4], 5)
    annotate(b, t[4], 5)
    annotate(c, t[4], 5, only={0, 1})
    # 5: nobody yet -> pending.  6: answer marked wrong by two, no correction typed -> pending.
    annotate(a, t[6], 5, wrong={1})
    annotate(b, t[6], 5, wrong={1})
    annotate(c, t[6], 5)
    return path, records


def _by_id(path: Path) -> dict[str, Decomposition]:
    return {r.id: r for r in read_jsonl(path, Decomposition)}


def test_pull_applies_the_review_rules(flow, admin: ReviewClient, tmp_path: Path) -> None:
    _, records = flow
    out = tmp_path / "reviewed.jsonl"
    report = pull(admin, PROJECT, out)
    assert report.counts() == {"tasks": 7, "failed": 0, "accepted": 1, "dropped": 2, "pending": 4}
    got = _by_id(out)
    r0 = got[records[0].id]
    assert r0.review.status == "accepted" and r0.review.reviewers == [A, B, C]
    assert len(r0.subquestions) == 4  # invalid sub 4 removed
    assert r0.subquestions[2].function == NAMES[6]
    assert r0.review.subquestions[2].original_function == NAMES[2]
    assert r0.review.subquestions[2].function_votes == {NAMES[6]: 2, NAMES[2]: 1}
    assert r0.subquestions[3].answer == "blue"
    assert r0.review.subquestions[3].corrected_by == [A]
    assert r0.review.subquestions[3].corrected_at is not None
    assert r0.review.subquestions[4].invalid and r0.review.subquestions[4].invalid_votes == 2
    assert verify_image(r0.question.image, out.parent).is_file()  # image fetched next to output

    r1, r2 = got[records[1].id].review, got[records[2].id].review
    assert r1.status == "dropped" and any(C in reason and "40%" in reason for reason in r1.reasons)
    assert not any(s.invalid for s in r1.subquestions)
    assert r2.status == "dropped" and r2.reasons == ["60% of sub-questions invalid (> 40%)"]
    r3 = got[records[3].id]
    assert r3.review.status == "pending" and r3.review.subquestions[0].relabel
    assert r3.subquestions[0].function == records[3].subquestions[0].function  # nothing applied
    assert got[records[4].id].review.reasons == ["2/3 reviewers done (cat@example.com partial)"]
    assert got[records[5].id].review.reasons == ["0/3 reviewers done"]
    assert "without a correction" in got[records[6].id].review.reasons[0]


def test_status_counts_and_agreement(flow, admin: ReviewClient) -> None:
    status = project_status(admin, PROJECT)
    assert status.tasks == 7
    assert status.items["accepted"] == 1 and status.items["dropped"] == 2
    assert status.items["pending"] == 4 and status.items["annotated"] == 6
    assert status.reviewers[C] == {"complete": 5, "partial": 1, "tasks": 7}
    assert status.reviewers[A] == {"complete": 6, "partial": 0, "tasks": 7}
    assert status.stages["1-validity"] == {"judged": 17 * 5 + 2, "needed": 7 * 5 * 3}
    assert status.stages["3-answer"]["corrections"] == 1
    assert status.alpha_validity is not None and -1.0 <= status.alpha_validity < 1.0
    assert status.alpha_function is not None and status.alpha_function < 1.0


def _env(token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO")}
    return dict(env, LABEL_STUDIO_API_KEY=token)


def _cli(*args: str, token: str, work_dir: Path | None = None) -> subprocess.CompletedProcess:
    if "--work-dir" not in args:  # never the repository's default work/review
        assert work_dir is not None
        args = (*args, "--work-dir", str(work_dir))
    return subprocess.run([sys.executable, "-m", "cogvision.cli.main", "review", *args],
                          env=_env(token), cwd=REPO, text=True, capture_output=True, timeout=300,
                          check=False)


def test_cli_pull_and_status(flow, ls_server, tmp_path: Path) -> None:
    out = tmp_path / "out" / "reviewed.jsonl"
    done = _cli("pull", "--project", PROJECT, "--out", str(out), "--url", ls_server.url,
                "-C", "min_valid_share=0.3", token=ls_server.token, work_dir=tmp_path / "w")
    assert done.returncode == 0, done.stderr
    # with 30% the reviewer-share rule no longer drops item 1: it is accepted
    assert sum(r.review.status == "accepted" for r in read_jsonl(out, Decomposition)) == 2
    manifest = (out.parent / "manifest.json").read_text()
    assert json.loads(manifest)["counts"]["accepted"] == 2
    assert ls_server.token not in manifest
    shown = _cli("status", "--project", PROJECT, "--url", ls_server.url, "--json",
                 token=ls_server.token, work_dir=tmp_path / "w")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["items"]["dropped"] == 2
    table = _cli("status", "--project", PROJECT, "--url", ls_server.url, token=ls_server.token,
                 work_dir=tmp_path / "w")
    assert table.returncode == 0, table.stderr
    assert "1-validity" in table.stdout and "cat@example.com" in table.stdout
    assert "Krippendorff's alpha: validity" in table.stdout


def test_repush_is_idempotent_and_updates_changes(ls_server, admin: ReviewClient,
                                                  tmp_path: Path) -> None:
    path, records = write_decompositions(tmp_path, 3, seed=2)
    project = "repush"
    assert push(path, project, admin).created == 3
    before = task_ids(admin, project)
    again = push(path, project, admin)
    assert (again.created, again.updated, again.unchanged, again.images_uploaded) == (0, 0, 3, 0)
    changed = records[1].model_copy(update={"subquestions": [
        s.model_copy(update={"answer": "changed"}) if s.index == 0 else s
        for s in records[1].subquestions]})
    changed = Decomposition.model_validate(changed.model_dump())
    assert changed.id == records[1].id and changed.content_hash != records[1].content_hash
    extra = make_decomposition(99, tmp_path, np.random.default_rng(9))
    write_jsonl_atomic(path, [records[0], changed, records[2], extra])
    third = push(path, project, admin)
    assert (third.created, third.updated, third.unchanged) == (1, 1, 2)
    after = task_ids(admin, project)
    assert len(after) == 4 and all(after[k] == v for k, v in before.items())
    tasks = {t["data"]["decomposition_id"]: t
             for t in admin.export_tasks(int(admin.require_project(project).id))}
    updated = tasks[changed.id]
    assert updated["data"]["content_hash"] == changed.content_hash
    assert updated["data"]["subquestions"][0]["answer"] == "changed"
    assert len(updated["predictions"]) == 1


def test_unknown_from_name_is_rejected(ls_server, admin: ReviewClient,
                                       reviewers: dict[str, ReviewClient], tmp_path: Path) -> None:
    path, records = write_decompositions(tmp_path / "in", 2, seed=3)
    project = "bogus"
    push(path, project, admin)
    ids = task_ids(admin, project)
    bogus = {"from_name": "confidence_0", "to_name": "sq_0", "type": "choices",
             "value": {"choices": ["high"]}}
    annotate(reviewers[A], ids[records[0].id], 5, extra=[bogus])  # the server accepts it
    out = tmp_path / "out" / "reviewed.jsonl"
    with pytest.raises(ReviewError, match="confidence_0") as err:
        pull(admin, project, out)
    assert f"task {ids[records[0].id]}" in str(err.value)
    assert not out.exists()
    done = _cli("pull", "--project", project, "--out", str(out), "--url", ls_server.url,
                token=ls_server.token, work_dir=tmp_path / "w")
    assert done.returncode == 1 and "confidence_0" in done.stderr and not out.exists()
    lenient = pull(admin, project, out, strict=False)
    assert [f.item_id for f in lenient.failures] == [records[0].id]
    assert [r.id for r in read_jsonl(out, Decomposition)] == [records[1].id]


def test_unreachable_server_and_wrong_token(ls_server, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ReviewError, match="unreachable"):
        ReviewClient(dead, "x" * 40)
    with pytest.raises(ReviewError, match="token was refused"):
        ReviewClient(ls_server.url, "0" * 40)
    out = tmp_path / "reviewed.jsonl"
    for url, token in ((dead, ls_server.token), (ls_server.url, "0" * 40)):
        done = _cli("pull", "--project", PROJECT, "--out", str(out), "--url", url, token=token,
                    work_dir=tmp_path / "w")
        assert done.returncode == 1, done.stderr
        assert "error:" in done.stderr and "Traceback" not in done.stderr
        assert list(tmp_path.iterdir()) == []
    done = _cli("push", "--project", "x", "--in", str(out), "--url", ls_server.url, token="",
                work_dir=tmp_path / "w")
    assert done.returncode == 2 and "LABEL_STUDIO_API_KEY" in done.stderr


def test_cli_push_records_a_missing_image_as_failure(ls_server, tmp_path: Path) -> None:
    path, records = write_decompositions(tmp_path / "in", 3, seed=4)
    (tmp_path / "in" / records[2].question.image.path).unlink()
    work = tmp_path / "work"
    done = _cli("push", "--project", "cli push", "--in", str(path), "--url", ls_server.url,
                "--work-dir", str(work), token=ls_server.token)
    assert done.returncode == 0, done.stderr
    assert "created 2" in done.stdout and "failed 1" in done.stdout
    run = work / "runs" / "push-cli-push"
    failures = [json.loads(line) for line in (run / "failures.jsonl").read_text().splitlines()]
    assert [f["item_id"] for f in failures] == [records[2].id]
    assert "image file not found" in failures[0]["message"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["counts"]["created"] == 2 and ls_server.token not in json.dumps(manifest)


def test_personal_access_token_works(ls_server, admin: ReviewClient,
                                     reviewers: dict[str, ReviewClient], tmp_path: Path) -> None:
    """LABEL_STUDIO_API_KEY may be a personal access token (JWT refresh token -> Bearer)."""
    settings = admin.sdk.jwt_settings.get()
    admin.sdk.jwt_settings.update(api_token_ttl_days=settings.api_token_ttl_days,
                                  api_tokens_enabled=True, legacy_api_tokens_enabled=True)
    pat = reviewers[C].sdk.tokens.create().token
    assert pat.count(".") == 2  # a JWT, not a legacy token
    path, _ = write_decompositions(tmp_path / "in", 1, seed=6)
    with ReviewClient(ls_server.url, pat) as client:
        assert client.me.email == C
        assert push(path, "pat project", client).created == 1
        report = pull(client, "pat project", tmp_path / "out" / "reviewed.jsonl")
    assert report.counts()["pending"] == 1
