"""A real OpenAI-compatible HTTP server on 127.0.0.1 (ephemeral port), scripted per request.

It speaks ``POST /v1/chat/completions`` and ``GET /v1/models`` over HTTP/1.1 (stdlib ``http.server``
in a background thread). What it answers is decided per request, in this order:

1. a matching rule added with ``when(predicate, *replies)`` (each reply used once, in order);
2. the next reply queued with ``enqueue(*replies)``;
3. the ``responder`` callable (e.g. ``GroundTruthResponder``, a SCRIPTED model that answers from
   known decompositions: the demo and the tests use it in place of a real LLM).

Switches imitate real servers: ``reject_json_schema`` (HTTP 400 on ``json_schema``), and
``ignore_response_format`` (replies wrap the JSON in prose and a code fence). Every request body is
kept in ``requests``. ``python -m cogvision.testing.openai_server --help`` runs one standalone.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cogvision.testing.scripted import (
    GroundTruthResponder,
    Reply,
    is_reask,
    request_kind,
    request_text,
)

__all__ = [
    "GroundTruthResponder",
    "OpenAIServer",
    "Reply",
    "is_reask",
    "request_kind",
    "request_text",
]


Responder = Callable[[dict[str, Any]], Reply]
Predicate = Callable[[dict[str, Any]], bool]


class OpenAIServer:
    """The server; use as a context manager or call ``start()`` / ``stop()``."""

    def __init__(self, responder: Responder | None = None, *, latency_s: float = 0.0,
                 reject_json_schema: bool = False, ignore_response_format: bool = False,
                 port: int = 0) -> None:
        self.responder = responder
        self.latency_s = latency_s
        self.reject_json_schema = reject_json_schema
        self.ignore_response_format = ignore_response_format
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each request
        self._queue: deque[Reply] = deque()
        self._rules: list[tuple[Predicate, deque[Reply]]] = []
        self._lock = threading.Lock()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- scripting

    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._lock:
            self._queue.extend(replies)

    def when(self, predicate: Predicate, *replies: Reply) -> None:
        """Answer the next requests matching ``predicate`` with these replies, in order."""
        with self._lock:
            self._rules.append((predicate, deque(replies)))

    @property
    def count(self) -> int:
        """Requests received so far."""
        with self._lock:
            return len(self.requests)

    def _record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)
            self.arrivals.append(time.monotonic())

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        self._record(body)
        with self._lock:
            for predicate, replies in self._rules:
                if replies and predicate(body):
                    return replies.popleft()
            if self._queue:
                return self._queue.popleft()
        if self.responder is None:
            return Reply(status=500, error="no scripted reply left")
        return self.responder(body)

    # ---------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """Base URL for the openai client, e.g. ``http://127.0.0.1:43127/v1``."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> OpenAIServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


ThreadingHTTPServer.request_queue_size = 256


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # buffered; handle_one_request flushes once per response
    server_state: OpenAIServer

    def setup(self) -> None:
        super().setup()
        # Without this, Nagle's algorithm and the client's delayed ACK add ~40 ms per keep-alive
        # request: the benchmark would measure the kernel, not the client.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: the tests count requests through `requests`

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self._send(400, {"error": {"message": "body is not JSON"}})
            return
        state = self.server_state
        fmt = (body.get("response_format") or {}).get("type")
        if state.reject_json_schema and fmt == "json_schema":
            state._record(body)  # counted like any request, consumes no scripted reply
            self._send(400, _error("response_format json_schema is not supported by this server",
                                   "invalid_request_error"))
            return
        reply = state._next_reply(body)
        time.sleep(state.latency_s + reply.delay_s)
        if reply.status != 200:
            self._send(reply.status, _error(reply.error, "scripted"), reply.headers)
            return
        content = reply.content or ""
        if state.ignore_response_format:
            content = f"Sure! Here is the answer you asked for:\n```json\n{content}\n```\n"
        self._send(200, _completion(body, content), reply.headers)

    def _send(self, status: int, payload: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)  # buffered (wbufsize): headers and body leave in one send


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": None}}


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    prompt = sum(_tokens(json.dumps(m.get("content"))) for m in body.get("messages", []))
    completion = _tokens(content)
    return {
        "id": f"chatcmpl-scripted-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion},
    }


def main(argv: list[str] | None = None) -> None:
    """Serve a scripted ground-truth model until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers-from", type=Path, required=True,
                        help="decompositions.jsonl whose ground truth the scripted model answers")
    parser.add_argument("--port", type=int, default=0, help="0: an ephemeral port")
    parser.add_argument("--port-file", type=Path, help="write the chosen port here when ready")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--verifier-error-rate", type=float, default=0.0,
                        help="share of verify requests answered 'cannot tell' (deterministic)")
    args = parser.parse_args(argv)
    responder = GroundTruthResponder.from_file(args.answers_from,
                                               verifier_error_rate=args.verifier_error_rate)
    server = OpenAIServer(responder,
                          latency_s=args.latency, port=args.port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"scripted OpenAI-compatible server on {server.url}", flush=True)
    if args.port_file:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(server.url.split(":")[-1].split("/")[0])
        tmp.replace(args.port_file)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
