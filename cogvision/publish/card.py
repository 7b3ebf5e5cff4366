"""The dataset card (``README.md``): YAML metadata + text from DATASHEET.md + measured statistics.

The YAML front matter declares the configs and their data files (``main`` is the default), the
licences, task categories and ``dataset_info`` (features and split sizes, which ``load_dataset``
itself verifies). The body quotes the datasheet's sections (``### CogVision`` / ``### CogVSR``
subsections are kept only for the dataset they describe), the statistics section rendered by
``stats.render_stats`` and the column descriptions taken from the schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cogvision.errors import ArtifactError, require
from cogvision.publish.rows import CONFIGS, MAIN, column_descriptions, features
from cogvision.publish.stats import render_stats
from cogvision.schema import get_taxonomy

DATASHEET_SECTIONS = ("Motivation", "Composition", "Collection process",
                      "Preprocessing, cleaning and labelling", "Uses", "Distribution",
                      "Maintenance")
DEFAULT_DATASHEET = Path(__file__).resolve().parents[2] / "DATASHEET.md"
DATASET_VARIANTS = {"cogvision": "CogVision", "cogvsr": "CogVSR"}

# Licence names as records carry them (SPDX) -> Hugging Face licence ids; anything else is "other".
HUB_LICENSES = {"apache-2.0", "mit", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0",
                "cc0-1.0", "bsd-3-clause", "bsd-2-clause", "odc-by", "cc-by-nc-nd-4.0", "gpl-3.0"}


@dataclass
class CardInfo:
    """What the card needs besides the statistics."""

    name: str
    taxonomy: str
    seed: int
    test_fraction: float
    shards: dict[str, dict[str, list[str]]]  # config -> split -> relative shard paths
    split_bytes: dict[str, dict[str, int]]  # config -> split -> arrow bytes
    left_out: dict[str, int] = field(default_factory=dict)
    reviewed: bool = False
    load_path: str = "path/to/this/folder"


def pretty_name(name: str) -> str:
    return DATASET_VARIANTS.get(name.lower(), name)


def read_datasheet(path: str | Path, name: str) -> dict[str, str]:
    """The datasheet's ``##`` sections by title, filtered to the dataset ``name``."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: datasheet not found (pass --datasheet PATH)")
    sections: dict[str, str] = {}
    for block in re.split(r"^## ", path.read_text(encoding="utf-8"), flags=re.M)[1:]:
        title, _, body = block.partition("\n")
        sections[title.strip()] = _keep_variant(body, name).strip()
    missing = [s for s in DATASHEET_SECTIONS if s not in sections]
    if missing:
        raise ArtifactError(f"{path}: datasheet lacks the section(s) {', '.join(missing)}")
    return sections


def _keep_variant(body: str, name: str) -> str:
    """Drop ``### CogVision``/``### CogVSR`` subsections about the other dataset."""
    wanted = DATASET_VARIANTS.get(name.lower())
    parts = re.split(r"^(### .*)$", body, flags=re.M)
    kept = [parts[0]]
    for heading, text in zip(parts[1::2], parts[2::2], strict=True):
        title = heading[4:].strip()
        if wanted and title in DATASET_VARIANTS.values() and title != wanted:
            continue
        kept.append(heading + text)
    return "".join(kept)


def hub_licenses(licenses: list[str]) -> list[str]:
    result = {lic.lower() if lic.lower() in HUB_LICENSES else "other" for lic in licenses}
    return sorted(result)


def size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    return "100K<n<1M"


def card_metadata(info: CardInfo, stats: dict[str, Any]) -> dict[str, Any]:
    """The YAML front matter as a dict."""
    datasets = require("datasets", "publish")
    configs = []
    infos = []
    for config in CONFIGS:
        entry: dict[str, Any] = {"config_name": config}
        if config == MAIN:
            entry["default"] = True
        entry["data_files"] = [{"split": split, "path": f"data/{config}/{split}-*.parquet"}
                               for split in info.shards[config]]
        configs.append(entry)
        splits = datasets.SplitDict()
        for split in info.shards[config]:
            n = stats["questions" if config == MAIN else "subquestions"][split]
            splits.add(datasets.SplitInfo(name=split, num_examples=n,
                                          num_bytes=info.split_bytes[config][split]))
        info_yaml = datasets.DatasetInfo(features=features(config), splits=splits)._to_yaml_dict()
        infos.append({"config_name": config, **info_yaml})
    meta: dict[str, Any] = {
        "pretty_name": pretty_name(info.name),
        "license": hub_licenses(list(stats["licenses"])),
        "language": ["en"],
        "task_categories": ["visual-question-answering"],
        "size_categories": [size_category(stats["subquestions"]["total"])],
        "tags": ["chain-of-thought", "cognitive-functions", "interpretability", "attention-heads",
                 "cogvision"],
    }
    if "other" in meta["license"]:
        meta["license_details"] = "Per-item licences: see the `license` column and the card."
    meta["configs"] = configs
    meta["dataset_info"] = infos
    return meta


def _type_name(feature: Any) -> str:
    kind = type(feature).__name__
    if kind == "Value":
        return str(feature.dtype)
    if kind == "Image":
        return "image"
    if kind == "List":
        inner = feature.feature
        return "list of records" if isinstance(inner, dict) else f"list of {_type_name(inner)}"
    return kind


def fields_section(config: str) -> str:
    feats = features(config)
    lines = [f"### `{config}`", "", "| column | type | description |", "|---|---|---|"]
    for column, description in column_descriptions(config).items():
        feature = feats.get(column)
        if feature is None:  # a nested field such as subquestions[].function
            base, _, child = column.partition("[].")
            feature = feats[base].feature[child]
        lines.append(f"| `{column}` | {_type_name(feature)} | {description} |")
    return "\n".join(lines)


def taxonomy_section(taxonomy: str) -> str:
    tax = get_taxonomy(taxonomy)
    lines = [f"Taxonomy `{tax.name}`: {tax.description}", "", "| function | definition |",
             "|---|---|"]
    lines += [f"| {fn.name} | {fn.definition} |" for fn in tax.functions]
    return "\n".join(lines)


def _splits_text(info: CardInfo) -> str:
    return (
        f"Splits are deterministic: main questions are grouped by image (all questions about one "
        f"image share a split), ordered within each source by a hash of the group key and seed "
        f"{info.seed}, and the first {info.test_fraction:g} of each source's groups form `test` "
        f"(stratified by source; `cogvision.schema.assign_splits`). An image used by several "
        f"sources goes wholly to `test`, so no image appears in two splits.\n\n"
        f"**The `test` split must never be used for head selection.** Train probes, rank heads and "
        f"choose functional heads on `train` only; report interventions on `test`."
    )


def _left_out_text(left_out: dict[str, int], reviewed: bool) -> str:
    if not reviewed:
        return ("No input record carries a human review: every decomposition is published as it "
                "was generated (synthetic ground truth, an LLM, or an imported release), without "
                "review by this toolkit." + _failures_text(left_out))
    if not any(left_out.values()):
        return "Every input decomposition was review-accepted and published."
    parts = [f"{name.replace('_', ' ')}: {count}" for name, count in left_out.items() if count]
    return ("Input items left out of this release: " + ", ".join(parts) + ". Only review-accepted "
            "decompositions are published when any input carries a review; items that could not be "
            "converted or whose image could not be read are listed in `failures.jsonl`.")


def _failures_text(left_out: dict[str, int]) -> str:
    text = ""
    if left_out.get("not_converted"):
        text += (f" {left_out['not_converted']} items of the source release could not be converted "
                 "(`failures.jsonl`).")
    if left_out.get("unreadable_image"):
        text += (f" {left_out['unreadable_image']} items were left out because their image could "
                 "not be read (`failures.jsonl`).")
    return text


def render_card(info: CardInfo, stats: dict[str, Any], datasheet: dict[str, str]) -> str:
    """The full README.md text."""
    meta = yaml.safe_dump(card_metadata(info, stats), sort_keys=False, allow_unicode=True,
                          width=100)
    title = pretty_name(info.name)
    body = [
        f"# {title}", "",
        f"{title}: {stats['questions']['total']} complex image questions decomposed into "
        f"{stats['subquestions']['total']} sub-questions, each labelled with one cognitive "
        f"function (taxonomy `{info.taxonomy}`). Built and checked with the `cogvision` toolkit "
        f"(`cogvision publish`, `cogvision publish --check`).", "",
        "## Loading", "", "```python", "from datasets import load_dataset", "",
        f'main = load_dataset("{info.load_path}", "main")  # one row per main question',
        f'subquestions = load_dataset("{info.load_path}", "subquestions")  # one row per step',
        "```", "",
        "An lmms-eval task for each config is in `lmms_eval/` (no cogvision needed).", "",
        "## Splits", "", _splits_text(info), "",
        "## Statistics", "", render_stats(stats), "",
        "## Fields", "", fields_section("main"), "", fields_section("subquestions"), "",
        "## Functions", "", taxonomy_section(info.taxonomy), "",
        "## Left out", "", _left_out_text(info.left_out, info.reviewed), "",
        "## Datasheet", "",
    ]
    for section in DATASHEET_SECTIONS:
        text = re.sub(r"^### ", "#### ", datasheet[section], flags=re.M)
        body += [f"### {section}", "", text, ""]
    return f"---\n{meta}---\n\n" + "\n".join(body).rstrip() + "\n"


def read_card_metadata(path: str | Path) -> dict[str, Any]:
    """The YAML front matter of a README.md."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n", text, flags=re.S)
    if not match:
        raise ArtifactError(f"{path}: no YAML front matter (--- ... ---) at the top")
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise ArtifactError(f"{path}: invalid YAML front matter: {exc}") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: YAML front matter is not a mapping")
    return data
