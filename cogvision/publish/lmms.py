"""lmms-eval task files written next to the data, so the benchmark runs without cogvision.

Two tasks: ``<name>_main`` (the main questions) and ``<name>_subquestions`` (each step with the main
question and the earlier steps with their answers as context). Scoring is normalised exact
match (and the option letter for multiple choice); the paper's LLM judge and integrated
BLEU/ROUGE/embedding accuracy live in the cogvision harness, not here. The YAML uses lmms-eval's
``!function`` tag, so it is written as text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from cogvision.artifacts import write_text_atomic

UTILS_PY = '''"""lmms-eval helpers for the {title} dataset.

Written by `cogvision publish`; needs only lmms-eval, not cogvision.
"""

import re
import string

ARTICLES = re.compile(r"\\b(a|an|the)\\b")


def doc_to_visual(doc):
    image = doc.get("image")
    return [] if image is None else [image.convert("RGB")]


def _options(choices):
    return "\\n".join(f"{{chr(65 + i)}}. {{c}}" for i, c in enumerate(choices))


def main_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {{}}
    text = doc["question"]
    if doc.get("choices"):
        text += "\\nOptions:\\n" + _options(doc["choices"])
    return kwargs.get("pre_prompt", "") + text + kwargs.get("post_prompt", "")


def subquestion_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {{}}
    lines = [f"Main question: {{doc['main_question']}}"]
    for step in doc["context"]:
        lines.append(f"Q: {{step['question']}}\\nA: {{step['answer']}}")
    lines.append(f"Q: {{doc['question']}}")
    return kwargs.get("pre_prompt", "") + "\\n".join(lines) + kwargs.get("post_prompt", "")


def normalize(text):
    text = str(text).lower().strip()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return " ".join(ARTICLES.sub(" ", text).split())


def is_correct(doc, prediction):
    prediction = prediction.strip()
    choices = doc.get("choices") or []
    if choices and len(prediction.rstrip(".):")) == 1:
        index = ord(prediction[0].upper()) - 65
        if 0 <= index < len(choices):
            return normalize(choices[index]) == normalize(doc["answer"])
    return normalize(prediction) == normalize(doc["answer"])


def process_results(doc, results):
    prediction = results[0] if results else ""
    return {{"exact_match": float(is_correct(doc, prediction))}}
'''

TASK_YAML = """# lmms-eval task for {title} ({config}); written by `cogvision publish`.
# Copy this folder into lmms_eval/tasks/ (or pass --include_path) and run --tasks {task}.
dataset_path: {load_path}
dataset_name: {config}
task: {task}
test_split: {test_split}
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.{doc_to_text}
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 64
  temperature: 0
  do_sample: false
process_results: !function utils.process_results
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: "{post_prompt}"
"""

POST_PROMPT = "\\nAnswer with a single word or short phrase."


def task_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "dataset"


def write_lmms_tasks(folder: str | Path, *, name: str, load_path: str,
                     splits: list[str]) -> list[Path]:
    """Write ``<slug>_main.yaml``, ``<slug>_subquestions.yaml`` and ``utils.py`` into ``folder``."""
    folder = Path(folder)
    slug = task_slug(name)
    test_split = "test" if "test" in splits else splits[0]
    written = []
    for config, doc_to_text in (("main", "main_doc_to_text"),
                                ("subquestions", "subquestion_doc_to_text")):
        path = folder / f"{slug}_{config}.yaml"
        write_text_atomic(path, TASK_YAML.format(
            title=name, config=config, task=f"{slug}_{config}", load_path=json.dumps(load_path),
            test_split=test_split, doc_to_text=doc_to_text, post_prompt=POST_PROMPT))
        written.append(path)
    utils = folder / "utils.py"
    write_text_atomic(utils, UTILS_PY.format(title=name))
    return written + [utils]
