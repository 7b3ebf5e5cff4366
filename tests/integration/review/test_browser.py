"""Real browser: headless Chromium, logged in as a reviewer, opens a pushed task for labeling."""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websocket
from PIL import Image

from cogvision.review.client import ReviewClient
from cogvision.review.push import push
from tests.integration.review.conftest import REVIEWER_PASSWORD, sign_up, task_ids
from tests.unit.review.builders import write_decompositions

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--remote-debugging-port=0", "--window-size=1400,2400", "about:blank"]


class DevTools:
    """A minimal Chrome DevTools Protocol session over one page's websocket."""

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[DevTools]:
    """Headless Chromium with a fresh profile; stopped by its PID."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is not installed: run `make install-browser`"
    process = subprocess.Popen([binary, f"--user-data-dir={profile}", *CHROMIUM_FLAGS],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.is_file() or not port_file.read_text().strip():
            assert process.poll() is None and time.monotonic() < deadline, "chromium did not start"
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        targets = httpx.get(f"http://127.0.0.1:{port}/json").json()
        pages = [t for t in targets if t["type"] == "page"]
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        try:
            yield tools
        finally:
            tools.ws.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(tools: DevTools, expression: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = tools.evaluate(expression)
        if value:
            return value
        time.sleep(0.5)
    return tools.evaluate(expression)


def test_labeling_ui_shows_image_and_subquestions(ls_server, admin: ReviewClient,
                                                  tmp_path: Path) -> None:
    path, records = write_decompositions(tmp_path / "in", 1, seed=5, n_sub=3)
    project = "browser"
    push(path, project, admin)
    task_id = task_ids(admin, project)[records[0].id]
    project_id = int(admin.require_project(project).id)
    _, cookies = sign_up(ls_server.url, "dora@example.com", REVIEWER_PASSWORD)
    (tmp_path / "profile").mkdir()
    with chromium(tmp_path / "profile") as tools:
        for name in ("sessionid", "csrftoken"):
            tools.call("Network.setCookie", name=name, value=cookies.get(name), url=ls_server.url)
        page = f"{ls_server.url}/projects/{project_id}/data?task={task_id}"
        tools.call("Page.navigate", url=page)
        last = records[0].subquestions[-1].question
        text = _wait_for(tools, f"document.body.innerText.includes({json.dumps(last)}) && "
                                "document.body.innerText")
        image_ok = _wait_for(tools, "[...document.images].some(i => i.src.includes('/data/upload/')"
                                    " && i.complete && i.naturalWidth > 0)")
        time.sleep(1.0)  # let the layout settle before the screenshot
        shot = tools.call("Page.captureScreenshot", format="png")
    png = tmp_path / "labeling.png"
    png.write_bytes(base64.b64decode(shot["data"]))
    assert text, "the labeling UI never showed the sub-questions"
    for sub in records[0].subquestions:
        assert sub.question in text
    assert "Is this sub-question valid?" in text and records[0].subquestions[0].function in text
    assert image_ok, "the task image did not load in the labeling UI"
    with Image.open(io.BytesIO(png.read_bytes())) as img:
        assert img.format == "PNG" and img.width >= 800
        assert len(img.convert("L").getcolors(maxcolors=1 << 20) or []) > 50  # not a blank page


pytestmark = pytest.mark.labelstudio
