"""The organism is a stock LLaVA that the harness loads and drives like any HF model."""

from __future__ import annotations

from pathlib import Path

import torch

from cogvision.harness.adapters import adapter_for
from cogvision.harness.answer import answer_batch, normalize
from cogvision.harness.loading import load_model
from cogvision.harness.prompts import PromptOptions, prompt_text
from cogvision.organism import data as od
from cogvision.organism.model import UNK, OrganismSpec, build_tokenizer, describe


def test_tokenizer_covers_the_corpus_and_round_trips_answers(pool: od.Pool) -> None:
    texts = [f"{s.question} {s.answer}" for item in pool.items for s in item.subs]
    tok = build_tokenizer(texts)
    for item in pool.items:
        for sub in item.subs:
            ids = tok(sub.question + " " + sub.answer, add_special_tokens=False)["input_ids"]
            assert tok.unk_token_id not in ids
            answer = tok.decode(tok(sub.answer, add_special_tokens=False)["input_ids"])
            assert normalize(answer) == normalize(sub.answer)
    assert tok.convert_ids_to_tokens(tok("zebra")["input_ids"]) == [UNK]
    assert tok.image_token == "<image>"


def test_geometry_one_patch_per_grid_cell(organism) -> None:  # type: ignore[no-untyped-def]
    model, _ = organism
    vision = model.config.vision_config
    assert vision.patch_size * 3 == vision.image_size == 96
    assert model.config.image_seq_length == OrganismSpec().image_tokens == 9
    parts = describe(model)
    assert parts["total"] == sum(v for k, v in parts.items() if k != "total")


def test_saved_organism_loads_like_any_hf_model(organism, pool: od.Pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model, processor = organism
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, loaded_processor = load_model(tmp_path, dtype="float32")  # HF_HUB_OFFLINE=1 (conftest)
    assert type(loaded).__name__ == "LlavaForConditionalGeneration"
    item, sub = pool.items[0], pool.items[0].subs[-1]
    prompt = prompt_text(item, sub, PromptOptions())
    a, b = adapter_for(model.eval(), processor), adapter_for(loaded, loaded_processor)
    assert (a.n_layers, a.n_heads, a.d_head) == (b.n_layers, b.n_heads, b.d_head) == (2, 4, 8)
    inputs_a = a.build_inputs([item.image()], [prompt])
    inputs_b = b.build_inputs([item.image()], [prompt])
    assert torch.equal(inputs_a["input_ids"], inputs_b["input_ids"])
    assert (inputs_a["input_ids"] == a.image_token_id).sum() == 9
    with torch.no_grad():
        assert torch.equal(model(**inputs_a).logits, loaded(**inputs_b).logits)
    answers = answer_batch(b, list(item.subs), [item.image()] * len(item.subs),
                           [prompt_text(item, s, PromptOptions()) for s in item.subs],
                           max_new_tokens=4)
    assert [x.sub_id for x in answers] == [s.id for s in item.subs]
    assert all(0 <= x.n_tokens <= 4 for x in answers)


def test_cell_words_make_a_cell_name_one_token_and_round_trip(pool: od.Pool, tmp_path: Path
                                                                ) -> None:
    texts = [f"{s.question} {s.answer}" for item in pool.items for s in item.subs]
    tok = build_tokenizer(texts, cell_words=True, grid=3)
    text = "Q1: In which row and column is the red circle?\nA1: row 2, column 3\nrow 2"
    tokens = tok.tokenize(text)
    assert "row 2, column 3" in tokens and tokens[-2:] == ["row", "2"]
    assert all(f"row {r}, column {c}" in tok.get_vocab() for r in (1, 2, 3) for c in (1, 2, 3))
    answer_ids = tok("row 3, column 1", add_special_tokens=False)["input_ids"]
    assert len(answer_ids) == 1 and tok.decode(answer_ids) == "row 3, column 1"
    for item in pool.items:  # every benchmark answer still round-trips, none is unknown
        for sub in item.subs:
            ids = tok(sub.answer, add_special_tokens=False)["input_ids"]
            assert tok.unk_token_id not in ids
            assert normalize(tok.decode(ids)) == normalize(sub.answer)
    tok.save_pretrained(tmp_path)  # the split survives save_pretrained / from_pretrained
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(tmp_path).tokenize(text) == tokens
