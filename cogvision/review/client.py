"""A small facade over ``label_studio_sdk`` for what review needs, with errors as ReviewError.

The API key comes from ``LABEL_STUDIO_API_KEY`` only (a legacy token or a personal access token; the
SDK picks "Token" or a refreshed "Bearer"). It is never written anywhere.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cogvision.errors import ReviewError, UsageError, require

log = logging.getLogger(__name__)

API_KEY_ENV = "LABEL_STUDIO_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8080"
UPLOAD_BATCH = 50
UPLOAD_THREADS = 4


def api_key_from_env() -> str:
    """The Label Studio token from the environment; a usage error when unset."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise UsageError(f"set {API_KEY_ENV} to a Label Studio access token "
                         "(Account & Settings > Personal Access Token, or the legacy token)")
    return key


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    if status in (401, 403):
        return f"the token was refused (HTTP {status}); check {API_KEY_ENV}"
    if status is not None:
        shown = json.dumps(body)[:300] if body is not None else ""
        return f"HTTP {status} {shown}"
    return f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def api_errors(url: str, doing: str) -> Iterator[None]:
    """Turn SDK / HTTP failures into one-line ReviewErrors naming the server and the action."""
    httpx = require("httpx", "review")
    api_error = require("label_studio_sdk.core.api_error", "review").ApiError
    try:
        yield
    except api_error as exc:
        raise ReviewError(f"Label Studio at {url}: {doing}: {_describe(exc)}") from None
    except httpx.HTTPError as exc:
        raise ReviewError(f"Label Studio at {url} is unreachable ({doing}): {exc}") from None


class ReviewClient:
    """Connected to one Label Studio server; checks the token on creation."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 120.0) -> None:
        sdk = require("label_studio_sdk", "review")
        self.url = url.rstrip("/")
        self.sdk = sdk.LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout)
        self._http = require("httpx", "review").Client(base_url=self.url, timeout=timeout)
        with api_errors(self.url, "checking the token"):
            self.me = self.sdk.users.whoami()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ReviewClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ raw HTTP (SDK auth headers)
    def _request(self, method: str, path: str, doing: str, **kwargs: Any) -> Any:
        headers = self.sdk._client_wrapper.get_headers()  # auth as the SDK resolved it
        headers.pop("Content-Type", None)
        with api_errors(self.url, doing):
            response = self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            status = response.status_code
            why = (f"the token was refused (HTTP {status})" if status in (401, 403)
                   else f"HTTP {status} {response.text[:300]}")
            raise ReviewError(f"Label Studio at {self.url}: {doing}: {why}")
        return response.json() if response.content else None

    # ------------------------------------------------------------------ projects
    def find_project(self, title: str) -> Any | None:
        with api_errors(self.url, f"looking up project {title!r}"):
            for project in self.sdk.projects.list(title=title):
                if project.title == title:
                    return project
        return None

    def require_project(self, title: str) -> Any:
        project = self.find_project(title)
        if project is None:
            raise ReviewError(f"Label Studio at {self.url}: no project titled {title!r}")
        return project

    def create_project(self, title: str, label_config: str, description: str) -> Any:
        with api_errors(self.url, f"creating project {title!r}"):
            return self.sdk.projects.create(title=title, label_config=label_config,
                                            description=description, show_skip_button=False)

    def label_config(self, project_id: int) -> str:
        with api_errors(self.url, "reading the label config"):
            return str(self.sdk.projects.get(id=project_id).label_config)

    # ------------------------------------------------------------------ tasks
    def export_tasks(self, project_id: int) -> list[dict[str, Any]]:
        """Every task with its annotations (JSON export; predictions appear as ids)."""
        with api_errors(self.url, "exporting tasks"):
            chunks = self.sdk.projects.exports.download_sync(
                id=project_id, export_type="JSON", download_all_tasks=True)
            data = b"".join(chunks)
        tasks = json.loads(data)
        if not isinstance(tasks, list):
            raise ReviewError(f"Label Studio at {self.url}: export is not a list of tasks")
        return tasks

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> list[int]:
        with api_errors(self.url, f"importing {len(tasks)} tasks"):
            response = self.sdk.projects.import_tasks(id=project_id, request=tasks,
                                                      return_task_ids=True)
        return list(getattr(response, "task_ids", None) or [])

    def update_task(self, task_id: int, data: dict[str, Any]) -> None:
        with api_errors(self.url, f"updating task {task_id}"):
            self.sdk.tasks.update(id=str(task_id), data=data)

    def replace_predictions(self, task_id: int, old_ids: list[int], result: list[dict[str, Any]],
                            model_version: str) -> None:
        with api_errors(self.url, f"replacing the prediction of task {task_id}"):
            for pid in old_ids:
                self.sdk.predictions.delete(id=pid)
            self.sdk.predictions.create(task=task_id, result=result, model_version=model_version)

    # ------------------------------------------------------------------ images
    def upload_images(self, project_id: int, files: dict[str, Path]) -> dict[str, str]:
        """Upload files (name -> path) without creating tasks; returns name -> served URL.

        Batches of ``UPLOAD_BATCH`` files go up on ``UPLOAD_THREADS`` connections at once.
        """
        names = sorted(files)
        batches = [names[s:s + UPLOAD_BATCH] for s in range(0, len(names), UPLOAD_BATCH)]
        urls: dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
            for found in pool.map(lambda b: self._upload_batch(project_id, b, files), batches):
                urls.update(found)
        missing = set(names) - set(urls)
        if missing:
            raise ReviewError(f"Label Studio at {self.url}: uploads not listed: "
                              f"{sorted(missing)[:3]}")
        return urls

    def _upload_batch(self, project_id: int, batch: list[str],
                      files: dict[str, Path]) -> dict[str, str]:
        with contextlib.ExitStack() as stack:
            parts = [(f"file{k}", (name, stack.enter_context(files[name].open("rb"))))
                     for k, name in enumerate(batch)]
            out = self._request("POST", f"/api/projects/{project_id}/import",
                                f"uploading {len(batch)} images",
                                params={"commit_to_project": "false"}, files=parts)
        ids = out.get("file_upload_ids") or []
        uploads = self._request("GET", f"/api/projects/{project_id}/file-uploads",
                                "listing uploaded images", params={"ids": json.dumps(ids)})
        urls = {}
        for upload in uploads:
            stored = str(upload["file"])  # "upload/<project>/<random>-<name>"
            name = next((n for n in batch if stored.endswith("-" + n)), None)
            if name is not None:
                urls[name] = "/data/" + stored
        return urls

    def download(self, url: str) -> bytes:
        """Bytes of a file the server serves (e.g. an uploaded image, ``/data/upload/...``)."""
        headers = self.sdk._client_wrapper.get_headers()
        with api_errors(self.url, f"downloading {url}"):
            response = self._http.get(url, headers=headers)
        if response.status_code >= 400:
            raise ReviewError(f"Label Studio at {self.url}: downloading {url}: HTTP "
                              f"{response.status_code}")
        return response.content

    # ------------------------------------------------------------------ users
    def user_names(self) -> dict[int, str]:
        """User id -> email (falls back to ``user-<id>`` where listing users is not allowed)."""
        try:
            with api_errors(self.url, "listing users"):
                return {int(u.id): str(u.email or u.username or f"user-{u.id}")
                        for u in self.sdk.users.list()}
        except ReviewError as exc:
            log.warning("%s; reviewers are shown by id", exc)
            return {}
