"""Image files: fingerprints (``ImageRef``), verification, and paths that must stay in a root."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from cogvision.errors import SchemaError
from cogvision.schema import ImageRef, sha256_bytes


def safe_join(
    root: str | Path, relative: str, *, source: str | Path | None = None, line: int | None = None
) -> Path:
    """``root / relative``, refusing absolute paths and paths that escape ``root``."""
    root_resolved = Path(root).resolve()
    candidate = (root_resolved / relative).resolve()
    if Path(relative).is_absolute() or not candidate.is_relative_to(root_resolved):
        raise SchemaError(
            f"image path escapes the source root {root_resolved}",
            path=source,
            line=line,
            field="image",
            value=relative,
        )
    return candidate


def image_ref_from_bytes(
    data: bytes, path: str, *, source: str | Path | None = None, line: int | None = None
) -> ImageRef:
    """Decode ``data`` fully (so corrupt files fail here, not downstream) and fingerprint it."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            width, height, fmt = img.width, img.height, img.format or "UNKNOWN"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SchemaError(
            f"corrupt or unreadable image: {exc}", path=source, line=line, field="image", value=path
        ) from None
    return ImageRef(
        path=path,
        sha256=sha256_bytes(data),
        width=width,
        height=height,
        bytes=len(data),
        format=fmt,
    )


def image_ref_from_file(
    file: str | Path, stored_path: str, *, source: str | Path | None = None, line: int | None = None
) -> ImageRef:
    file = Path(file)
    if not file.is_file():
        raise SchemaError(
            "image file not found", path=source, line=line, field="image", value=str(file)
        )
    return image_ref_from_bytes(file.read_bytes(), stored_path, source=source, line=line)


def resolve_image(ref: ImageRef, base: str | Path) -> Path:
    """Where the image of a record stored in folder ``base`` lies on disk."""
    path = Path(ref.path)
    return path if path.is_absolute() else Path(base) / path


def verify_image(
    ref: ImageRef, base: str | Path, *, source: str | Path | None = None, line: int | None = None
) -> Path:
    """Check that the referenced file exists and has the recorded sha256; return its path."""
    path = resolve_image(ref, base)
    if not path.is_file():
        raise SchemaError(
            "image file not found", path=source, line=line, field="image.path", value=str(path)
        )
    digest = sha256_bytes(path.read_bytes())
    if digest != ref.sha256:
        raise SchemaError(
            f"image bytes changed (sha256 {digest[:12]}... != recorded {ref.sha256[:12]}...)",
            path=source,
            line=line,
            field="image.sha256",
            value=str(path),
        )
    return path


def load_image(ref: ImageRef, base: str | Path) -> Image.Image:
    """Open a record's image as RGB."""
    with Image.open(resolve_image(ref, base)) as img:
        return img.convert("RGB")
