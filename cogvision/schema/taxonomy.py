"""Function taxonomies as data.

Each taxonomy lives in ``taxonomies/<name>.yaml``: canonical function names, short keys,
definitions, aliases (e.g. the paper tables' "Semantic Understanding") and an explicit table of
rejected stray labels. ``Taxonomy.canonical`` maps any accepted spelling to the canonical name and
rejects everything else with the list of valid names, so no unknown label is ever kept silently.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from cogvision.errors import UnknownLabelError


def _fold(label: str) -> str:
    """Case-, space-, hyphen- and ampersand-insensitive form used to match aliases."""
    text = label.strip().lower().replace("&", "and")
    return "".join(ch for ch in text if ch.isalnum())


class Function(BaseModel):
    """One cognitive function of a taxonomy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Canonical name, as written in the paper.")
    key: str = Field(description="Short identifier used in configs, file names and plots.")
    definition: str = Field(description="What a sub-question of this function asks for.")
    aliases: tuple[str, ...] = Field(default=(), description="Other spellings mapped to this name.")


class Taxonomy(BaseModel):
    """A named list of functions with alias and rejection tables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str
    functions: tuple[Function, ...]
    rejected: dict[str, str] = Field(
        default_factory=dict, description="Stray labels known to occur, with why they are rejected."
    )

    _lookup: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _build_lookup(self) -> Taxonomy:
        for fn in self.functions:
            for spelling in (fn.name, fn.key, *fn.aliases):
                folded = _fold(spelling)
                if self._lookup.get(folded, fn.name) != fn.name:
                    raise ValueError(
                        f"'{spelling}' names both {self._lookup[folded]} and {fn.name}"
                    )
                self._lookup[folded] = fn.name
        return self

    @property
    def names(self) -> list[str]:
        return [fn.name for fn in self.functions]

    def find(self, label: str) -> str | None:
        """Canonical name for ``label`` (name, key or alias, loosely spelled), or None."""
        return self._lookup.get(_fold(label))

    def canonical(self, label: str) -> str:
        """Canonical name for ``label``; raises UnknownLabelError listing the valid names."""
        found = self.find(label)
        if found is not None:
            return found
        reason = self.rejected.get(label.strip())
        why = f"rejected: {reason}" if reason else "unknown function label"
        raise UnknownLabelError(
            f"{why} for taxonomy '{self.name}'; valid: {', '.join(self.names)}",
            field="function",
            value=label,
        )

    def function(self, label: str) -> Function:
        name = self.canonical(label)
        return next(fn for fn in self.functions if fn.name == name)

    def key_of(self, label: str) -> str:
        return self.function(label).key


TAXONOMY_NAMES = ("cogvision", "cogvsr", "cogqa")


@cache
def get_taxonomy(name: str) -> Taxonomy:
    """Load a built-in taxonomy by name."""
    if name not in TAXONOMY_NAMES:
        raise UnknownLabelError(
            f"unknown taxonomy; valid: {', '.join(TAXONOMY_NAMES)}", field="taxonomy", value=name
        )
    text = resources.files("cogvision.schema").joinpath("taxonomies", f"{name}.yaml").read_text()
    return Taxonomy.model_validate(yaml.safe_load(text))
