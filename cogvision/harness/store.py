"""Activation arrays on disk: fp16 ``.npy`` files written row chunk by row chunk.

The header is written first with a fixed padded length and rewritten with the final row count when
the run finishes, so memory stays flat in the number of items (nothing is held or memory-mapped) and
an interrupted run resumes by truncating the file to the rows its index records. Files are read back
with ``numpy.load(path, mmap_mode="r")`` (never pickle).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cogvision.errors import ArtifactError

_MAGIC = b"\x93NUMPY\x01\x00"
_HEADER_BYTES = 256  # magic + length + dict, padded with spaces, ending in "\n"


def _header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    meta = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                 "shape": tuple(shape)})
    room = _HEADER_BYTES - len(_MAGIC) - 2
    if len(meta) + 1 > room:
        raise ValueError(f"shape {shape} does not fit the fixed .npy header")
    body = meta.ljust(room - 1) + "\n"
    return _MAGIC + len(body).to_bytes(2, "little") + body.encode("latin1")


def read_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    with path.open("rb") as fh:
        head = fh.read(_HEADER_BYTES)
    if not head.startswith(_MAGIC) or len(head) < _HEADER_BYTES:
        raise ArtifactError(f"{path}: not an activation file written by cogvision")
    meta = ast.literal_eval(head[10:].decode("latin1").strip())
    return tuple(meta["shape"]), np.dtype(meta["descr"])


class NpyAppender:
    """Append rows of shape ``row_shape`` to ``path``; ``resume_rows`` keeps that many old rows.

    Use as a context manager; :meth:`close` writes the final header.
    """

    def __init__(self, path: str | Path, row_shape: tuple[int, ...], *, dtype: str = "float16",
                 resume_rows: int = 0) -> None:
        self.path = Path(path)
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.row_bytes = int(np.prod(self.row_shape)) * self.dtype.itemsize
        self.rows = resume_rows
        self._fh: BinaryIO | None = None

    def __enter__(self) -> NpyAppender:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.rows and self.path.exists():
            shape, dtype = read_header(self.path)
            if shape[1:] != self.row_shape or dtype != self.dtype:
                raise ArtifactError(f"{self.path}: holds rows {shape[1:]} {dtype}, cannot resume "
                                    f"with rows {self.row_shape} {self.dtype}")
            size = _HEADER_BYTES + self.rows * self.row_bytes
            if self.path.stat().st_size < size:
                raise ArtifactError(f"{self.path}: has fewer rows than its index ({self.rows})")
            self._fh = self.path.open("r+b")
            self._fh.truncate(size)
            self._fh.seek(size)
        else:
            self.rows = 0
            self._fh = self.path.open("wb")
            self._fh.write(_header((0, *self.row_shape), self.dtype))
        return self

    def write(self, rows: np.ndarray) -> None:
        """Append ``rows`` [n, *row_shape] (converted to the file's dtype) and flush."""
        assert self._fh is not None, "use NpyAppender as a context manager"
        if tuple(rows.shape[1:]) != self.row_shape:
            raise ValueError(f"rows of shape {rows.shape[1:]} != {self.row_shape}")
        self._fh.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.rows += rows.shape[0]

    def close(self) -> None:
        if self._fh is None:
            return
        self._fh.seek(0)
        self._fh.write(_header((self.rows, *self.row_shape), self.dtype))
        self._fh.close()
        self._fh = None

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_activations(path: str | Path) -> np.ndarray:
    """A read-only memory map of an activation file ``[items, layers, heads, d]``."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: activation file not found")
    return np.load(path, mmap_mode="r", allow_pickle=False)
