"""Config resolution: defaults < YAML file < ``-C key=value`` overrides.

Overrides use dotted keys (``probe.top_p=0.05``) and YAML-parsed values (``true``, ``0.1``,
``[1,2]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cogvision.errors import SchemaError, UsageError

M = TypeVar("M", bound=BaseModel)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise SchemaError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}", path=path, line=line
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SchemaError(
            "expected a mapping at the top level", path=path, value=type(data).__name__
        )
    return data


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``config`` with each ``a.b.c=value`` applied."""
    result = _deep_copy(config)
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"override {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else ""
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UsageError(f"override {item!r}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``top`` wins."""
    result = _deep_copy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = _deep_copy(value)
    return result


def resolve(
    model: type[M],
    *,
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    flags: dict[str, Any] | None = None,
) -> M:
    """Build a config model from defaults, an optional YAML file, flags and -C overrides."""
    data: dict[str, Any] = load_yaml(path) if path else {}
    data = merge(data, {k: v for k, v in (flags or {}).items() if v is not None})
    data = apply_overrides(data, overrides or [])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"{path or 'config'}: {field}: {first['msg']}") from None
