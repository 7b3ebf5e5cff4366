"""One real Label Studio server for all review tests (started and stopped by the CLI, by PID),
three reviewer accounts created through the sign-up form, and helpers to annotate as a reviewer."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cogvision.review import labelconfig as lc
from cogvision.review.client import ReviewClient
from cogvision.review.server import read_state

REPO = Path(__file__).resolve().parents[3]
ADMIN = "admin@example.com"
ADMIN_PASSWORD = "admin-pass-1234"
REVIEWERS = ("ann@example.com", "bob@example.com", "cat@example.com")
REVIEWER_PASSWORD = "reviewer-pass-1234"


@dataclass
class Server:
    url: str
    pid: int
    token: str
    work_dir: Path


def _cli(*args: str, env: dict[str, str], timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cogvision.cli.main", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False, cwd=REPO)


def _binary() -> str:
    return os.environ.get("COGVISION_LABEL_STUDIO",
                          str(REPO / ".venv-labelstudio" / "bin" / "label-studio"))


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`cogvision review serve` on an ephemeral port; `cogvision review stop` afterwards."""
    work_dir = tmp_path_factory.mktemp("labelstudio")
    token = secrets.token_hex(20)
    env = dict(os.environ, COGVISION_LABEL_STUDIO=_binary(), LABEL_STUDIO_USERNAME=ADMIN,
               LABEL_STUDIO_PASSWORD=ADMIN_PASSWORD, LABEL_STUDIO_API_KEY=token)
    started = _cli("review", "serve", "--work-dir", str(work_dir), "--port", "0", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    state = read_state(work_dir)
    assert state is not None and state.url in started.stdout
    assert token not in started.stdout + started.stderr
    server = Server(url=state.url, pid=state.pid, token=token, work_dir=work_dir)
    try:
        yield server
    finally:
        stopped = _cli("review", "stop", "--work-dir", str(work_dir), env=env, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        assert f"pid {state.pid}" in stopped.stdout
        assert not Path(f"/proc/{state.pid}").exists()


@pytest.fixture(scope="session")
def admin(ls_server: Server) -> Iterator[ReviewClient]:
    with ReviewClient(ls_server.url, ls_server.token) as client:
        yield client


def sign_up(url: str, email: str, password: str) -> tuple[str, httpx.Cookies]:
    """Create an account through the sign-up form; returns its API token and session cookies."""
    with httpx.Client(base_url=url, follow_redirects=False, timeout=60) as http:
        http.get("/user/signup/")
        response = http.post("/user/signup/", headers={"Referer": f"{url}/user/signup/"},
                             data={"email": email, "password": password,
                                   "csrfmiddlewaretoken": http.cookies.get("csrftoken")})
        assert response.status_code == 302, response.text[:300]
        token = http.get("/api/current-user/token").json()["token"]
        return token, http.cookies


@pytest.fixture(scope="session")
def reviewers(ls_server: Server, admin: ReviewClient) -> dict[str, ReviewClient]:
    """Three reviewer accounts, each with its own API client."""
    clients = {}
    for email in REVIEWERS:
        token, _ = sign_up(ls_server.url, email, REVIEWER_PASSWORD)
        clients[email] = ReviewClient(ls_server.url, token)
        assert clients[email].me.email == email
    return clients


def annotate(client: ReviewClient, task_id: int, n: int, *, invalid: set[int] = frozenset(),
             functions: dict[int, str] | None = None, wrong: set[int] = frozenset(),
             corrected: dict[int, str] | None = None, only: set[int] | None = None,
             extra: list[dict[str, Any]] | None = None) -> None:
    """Submit an annotation as ``client``'s user: per sub-question validity, function, answer."""
    result: list[dict[str, Any]] = []
    for i in range(n):
        if only is not None and i not in only:
            continue
        to_name = lc.SUBQUESTION.format(i=i)
        verdict = "invalid" if i in invalid else "valid"
        result.append(_choice(lc.VALID.format(i=i), to_name, verdict))
        if functions and i in functions:
            result.append(_choice(lc.FUNCTION.format(i=i), to_name, functions[i]))
        result.append(_choice(lc.ANSWER.format(i=i), to_name,
                              "incorrect" if i in wrong else "correct"))
        if corrected and i in corrected:
            result.append({"from_name": lc.CORRECTED.format(i=i), "to_name": to_name,
                           "type": "textarea", "value": {"text": [corrected[i]]}})
    client.sdk.annotations.create(id=task_id, result=result + (extra or []))


def _choice(from_name: str, to_name: str, value: str) -> dict[str, Any]:
    return {"from_name": from_name, "to_name": to_name, "type": "choices",
            "value": {"choices": [value]}}


def task_ids(client: ReviewClient, project: str) -> dict[str, int]:
    """Decomposition id -> task id in ``project``."""
    project_id = int(client.require_project(project).id)
    return {t["data"]["decomposition_id"]: int(t["id"]) for t in client.export_tasks(project_id)}
