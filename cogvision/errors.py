"""Error types. Every error a user can cause names the file, line and value involved.

The CLI maps ``CogvisionError.exit_code`` to the process exit status (1 data/validation, 2 usage).
"""

from __future__ import annotations

from pathlib import Path


class CogvisionError(Exception):
    """Base of every error cogvision raises on purpose."""

    exit_code = 1


class UsageError(CogvisionError):
    """The command line or config asks for something that cannot be done."""

    exit_code = 2


class SchemaError(CogvisionError):
    """A record does not validate. Printed as ``file:line: field: problem``."""

    def __init__(
        self,
        problem: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        self.problem = problem
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.value = value
        super().__init__(self.render())

    def render(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        parts = [where]
        if self.field:
            parts.append(self.field)
        problem = self.problem
        if self.value is not None:
            shown = repr(self.value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            problem += f" (value: {shown})"
        parts.append(problem)
        return ": ".join(parts)


class UnknownLabelError(SchemaError):
    """A function label that is neither a canonical name nor an alias of the taxonomy."""


class ArtifactError(CogvisionError):
    """An artifact on disk is missing, empty, corrupt or inconsistent."""


class PrerequisiteError(CogvisionError):
    """An optional dependency is missing; the message carries the exact install line."""

    def __init__(self, package: str, extra: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(f"this needs the '{package}' package: pip install 'cogvision[{extra}]'")


class AdapterError(CogvisionError):
    """A model cannot be handled (unsupported architecture, missing module)."""


class LLMError(CogvisionError):
    """An LLM endpoint failed in a way retries cannot fix."""


class ReviewError(CogvisionError):
    """Label Studio is unreachable, refuses the token, or returned invalid annotations."""


def require(module: str, extra: str):  # noqa: ANN201 - returns the imported module
    """Import an optional dependency or raise PrerequisiteError with the install line."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise PrerequisiteError(module.split(".")[0], extra) from exc
