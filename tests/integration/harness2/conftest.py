"""Fixtures for harness II integration tests: a real OpenAI-compatible HTTP server on loopback."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class JudgeServer:
    """A /v1/chat/completions endpoint grading like a strict judge: 'yes' iff the reference answer
    appears in the response (case-insensitive), no verdict when the response contains GARBLE."""

    base_url: str
    requests: list[dict] = field(default_factory=list)


def _verdict(user: str) -> str:
    target = re.search(r"Reference answer: (.*)", user).group(1).strip().lower()
    response = re.search(r"Model response: (.*)", user).group(1).strip().lower()
    if "garble" in response:
        return "hmm, hard to say"
    return "yes" if target in response else "no"


def _handler(server: JudgeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            server.requests.append(
                {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
            )
            content = _verdict(body["messages"][-1]["content"])
            reply = {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content},
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            return

    return Handler


@pytest.fixture
def judge_server() -> Iterator[JudgeServer]:
    state = JudgeServer(base_url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory):
    """A small synthetic CogVision benchmark (real PNG scenes, exact decompositions)."""
    from cogvision.sources.synth import build_benchmark

    out = tmp_path_factory.mktemp("synth")
    build_benchmark("cogvision", 16, 0, out)
    return out
