"""Sources: importers that turn existing datasets into SourceQuestion / Decomposition artifacts.

- ``easyvqa``: the easy-VQA package (offline, MIT).
- ``hf``: any Hugging Face dataset through ``datasets.load_dataset`` and a YAML source spec.
- ``recipe``: the papers' source pools (``recipes/cogvision.yaml``, ``recipes/cogvsr.yaml``).
- ``cogjson``: existing decompositions in the published CogVision/CogQA JSON shape.
- ``folder``: a folder of images plus a JSONL of questions.
- ``synth``: the synthetic benchmark with exact ground truth.

Importers write through ``common.ImportSession``: all-or-nothing, images copied under
content-addressed names, failures recorded with ``keep_going``. Nothing heavy is imported here.
"""

from cogvision.sources.common import ImportResult

__all__ = ["ImportResult"]
