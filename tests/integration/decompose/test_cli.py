"""The `cogvision decompose` command in a subprocess: exit codes, summary, and SIGKILL + resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cogvision.artifacts import write_jsonl_atomic
from cogvision.decompose import decompose_file
from cogvision.testing.openai_server import GroundTruthResponder, OpenAIServer

from .conftest import fast_config, make_dataset, read_outputs


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cogvision.cli.main", "decompose", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def test_cli_exit_codes_and_summary(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "in", 3)
    args = ["--in", str(data.questions_path), "--out", str(tmp_path / "out"), "--model", "m"]
    no_key = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "cogvision.cli.main", "decompose", *args],
                          capture_output=True, text=True, env=no_key)
    assert proc.returncode == 2 and "OPENAI_API_KEY is not set" in proc.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text(data.questions_path.read_text() + '{"question": "x"}\n')
    proc = subprocess.run([sys.executable, "-m", "cogvision.cli.main", "decompose", "--in",
                           str(bad), "--out", str(tmp_path / "o2"), "--model", "m"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "bad.jsonl:4: answer: Field required" in proc.stderr
    with OpenAIServer(GroundTruthResponder(data.truth)) as srv:
        run = cli(*args, "--base-url", srv.url, "--cache-dir", str(tmp_path / "c"),
                  "-C", "concurrency=2", "--no-images")
        stdout, stderr = run.communicate(timeout=60)
        assert run.returncode == 0, stderr
        assert "3 decompositions, 0 failures of 3 questions" in stdout
        assert all(isinstance(m["content"], str) for r in srv.requests for m in r["messages"])


def test_sigkilled_run_resumes_to_the_same_output(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "in", 24)
    out, reference = tmp_path / "out", tmp_path / "reference"
    with OpenAIServer(GroundTruthResponder(data.truth), latency_s=0.05) as srv:
        decompose_file(data.questions_path, reference,
                       fast_config(srv.url, tmp_path / "c", cache=False))
        args = ["--in", str(data.questions_path), "--out", str(out), "--model", "scripted-gt",
                "--base-url", srv.url, "--concurrency", "2", "--no-cache"]
        run = cli(*args)
        target = out / "decompositions.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and run.poll() is None:
            if target.exists() and len(target.read_bytes().splitlines()) >= 5:
                break
            time.sleep(0.02)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=10)
        assert run.returncode == -signal.SIGKILL
        finished = len(target.read_bytes().splitlines())
        assert 5 <= finished < 24
        with target.open("a") as fh:
            fh.write('{"schema_version": 1, "id": "d-torn')  # as if killed mid-line
        sent_before = srv.count
        resumed = cli(*args)
        stdout, stderr = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, stderr
        assert f"({finished} were already done)" in stdout
        assert srv.count - sent_before <= 2 * (24 - finished) + 4  # no item redone twice
    done, failed = read_outputs(out, data)  # read_jsonl rejects duplicate ids
    expected, _ = read_outputs(reference, data)
    assert failed == {} and len(done) == 24
    assert {k: v.content_hash for k, v in done.items()} == {
        k: v.content_hash for k, v in expected.items()}


def test_standalone_scripted_server_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "in", 2)
    truth = tmp_path / "truth.jsonl"
    write_jsonl_atomic(truth, data.truth)
    port_file = tmp_path / "port"
    server = subprocess.Popen([sys.executable, "-m", "cogvision.testing.openai_server",
                               "--answers-from", str(truth), "--port-file", str(port_file),
                               "--verifier-error-rate", "1.0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}/v1"
        result = decompose_file(data.questions_path, tmp_path / "out",
                                fast_config(url, tmp_path / "c", send_images=False,
                                            verify_model="v"))
        done, failed = read_outputs(tmp_path / "out", data)
        assert len(done) == 2 and failed == {}
        assert result.stats["verifier_disagreement_rate"] == 1.0  # --verifier-error-rate 1.0
        assert {s.verification.answer for d in done.values() for s in d.subquestions
                if s.verification} == {"cannot tell"}
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, _ = server.communicate(timeout=10)
    assert server.returncode == 0 and "scripted OpenAI-compatible server on http://127.0.0.1:" in (
        stdout)
