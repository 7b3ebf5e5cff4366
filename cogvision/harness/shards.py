"""Sharding ``cogvision eval`` over processes: ``--shard i/n`` (or ``auto`` under ``accelerate
launch`` / ``torchrun``) runs the i-th n-th of the test batches into ``RUN/shard-i-of-n/``; rank 0
waits for every shard's manifest and merges."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from cogvision.errors import ArtifactError, UsageError
from cogvision.harness.sweep import Work, batches


def parse_shard(shard: str | None) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; None -> ``(0, 1)``."""
    if shard is None:
        return 0, 1
    try:
        i, n = (int(part) for part in shard.split("/"))
    except ValueError:
        raise UsageError(f"--shard {shard!r} must look like i/n, e.g. 0/4") from None
    if not 0 <= i < n:
        raise UsageError(f"--shard {shard!r}: need 0 <= i < n")
    return i, n


def launcher_shard(shard: str | None) -> str | None:
    """``auto``: this process's ``RANK/WORLD_SIZE`` under ``accelerate launch`` / ``torchrun``."""
    if shard != "auto":
        return shard
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return f"{int(os.environ.get('RANK', '0'))}/{world}" if world > 1 else None


def wait_for_shards(out: Path, n: int, timeout_s: float, poll_s: float = 5.0) -> None:
    """Rank 0: wait until every shard of ``out`` has written its manifest (then merge)."""
    deadline = time.monotonic() + timeout_s
    manifests = [out / f"shard-{i}-of-{n}" / "manifest.json" for i in range(n)]
    while not all(m.is_file() for m in manifests):
        if time.monotonic() > deadline:
            missing = [str(m.parent) for m in manifests if not m.is_file()]
            raise ArtifactError(f"shards not finished after {timeout_s:.0f} s: {missing}")
        time.sleep(poll_s)


def shard_dir(out: str | Path, shard: str | None) -> Path:
    i, n = parse_shard(shard)
    return Path(out) if n == 1 else Path(out) / f"shard-{i}-of-{n}"


def shard_batches(
    work: Sequence[Work], functions: Sequence[str], batch_size: int, shard: str | None
) -> list[list[tuple[int, Work]]]:
    """This shard's batches of (position, test sub-question) of the probed functions.

    Batches are formed over the whole test set and dealt round-robin to shards, so every shard
    decodes exactly the batches an unsharded run would (same padding, same answers).
    """
    i, n = parse_shard(shard)
    keep = [w for w in work if w.sub.function in set(functions)]
    position = {id(w): k for k, w in enumerate(keep)}
    every = list(batches(keep, batch_size))
    return [[(position[id(w)], w) for w in b] for j, b in enumerate(every) if j % n == i]
