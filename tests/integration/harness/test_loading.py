"""Loading saved models offline, including processor folders written by the stock classes (as real
checkpoints are), without torchvision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cogvision.errors import AdapterError
from cogvision.harness.adapters import adapter_for
from cogvision.harness.loading import load_model
from cogvision.harness.tiny import build_tiny, save_tiny


@pytest.mark.parametrize(("family", "stock"), [("qwen2_vl", "Qwen2VLProcessor"),
                                               ("internvl", "InternVLProcessor")])
def test_stock_processor_folders_load_and_match(family: str, stock: str, tmp_path: Path) -> None:
    model, processor = build_tiny(family, seed=5)
    save_tiny(model, processor, tmp_path)
    config_file = tmp_path / "processor_config.json"
    config = json.loads(config_file.read_text())
    config["processor_class"] = stock  # what a real checkpoint's folder says
    config_file.write_text(json.dumps(config))
    loaded, loaded_processor = load_model(tmp_path, dtype="float32")
    adapter, reference = adapter_for(loaded, loaded_processor), adapter_for(model, processor)
    image = Image.new("RGB", (28, 28), (9, 99, 199))
    with torch.no_grad():
        a = loaded(**adapter.build_inputs([image], ["What is it?"])).logits
        b = model(**reference.build_inputs([image], ["What is it?"])).logits
    assert torch.equal(a, b)
    assert adapter.describe() == reference.describe()


def test_load_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="cannot load model"):
        load_model(tmp_path / "missing")
    with pytest.raises(AdapterError, match="unknown dtype"):
        load_model(tmp_path, dtype="float8")
