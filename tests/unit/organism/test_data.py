"""The organism's training data equals the synthetic benchmark and the harness's prompts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cogvision.harness.adapters import adapter_for
from cogvision.harness.data import load_items
from cogvision.harness.prompts import PromptOptions, prompt_text
from cogvision.organism import data as od
from cogvision.organism import drills, referents
from cogvision.sources.synth import build_benchmark
from cogvision.sources.synth.scenes import Scene, SceneObject
from cogvision.sources.synth.templates_knowledge import COLOUR_GROUPS


def test_pool_equals_the_benchmark_as_the_harness_reads_it(tmp_path: Path) -> None:
    build_benchmark("cogvision", 12, 3, tmp_path, image_size=96, grid=3)
    pool = od.build_pool("cogvision", 12, 3, od.organism_scenes())
    from_disk = {i.main_id: i for i in load_items(tmp_path, splits=("train", "test"))}
    assert len(from_disk) == len(pool.items) == 12
    for k, item in enumerate(pool.items):
        ref = from_disk[item.main_id]
        assert item.main_question == ref.main_question
        assert [(s.id, s.question, s.answer, s.function, s.context) for s in item.subs] == [
            (s.id, s.question, s.answer, s.function, s.context) for s in ref.subs]
        assert np.array_equal(np.asarray(ref.image()), pool.images[k].permute(1, 2, 0).numpy())
        assert len(pool.kinds[k]) == len(item.subs)


def test_patch_targets_known_answer() -> None:
    objs = (SceneObject(0, "red", "circle", "small", 0, 0, 16, 16, 7),
            SceneObject(1, "blue", "hexagon", "large", 2, 1, 48, 80, 14))
    targets = od.patch_targets(Scene(96, 3, objs))
    assert targets.shape == (9, 3)
    assert targets[0].tolist() == [1, 1, 1]  # red, circle, small (class 0 = empty)
    assert targets[7].tolist() == [3, 5, 3]  # blue, hexagon, large at row 3, column 2
    assert targets[[1, 2, 3, 4, 5, 6, 8]].sum() == 0


def test_pixels_equal_the_processor(pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    _, processor = organism
    images = [Image.fromarray(pool.images[i].permute(1, 2, 0).numpy()) for i in range(3)]
    expected = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    assert torch.allclose(od.pixels(pool.images[:3]), expected, atol=1e-5)


def test_sequences_are_the_harness_prompt_plus_answer(pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    model, processor = organism
    adapter = adapter_for(model, processor)
    item = pool.items[2]
    for sub in item.subs:
        seq = od.encode_sub(processor, item, sub, 2, n_image=9, prompt_options=PromptOptions())
        inputs = adapter.build_inputs([item.image()], [prompt_text(item, sub, PromptOptions())])
        prompt_ids = inputs["input_ids"][0].tolist()
        assert seq.ids[: len(prompt_ids)].tolist() == prompt_ids  # identical prompt tokens
        tail = processor.tokenizer.decode(seq.ids[len(prompt_ids):].tolist())
        assert tail.split() == [*processor.tokenizer.tokenize(sub.answer), "<|im_end|>"]
        assert (seq.labels[: len(prompt_ids)] == od.IGNORE).sum() >= len(prompt_ids) - sum(
            len(processor.tokenizer.tokenize(a)) for _, a in sub.context)


def test_dense_labels_cover_every_answer(pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    _, processor = organism
    tok = processor.tokenizer
    item = max(pool.items, key=lambda i: len(i.subs))
    sub = item.subs[-1]
    dense = od.encode_sub(processor, item, sub, 0, n_image=9, prompt_options=PromptOptions())
    sparse = od.encode_sub(processor, item, sub, 0, n_image=9, prompt_options=PromptOptions(),
                           dense=False)
    learned = tok.decode(dense.ids[dense.labels != od.IGNORE].tolist()).split()
    answers = [a for _, a in sub.context] + [sub.answer]
    assert learned == [w for a in answers for w in tok.tokenize(a)] + ["<|im_end|>"]
    final = tok.decode(sparse.ids[sparse.labels != od.IGNORE].tolist()).split()
    assert final == [*tok.tokenize(sub.answer), "<|im_end|>"]


def test_batches_are_reproducible_from_the_generator(pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    _, processor = organism
    seqs = od.encode_pool(processor, pool, n_image=9)
    first = next(od.batches(seqs, pool, 1, 4, torch.Generator().manual_seed(3)))
    again = next(od.batches(seqs, pool, 1, 4, torch.Generator().manual_seed(3)))
    other = next(od.batches(seqs, pool, 1, 4, torch.Generator().manual_seed(4)))
    assert torch.equal(first.input_ids, again.input_ids)
    assert not torch.equal(first.input_ids, other.input_ids) or first.input_ids.shape != (
        other.input_ids.shape)
    assert first.pixel_values.shape == (4, 3, 96, 96) and first.aux.shape == (4, 9, 3)
    assert ((first.labels != od.IGNORE) <= (first.attention_mask == 1)).all()
    # Fewer sequences than one batch: a clear error, not an endless loop that never yields.
    with pytest.raises(ValueError, match="3 sequences are fewer than one batch of 4"):
        next(od.batches(seqs[:3], pool, 1, 4, torch.Generator().manual_seed(3)))


def test_packed_batch_gives_every_sequence_its_own_logits_and_the_same_loss(
        pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    model, processor = organism
    seqs = od.encode_pool(processor, pool, n_image=9)[:12]
    pad = model.config.text_config.pad_token_id
    padded = od.collate(seqs, pool, pad)
    packed = od.collate(seqs, pool, pad, pack=2 * max(len(s.ids) for s in seqs))
    assert packed.input_ids.shape[0] < len(seqs)  # some rows hold several sequences
    assert packed.pixel_values.shape[0] == len(seqs)
    assert int((packed.labels != od.IGNORE).sum()) == int((padded.labels != od.IGNORE).sum())
    model.eval()
    with torch.no_grad():
        out_padded = model(**padded.model_inputs())
        out_packed = model(**packed.model_inputs())
        assert torch.allclose(out_packed.loss, out_padded.loss, atol=1e-5)
        # Each sequence, found by its own tokens in the packed rows, has its unpacked logits.
        for row, seq in enumerate(seqs):
            alone = model(input_ids=seq.ids[None], pixel_values=padded.pixel_values[row: row + 1])
            r, at = _find(packed.input_ids, packed.position_ids, seq.ids)
            got = out_packed.logits[r, at: at + len(seq.ids)]
            assert torch.allclose(got, alone.logits[0], atol=1e-4), row


def _find(ids: torch.Tensor, positions: torch.Tensor, seq: torch.Tensor) -> tuple[int, int]:
    """Row and start of ``seq`` among the packed rows (starts are where positions are 0)."""
    for r in range(ids.shape[0]):
        for at in (positions[r] == 0).nonzero().flatten().tolist():
            if torch.equal(ids[r, at: at + len(seq)], seq):
                return r, at
    raise AssertionError("sequence not in the packed batch")


@pytest.mark.parametrize("variant", ["cogvision", "cogvsr"])
def test_pools_of_both_variants_build(variant: str) -> None:
    pool = od.build_pool(variant, 5, 1, od.organism_scenes())
    assert len(pool.items) == 5 and pool.aux.shape == (5, 9, 3)


def test_drills_ask_every_occupied_cell_with_answers_from_the_scene(pool: od.Pool) -> None:
    for i, (item, scene) in enumerate(zip(pool.items, pool.scenes, strict=True)):
        drill = drills.drill_item(item, scene, "cogvision", np.random.default_rng([5, i]))
        (sub,) = drill.subs
        steps = [*sub.context, (sub.question, sub.answer)]
        assert 1 <= len(steps) <= drills.MAX_DRILL_STEPS and sub.index == len(sub.context)
        assert drill.main_question == item.main_question and drill.image() is item.image()
        looked_up = set()
        for question, answer in steps:
            if " is the object at row " in question:  # a cell look-up: recompute its answer
                row, col = (int(w) for w in question.rstrip("?").replace(",", "").split()[-3::2])
                obj = scene.at(row - 1, col - 1)
                assert obj is not None
                looked_up.add((obj.row, obj.col))
                expected = {"colour": obj.colour, "shape": obj.shape,
                            "shape and size": f"{obj.size} {obj.shape}"}
                kind = question.removeprefix("What ").split(" is the object")[0]
                assert answer == expected[kind], question
            if question.startswith("In which row and column is the "):
                name = question.removeprefix("In which row and column is the ").rstrip("?")
                (obj,) = [o for o in scene.objects  # the name is unique in its scene
                          if set(name.split()) <= {o.size, o.colour, o.shape}]
                assert answer == f"row {obj.row + 1}, column {obj.col + 1}"
        # Every occupied cell is looked up unless the 20-step cap cut its block.
        assert looked_up <= {(o.row, o.col) for o in scene.objects}
        if len(steps) < drills.MAX_DRILL_STEPS - 7:
            assert looked_up == {(o.row, o.col) for o in scene.objects}


def test_drills_ask_as_many_position_look_ups_as_told(pool: od.Pool) -> None:
    for i, (item, scene) in enumerate(zip(pool.items, pool.scenes, strict=True)):
        asked = {}
        for positions in (0, 2, 9):
            drill = drills.drill_item(item, scene, "cogvision", np.random.default_rng([5, i]),
                                  programs=0, positions=positions)
            (sub,) = drill.subs
            asked[positions] = [q for q, _ in [*sub.context, (sub.question, sub.answer)]
                                if q.startswith("In which row and column is ")]
        # Without programs nothing hits the 20-step cap: exactly min(positions, objects) asked,
        # each about a different object.
        for positions, questions in asked.items():
            assert len(questions) == len(set(questions)) == min(positions, len(scene.objects))
        assert set(asked[9]) == {f"In which row and column is {scene.ref(o)}?"
                                 for o in scene.objects}


def test_drill_sequences_learn_every_answer(pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    _, processor = organism
    tok = processor.tokenizer
    seqs = drills.encode_drills(processor, pool, "cogvision", n_image=9, seed=5)
    again = drills.encode_drills(processor, pool, "cogvision", n_image=9, seed=5)
    assert len(seqs) == len(pool.items)
    assert all(torch.equal(a.ids, b.ids) for a, b in zip(seqs, again, strict=True))
    drill = drills.drill_item(pool.items[0], pool.scenes[0], "cogvision",
                          np.random.default_rng([5, 0]))
    sub = drill.subs[0]
    learned = tok.decode(seqs[0].ids[seqs[0].labels != od.IGNORE].tolist()).split()
    answers = [a for _, a in sub.context] + [sub.answer]
    assert learned == [w for a in answers for w in tok.tokenize(a)] + ["<|im_end|>"]
    assert tok.unk_token_id not in seqs[0].ids
    more = drills.encode_drills(processor, pool, "cogvision", n_image=9, seed=5, positions=9)
    which = tok.convert_tokens_to_ids("which")  # position look-ups say "which"
    assert sum(int((s.ids == which).sum()) for s in more) > sum(
        int((s.ids == which).sum()) for s in seqs)


def test_drill_count_blocks_count_the_scene_and_the_listed_colours(pool: od.Pool) -> None:
    for i, (item, scene) in enumerate(zip(pool.items, pool.scenes, strict=True)):
        plain = drills.drill_item(item, scene, "cogvision", np.random.default_rng([5, i]))
        assert drills.drill_item(item, scene, "cogvision", np.random.default_rng([5, i]),
                             counts=0) == plain  # counts=0 draws nothing more
        drill = drills.drill_item(item, scene, "cogvision", np.random.default_rng([5, i]),
                              programs=0, positions=0, counts=3)
        (sub,) = drill.subs
        steps = [*sub.context, (sub.question, sub.answer)]
        colours = [o.colour for o in scene.objects]
        listed = [k for k, (q, _) in enumerate(steps) if q == referents.ALL_COLOURS]
        assert len(listed) == 1 and steps[listed[0]][1] == ", ".join(colours)
        over_list = steps[listed[0] + 1: listed[0] + 4]  # the block keeps its steps together
        for question, answer in over_list:
            chosen = question.removeprefix("How many of those colours are ").rstrip("?")
            assert question.startswith("How many of those colours are ")
            assert 1 <= len(chosen.split(", ")) <= 3
            assert answer == str(sum(c in chosen.split(", ") for c in colours))
        by_scene = [(q, a) for q, a in steps if q.endswith(" are there?")]
        assert len(by_scene) == 3
        for question, answer in by_scene:
            word = question.split()[2]
            expected = (colours.count(word) if question.endswith(" objects are there?")
                        else sum(f"{o.shape}s" == word for o in scene.objects))
            assert answer == str(expected), question


def test_drill_group_counts_ask_the_colour_groups_and_count_the_listed_colours(
        pool: od.Pool) -> None:
    groups = {", ".join(members) for members in COLOUR_GROUPS.values()}
    for i, scene in enumerate(pool.scenes):
        listed, *_ = drills.count_blocks(scene, "cogvision", np.random.default_rng([5, i]), 4, 1.0)
        colours = [o.colour for o in scene.objects]
        assert listed[0][:2] == (referents.ALL_COLOURS, ", ".join(colours))
        for question, answer, _ in listed[1:]:
            chosen = question.removeprefix("How many of those colours are ").rstrip("?")
            assert chosen in groups
            assert answer == str(sum(c in chosen.split(", ") for c in colours))
