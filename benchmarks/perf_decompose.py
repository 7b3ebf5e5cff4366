"""Throughput of `cogvision decompose` against a local OpenAI-compatible server with fixed latency.

Prints items/s at several concurrencies next to the ideal (concurrency / latency, two requests per
item: chain of thought + sub-questions) and a warm-cache re-run (zero requests). The server (the
scripted ground-truth model) runs in its own process, so it does not compete with the client.

    .venv/bin/python benchmarks/perf_decompose.py [--latency 0.1] [--warm-items 2000]

Goals (issue 3): >= 0.8 of ideal at concurrency 32; warm-cache re-run >= 2,000 items/s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cogvision.artifacts import write_jsonl_atomic
from cogvision.decompose import DecomposeConfig, decompose_file
from cogvision.schema import Decomposition, Provenance, SourceQuestion, SourceRef, SubQuestion

FUNCTIONS = ["High-level Visual Reception", "Low-level Visual Reception", "Math Reasoning"]


def make_items(n: int) -> tuple[list[SourceQuestion], list[Decomposition]]:
    """``n`` text-only questions with 3-step ground-truth decompositions."""
    questions, truth = [], []
    for i in range(n):
        q = SourceQuestion(question=f"Item {i}: how many marks are on bar {i}?", answer=str(i % 7),
                           source=SourceRef(dataset="bench", split="test", index=str(i)),
                           license="CC0-1.0")
        subs = [SubQuestion(index=k, question=f"Item {i} step {k}?",
                            answer=str(i % 7) if k == 2 else f"part {k}", function=FUNCTIONS[k],
                            depends_on=[k - 1] if k else []) for k in range(3)]
        questions.append(q)
        truth.append(Decomposition(question=q, taxonomy="cogvision", subquestions=subs,
                                   provenance=Provenance(generator="bench")))
    return questions, truth


def start_server(truth_path: Path, latency: float, work: Path) -> tuple[subprocess.Popen, str]:
    port_file = work / "port"
    proc = subprocess.Popen([sys.executable, "-m", "cogvision.testing.openai_server",
                             "--answers-from", str(truth_path), "--latency", str(latency),
                             "--port-file", str(port_file)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit("the benchmark server did not start")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port_file.read_text().strip()}/v1"


def run(questions_path: Path, out: Path, url: str, concurrency: int, cache_dir: Path | None,
        expect_requests: bool = True) -> tuple[float, int, dict]:
    config = DecomposeConfig(model="bench", base_url=url, concurrency=concurrency,
                             send_images=False, cache=cache_dir is not None, cache_dir=cache_dir,
                             backoff_base_s=0.05)
    cpu = time.process_time()
    result = decompose_file(questions_path, out, config)
    usage = result.stats["usage"]["bench"]
    usage["cpu_s"] = time.process_time() - cpu  # this (client) process only
    assert result.counts["failures"] == 0, result.counts
    assert (usage["requests"] > 0) == expect_requests, usage
    return result.seconds, result.counts["decompositions"], usage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1, help="server seconds per request")
    parser.add_argument("--seconds", type=float, default=3.0, help="target seconds per cold run")
    parser.add_argument("--warm-items", type=int, default=2000,
                        help="items of the concurrency-32 run and its warm re-run")
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "benchmark-no-key")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        questions, truth = make_items(max(args.warm_items, 200))
        write_jsonl_atomic(work / "truth.jsonl", truth)
        server, url = start_server(work / "truth.jsonl", args.latency, work)
        try:
            # warm-up: imports, the SSL context and pydantic schemas are built once per process
            write_jsonl_atomic(work / "warmup.jsonl", questions[:2])
            run(work / "warmup.jsonl", work / "warmup", url, 1, None)
            rows = []
            for concurrency in (1, 8):
                ideal = concurrency / (2 * args.latency)
                n = max(10, int(ideal * args.seconds))
                path = work / f"q{concurrency}.jsonl"
                write_jsonl_atomic(path, questions[:n])
                seconds, done, usage = run(path, work / f"cold{concurrency}", url, concurrency,
                                           work / f"cache{concurrency}")
                rows.append((f"cold, concurrency {concurrency}", done, seconds, ideal, usage))
            # concurrency 32 on the warm-run items: the same run fills the cache
            path = work / "warm.jsonl"
            write_jsonl_atomic(path, questions[: args.warm_items])
            seconds, done, usage = run(path, work / "cold32", url, 32, work / "cache")
            rows.append(("cold, concurrency 32", done, seconds, 32 / (2 * args.latency), usage))
            seconds, done, usage = run(path, work / "warm", url, 32, work / "cache",
                                       expect_requests=False)
            rows.append(("warm-cache re-run (0 requests)", done, seconds, None, usage))
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"\ndecompose throughput, server latency {args.latency * 1000:.0f} ms/request, "
          f"2 requests/item (other work may share this machine)")
    print(f"{'run':32} {'items':>6} {'seconds':>8} {'items/s':>9} {'ideal':>8} {'ratio':>6} "
          f"{'requests':>8} {'client CPU ms/item':>19}")
    for name, done, seconds, ideal, usage in rows:
        rate = done / seconds
        ideal_text = f"{ideal:8.1f}" if ideal else f"{'-':>8}"
        ratio = f"{rate / ideal:6.2f}" if ideal else f"{'-':>6}"
        print(f"{name:32} {done:6d} {seconds:8.2f} {rate:9.1f} {ideal_text} {ratio} "
              f"{usage['requests']:8d} {1000 * usage['cpu_s'] / done:19.2f}")

if __name__ == "__main__":
    main()
