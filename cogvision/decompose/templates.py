"""Versioned prompt templates, stored as files (``prompts/<version>/*.txt``).

A prompt set is a folder holding the seven templates below, written with ``string.Template``
placeholders (``${question}``). Users may pass their own folder. The recorded prompt version is the
folder name plus a hash of the templates' text: any edit yields a new version (and cache keys).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from cogvision.decompose.responses import strict_json_schema
from cogvision.errors import UsageError
from cogvision.schema import Taxonomy, content_hash

TEMPLATE_NAMES = ("cot_system", "cot_user", "plan_system", "plan_user", "verify_system",
                  "verify_user", "repair")
DEFAULT_PROMPTS = "v1"


@dataclass(frozen=True)
class PromptSet:
    """The templates of one prompt version."""

    name: str
    templates: dict[str, string.Template]

    @property
    def version(self) -> str:
        """``<folder name>+<8 hex of the templates' text>``."""
        text = {name: t.template for name, t in sorted(self.templates.items())}
        return f"{self.name}+{content_hash(text)[:8]}"

    def render(self, name: str, **values: str) -> str:
        """Fill template ``name``; a placeholder without a value is a usage error."""
        try:
            return self.templates[name].substitute(values).strip()
        except KeyError as exc:
            raise UsageError(f"prompt template {self.name}/{name}.txt uses an unknown placeholder "
                             f"{exc}; known: {', '.join(sorted(values))}") from None
        except ValueError as exc:
            raise UsageError(f"prompt template {self.name}/{name}.txt: {exc}") from None


def load_prompts(folder: str | Path | None = None) -> PromptSet:
    """The built-in prompt set (``folder=None``) or a user folder with the same seven files."""
    if folder is None:
        root = resources.files("cogvision.decompose").joinpath("prompts", DEFAULT_PROMPTS)
        texts = {n: root.joinpath(f"{n}.txt").read_text(encoding="utf-8") for n in TEMPLATE_NAMES}
        return PromptSet(DEFAULT_PROMPTS, {n: string.Template(t) for n, t in texts.items()})
    path = Path(folder)
    missing = [f"{n}.txt" for n in TEMPLATE_NAMES if not (path / f"{n}.txt").is_file()]
    if missing:
        raise UsageError(f"{path}: prompt folder lacks {', '.join(missing)}")
    templates = {n: string.Template((path / f"{n}.txt").read_text(encoding="utf-8"))
                 for n in TEMPLATE_NAMES}
    return PromptSet(path.name, templates)


def schema_text(model: type[BaseModel]) -> str:
    """Compact JSON Schema text for the prompt (used by every structured-output mode)."""
    return json.dumps(strict_json_schema(model), separators=(",", ":"))


def functions_block(taxonomy: Taxonomy) -> str:
    """One ``- Name: definition`` line per function, rendered from the taxonomy data."""
    return "\n".join(f"- {fn.name}: {fn.definition}" for fn in taxonomy.functions)


def choices_block(choices: list[str] | None) -> str:
    """``Options: (A) ..`` lines, or nothing for open questions."""
    if not choices:
        return ""
    lines = [f"({chr(ord('A') + i)}) {choice}" for i, choice in enumerate(choices)]
    return "Options:\n" + "\n".join(lines) + "\n"
