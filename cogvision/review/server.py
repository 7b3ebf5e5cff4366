"""Start and stop a local Label Studio server (its own virtual environment, loopback only).

The server binds to 127.0.0.1 (``--internal-host``; ``--host`` is not the bind address), keeps its
data under ``<work_dir>/data`` and is ready when ``GET /health/`` answers 200. Its PID and URL are
recorded in ``<work_dir>/labelstudio.json``; ``stop_server`` ends exactly that process group.
The admin user and token come from the environment and are passed to the server's environment only.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from cogvision.artifacts import write_text_atomic
from cogvision.errors import ReviewError, UsageError

log = logging.getLogger(__name__)

BINARY_ENV = "COGVISION_LABEL_STUDIO"
STATE_FILE = "labelstudio.json"
LOG_FILE = "labelstudio.log"


def label_studio_binary() -> Path:
    """``$COGVISION_LABEL_STUDIO`` or ``.venv-labelstudio/bin/label-studio`` in the repository."""
    configured = os.environ.get(BINARY_ENV)
    path = Path(configured) if configured else (
        Path(__file__).resolve().parents[2] / ".venv-labelstudio" / "bin" / "label-studio")
    if not path.is_file():
        raise UsageError(f"Label Studio not found at {path}: run `make install-labelstudio` "
                         f"or set {BINARY_ENV}")
    return path


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerInfo:
    """A running server started by us."""

    pid: int
    url: str
    port: int
    data_dir: str
    log: str


def _server_env(data_dir: Path, username: str, password: str, token: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_USERNAME": username,
        "LABEL_STUDIO_PASSWORD": password,
        "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
        "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(data_dir),
    })
    if token:
        env["LABEL_STUDIO_USER_TOKEN"] = token
    return env


def health(url: str, timeout: float = 2.0) -> bool:
    """Whether ``GET <url>/health/`` answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/health/", timeout=timeout) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def read_state(work_dir: str | Path) -> ServerInfo | None:
    path = Path(work_dir) / STATE_FILE
    if not path.is_file():
        return None
    return ServerInfo(**json.loads(path.read_text(encoding="utf-8")))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_server(work_dir: str | Path, *, username: str, password: str, token: str | None = None,
                 port: int | None = None, timeout: float = 180.0) -> ServerInfo:
    """Start Label Studio on 127.0.0.1 and wait until it is healthy; record its PID."""
    work_dir = Path(work_dir).resolve()
    running = read_state(work_dir)
    if running is not None and _alive(running.pid) and health(running.url):
        raise UsageError(f"Label Studio already runs at {running.url} (pid {running.pid}); "
                         "`cogvision review stop` first")
    data_dir = work_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = work_dir / LOG_FILE
    command = [str(label_studio_binary()), "start", "--no-browser", "--internal-host", "127.0.0.1",
               "--port", str(port), "--enable-legacy-api-token"]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(command, cwd=work_dir, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   env=_server_env(data_dir, username, password, token))
    info = ServerInfo(pid=process.pid, url=url, port=port, data_dir=str(data_dir),
                      log=str(log_path))
    write_text_atomic(work_dir / STATE_FILE, json.dumps(asdict(info), indent=2) + "\n")
    _wait_healthy(process, info, timeout)
    log.info("Label Studio ready at %s (pid %d)", url, process.pid)
    return info


def _wait_healthy(process: subprocess.Popen, info: ServerInfo, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = Path(info.log).read_text(errors="replace")[-800:]
            raise ReviewError(f"Label Studio exited with code {process.returncode}; "
                              f"log {info.log}:\n"
                              f"{tail}")
        if health(info.url):
            return
        time.sleep(0.5)
    _terminate(info.pid)
    raise ReviewError(f"Label Studio did not become healthy at {info.url} within {timeout:.0f} s; "
                      f"see {info.log}")


def _terminate(pid: int, grace: float = 15.0) -> None:
    """SIGTERM the process group led by ``pid``, SIGKILL after ``grace`` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            reaped, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: poll for its disappearance instead
            reaped = 0 if _alive(pid) else pid
        if reaped == pid:
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _is_label_studio(pid: int) -> bool:
    """Guard against a recycled PID: only a process running label-studio is stopped."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (not Linux): trust the recorded PID
    return b"label-studio" in cmdline or b"label_studio" in cmdline


def stop_server(work_dir: str | Path) -> ServerInfo | None:
    """Stop the server recorded in ``work_dir`` (None when none was recorded)."""
    work_dir = Path(work_dir)
    info = read_state(work_dir)
    if info is None:
        return None
    if _alive(info.pid) and _is_label_studio(info.pid):
        _terminate(info.pid)
    (work_dir / STATE_FILE).unlink(missing_ok=True)
    return info
