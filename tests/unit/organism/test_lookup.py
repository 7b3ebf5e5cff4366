"""The supervised look-up: referents, their token positions, and the head's real attention."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from cogvision.harness.prompts import PromptOptions
from cogvision.organism import data as od
from cogvision.organism import drills, referents
from cogvision.organism import lookup as ol
from cogvision.organism.config import TrainConfig
from cogvision.sources.synth.scenes import COLOURS, SHAPES, Scene, SceneObject

SCENE = Scene(96, 3, (
    SceneObject(0, "red", "circle", "small", 0, 0, 16, 16, 7),
    SceneObject(1, "red", "circle", "large", 1, 2, 80, 48, 14),
    SceneObject(2, "blue", "hexagon", "large", 2, 1, 48, 80, 14),
))


@pytest.mark.parametrize(("question", "cell"), [
    ("In which row and column is the small red circle?", 0),
    ("What shape is the object directly above the large red circle?", 5),
    ("In which row and column is the blue hexagon?", 7),  # colour + shape is unique
    ("What colour is the object at row 3, column 2?", 7),
    ("What shape and size is the object at row 1, column 1?", 0),
    ("In which row and column is the red circle?", None),  # not unique: two red circles
    ("Is the small red circle left of the blue hexagon?", None),  # two objects
    ("How many red circles are there?", None),  # a plural names no one object
    ("What shape is it?", None),
    ("In which row and column is the green square?", None),  # not in the scene
])
def test_referent_cell_known_answers(question: str, cell: int | None) -> None:
    assert referents.referent_cell(question, SCENE) == cell


def _lookups_of_kind(seqs: list[od.Sequence_], pool: od.Pool, image_id: int, kind: int
                    ) -> Iterator[tuple[od.Sequence_, int, SceneObject]]:
    """(sequence, query, object) of every look-up of ``kind``; checks each key is the image token
    of a real object."""
    for seq in seqs:
        scene = pool.scenes[seq.item]
        image_at = int((seq.ids == image_id).nonzero()[0, 0])
        for query, key, found in seq.lookups:
            if found == kind:
                cell = key - image_at
                obj = scene.at(cell // 3, cell % 3)
                assert seq.ids[key] == image_id and obj is not None
                yield seq, query, obj


def test_lookups_point_from_the_token_before_each_answer_to_its_object(
        pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    _, processor = organism
    tok = processor.tokenizer
    image_id = tok.convert_tokens_to_ids(tok.image_token)
    seqs = drills.encode_drills(processor, pool, "cogvision", n_image=9, seed=5, positions=9,
                            lookups=True)
    plain = drills.encode_drills(processor, pool, "cogvision", n_image=9, seed=5, positions=9)
    assert all(torch.equal(a.ids, b.ids) and not b.lookups for a, b in zip(seqs, plain,
                                                                           strict=True))
    assert all(seq.lookups for seq in seqs)
    checked = 0
    for seq, query, obj in _lookups_of_kind(seqs, pool, image_id, referents.NAMED):
        # The query predicts an answer token; the key is the image token of a real object.
        assert seq.labels[query + 1] != od.IGNORE and seq.labels[query] == od.IGNORE
        # The question just before the query names that object (or its cell).
        before = tok.decode(seq.ids[:query + 1].tolist()).replace(" ", "")
        question = before.rsplit("Q", 1)[-1].rsplit("Sub-question:", 1)[-1]
        names = (obj.name(with_size=True), obj.name(), f"row{obj.row + 1},column{obj.col + 1}")
        assert any(n.replace(" ", "") in question for n in names), question
        checked += 1
    assert checked > 3 * len(seqs)  # drills with 9 position look-ups name many objects


def test_head_attention_equals_eager_attention_in_a_packed_batch(
        pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    model, processor = organism
    seqs = [s for s in od.encode_pool(processor, pool, n_image=9, lookups=True) if s.lookups][:8]
    pad = model.config.text_config.pad_token_id
    batch = od.collate(seqs, pool, pad, pack=3 * max(len(s.ids) for s in seqs))
    assert batch.lookups is not None and batch.input_ids.shape[0] < len(seqs)
    model.eval()
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    inputs = batch.model_inputs()
    # Eager attention adds the mask to the scores: it needs the additive form of the bool mask.
    inputs["attention_mask"] = torch.zeros(inputs["attention_mask"].shape).masked_fill(
        ~inputs["attention_mask"], float("-inf"))
    try:
        with torch.no_grad(), ol.capture_attention_inputs(model, 1) as seen:
            out = model(**inputs, output_attentions=True)
    finally:
        model.set_attn_implementation(previous)
    for head in range(model.config.text_config.num_attention_heads):
        logp = ol.head_attention(ol.attention_module(model, 1), seen[-1], head, batch.lookups)
        rows, queries = batch.lookups[:, 0], batch.lookups[:, 1]
        eager = out.attentions[1][rows, head, queries]  # [N, S]
        assert torch.allclose(logp.exp(), eager, atol=1e-5)
    loss, hit = ol.lookup_loss(model, seen[-1], 1, 0, batch.lookups)
    assert loss.item() > 0 and 0 <= hit <= 1


def test_lookup_loss_trains_the_head_to_the_named_object(
        pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    model, processor = organism
    seqs = drills.encode_drills(processor, pool, "cogvision", n_image=9, seed=5, positions=9,
                            lookups=True)
    batch = od.collate(seqs[:8], pool, model.config.text_config.pad_token_id, pack=400)
    named = ol.of_kind(batch.lookups, referents.NAMED)
    assert named is not None
    trained = list(model.parameters())
    saved = [p.detach().clone() for p in trained]
    opt = torch.optim.Adam(trained, lr=3e-3)
    model.train()
    try:
        losses = []
        for _ in range(60):
            with ol.capture_attention_inputs(model, 1) as seen:
                model(**batch.model_inputs())
            loss, hit = ol.lookup_loss(model, seen[-1], 1, 2, named)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        # From spread attention (-log ~ 5) to the named object's token far above chance (1 in 9
        # image tokens; measured: loss 5.1 -> 1.4, hit 0.39).
        assert losses[-1] < 0.4 * losses[0] and hit > 0.25, (losses[0], losses[-1], hit)
    finally:
        model.eval()
        with torch.no_grad():
            for p, old in zip(trained, saved, strict=True):
                p.copy_(old)


def test_keys_on_top_known_answers() -> None:
    attention = torch.tensor([[0.5, 0.3, 0.1, 0.1],   # query 0: keys 0, 1 on top
                              [0.5, 0.3, 0.1, 0.1],
                              [0.2, 0.1, 0.4, 0.3],   # query 1: key 3 is second
                              [0.1, 0.2, 0.3, 0.4],   # query 2: key 3 alone, on top
                              [0.4, 0.1, 0.1, 0.4]])  # query 3: key 0 ties with position 3
    query = torch.tensor([0, 0, 1, 2, 3])
    target = torch.tensor([0, 1, 3, 3, 0])
    on_top = ol.keys_on_top(attention.log(), query, target, 4)
    assert on_top.tolist() == [True, False, True, False]


def test_lookup_heads_must_exist() -> None:
    with pytest.raises(ValueError, match="lookup head L4H0 is outside"):
        TrainConfig(out="x", lookup_weight=1.0, lookup_layer=4)
    with pytest.raises(ValueError, match="chain head L2H8 is outside the decoder's 4 layers x 8"):
        TrainConfig(out="x", chain_weight=1.0, chain_head=8)
    with pytest.raises(ValueError, match="chain head L2H0 is outside the decoder's 2 layers"):
        TrainConfig(out="x", n_layers=2)  # the default recipe's chain head needs layer 2
    # A head of a loss that is off is not checked.
    assert TrainConfig(out="x", n_layers=2, chain_weight=0).lookup_losses() == [
        ("lookup", referents.NAMED, 0.25, 1, 0), ("tally", referents.TALLIED, 0.25, 1, 2)]
    assert TrainConfig(out="x", n_layers=2, chain_weight=0, tally_weight=0).lookup_losses() == [
        ("lookup", referents.NAMED, 0.25, 1, 0)]
    with pytest.raises(ValueError, match="tally head L1H2 is outside the decoder's 2 layers x 2"):
        TrainConfig(out="x", n_layers=2, n_heads=2, chain_weight=0)  # the default tally head
    assert TrainConfig(out="x", lookup_layer=3, lookup_head=7).lookup_head == 7
    assert PromptOptions()  # the prompts the look-ups are computed on


def test_step_loss_adds_the_weighted_lookup_losses(pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    from cogvision.organism.train import aux_heads, step_loss

    model, processor = organism
    seqs = od.encode_pool(processor, pool, n_image=9, lookups=True)[:16]
    batch = od.collate(seqs, pool, model.config.text_config.pad_token_id, pack=300)
    named = ol.of_kind(batch.lookups, referents.NAMED)
    chained = ol.of_kind(batch.lookups, referents.CHAINED)
    counted = ol.of_kind(batch.lookups, referents.COUNTED)
    tallied = ol.of_kind(batch.lookups, referents.TALLIED)
    assert named is not None and chained is not None and counted is not None
    assert tallied is not None
    config = TrainConfig(out="x", d_model=32, n_layers=2, n_heads=4, lookup_weight=0,
                         chain_weight=0, tally_weight=0, tally_readout_weight=0)
    heads = aux_heads(config)
    model.eval()
    with torch.no_grad():
        plain, parts = step_loss(model, heads, batch, config)
        weighted, with_lookup = step_loss(model, heads, batch, config.model_copy(update={
            "lookup_weight": 0.5, "chain_weight": 0.25, "chain_layer": 1, "chain_head": 3,
            "count_weight": 2.0, "tally_weight": 0.5}))
        with ol.capture_attention_inputs(model, 1) as seen:
            model(**batch.model_inputs())
        look, hit = ol.lookup_loss(model, seen[-1], 1, 0, named)
        chain, chain_hit = ol.lookup_loss(model, seen[-1], 1, 3, chained)
        count, count_hit = ol.lookup_loss(model, seen[-1], 1, 1, counted)
        tally, tally_hit = ol.lookup_loss(model, seen[-1], 1, 2, tallied)
        # The count loss: per count, the mean -log attention over its keys (sink and objects).
        logp = ol.head_attention(ol.attention_module(model, 1), seen[-1], 1, counted)
        picked = logp.gather(1, counted[:, 2:3])[:, 0]
        per_count: dict[tuple[int, int], list[float]] = {}
        for (row, query), value in zip(counted[:, :2].tolist(), picked.tolist(), strict=True):
            per_count.setdefault((row, query), []).append(-value)
        expected = sum(sum(v) / len(v) for v in per_count.values()) / len(per_count)
        # With count_sink=4 the sink (the first of a count's keys) weighs 4 / (4 + n).
        heavy, _ = ol.lookup_loss(model, seen[-1], 1, 1, counted, sink=4.0)
        expected_heavy = sum((4 * v[0] + sum(v[1:])) / (4 + len(v) - 1)
                             for v in per_count.values()) / len(per_count)
        _, with_sink = step_loss(model, heads, batch, config.model_copy(update={
            "count_weight": 2.0, "count_sink": 4.0}))
    assert count.item() == pytest.approx(expected, rel=1e-5)
    assert heavy.item() == pytest.approx(expected_heavy, rel=1e-5) and heavy != count
    assert with_sink["count_loss"] == heavy.item()
    assert any(len(v) > 2 for v in per_count.values())
    assert set(parts) == {"lm_loss", "aux_loss"}
    assert with_lookup["lookup_hit"] == hit and with_lookup["lookup_loss"] == look.item()
    assert with_lookup["chain_hit"] == chain_hit and with_lookup["chain_loss"] == chain.item()
    assert with_lookup["count_hit"] == count_hit and with_lookup["count_loss"] == count.item()
    assert with_lookup["tally_hit"] == tally_hit and with_lookup["tally_loss"] == tally.item()
    assert torch.allclose(weighted, plain + 0.5 * look + 0.25 * chain + 2.0 * count + 0.5 * tally)
    assert chain.item() != look.item()


TWO_ROWS = Scene(96, 3, (
    SceneObject(0, "red", "circle", "small", 0, 0, 16, 16, 7),
    SceneObject(1, "red", "circle", "large", 1, 2, 80, 48, 14),
    SceneObject(2, "blue", "hexagon", "large", 2, 1, 48, 80, 14),
    SceneObject(3, "green", "triangle", "small", 2, 2, 80, 80, 7),
))
N, C, K = referents.NAMED, referents.CHAINED, referents.COUNTED


@pytest.mark.parametrize(("steps", "expected"), [
    # a named object, the object below "it", then "that triangle"
    ((("In which row and column is the large red circle?", "row 2, column 3"),
      ("What shape is the object directly below it?", "triangle"),
      ("What colour is that triangle?", "green")),
     ((N, (5,)), (C, (8,)), (C, (8,)))),
    # "that square" is not the previous step's object; "it" with nothing before, or nothing there
    ((("What shape is the object directly below it?", "triangle"),
      ("In which row and column is the small red circle?", "row 1, column 1"),
      ("What shape is the object directly above it?", "none"),
      ("What colour is that square?", "red")),
     ((C, ()), (N, (0,)), (C, ()), (C, ()))),
    # the cell an answer gives, then the shape at a cell the question gives
    ((("What shape is the object at row 1, column 1?", "circle"),
      ("Where is the other circle?", "row 2, column 3"),
      ("What colour is the circle at row 2, column 3?", "red")),
     ((N, (0,)), (C, (5,)), (C, (5,)))),
    # listed answers: one object per element, in reading order
    ((("What colours do the objects in the image have, in reading order?",
       "red, red, blue, green"),
      ("What shapes are the red objects?", "circle, circle"),
      ("What shapes are the yellow objects?", "none"),
      ("What colours do the objects in the image have, in reading order?", "red, blue")),
     ((C, (0, 5, 7, 8)), (C, (0, 5)), (C, ()), (C, ()))),
    # no object: text-only steps; counts: every object counted (maybe none)
    ((("Which colour of object does the question ask to count?", "red"),
      ("How many red objects are there?", "2"),
      ("How many hexagons are there?", "1"),
      ("How many green circles are in the image?", "0")),
     ((C, ()), (K, (0, 5)), (K, (7,)), (K, ()))),
    ((("What colours do the objects in the image have, in reading order?",
       "red, red, blue, green"),
      ("How many of those colours are red, yellow, blue?", "3"),
      ("How many objects are in rows 1 to 2?", "2"),
      ("How many objects are in column 3?", "2"),
      # a named object wins; a count the answer contradicts gets no look-up
      ("Not counting the large red circle, how many objects are in row 2?", "0"),
      ("How many red objects are there?", "3")),
     ((C, (0, 5, 7, 8)), (K, (0, 5, 7)), (K, (0, 5)), (K, (5, 8)), (N, (5,)), (C, ()))),
])
def test_step_referents_known_answers(steps: tuple[tuple[str, str], ...],
                                      expected: tuple[tuple[int, tuple[int, ...]], ...]) -> None:
    assert referents.step_referents(steps, TWO_ROWS) == expected


@pytest.fixture(scope="module")
def drills_and_pool(pool: od.Pool, organism) -> list[od.Sequence_]:  # type: ignore[no-untyped-def]
    """The pool's drills and sequences, with look-ups."""
    processor = organism[1]
    return drills.encode_drills(processor, pool, "cogvision", n_image=9, seed=5, positions=9,
                            lookups=True) + od.encode_pool(processor, pool, n_image=9, lookups=True)


def test_chained_lookups_point_from_each_answer_element_to_its_object(
        pool: od.Pool, organism, drills_and_pool: list[od.Sequence_]
) -> None:  # type: ignore[no-untyped-def]
    tok = organism[1].tokenizer
    image_id = tok.convert_tokens_to_ids(tok.image_token)
    seqs = drills_and_pool
    listed = checked = 0
    for seq, query, obj in _lookups_of_kind(seqs, pool, image_id, referents.CHAINED):
        # The next token starts an answer (or a listed element) about that very object.
        said = tok.decode(seq.ids[query + 1: query + 8].tolist()).replace(" ", "")
        about = (obj.colour, obj.shape, f"row{obj.row + 1},column{obj.col + 1}", "yes", "no")
        assert any(said.startswith(a) for a in about), said
        listed += tok.decode(seq.ids[query: query + 1].tolist()).strip() == ","
        checked += 1
    assert checked > len(seqs) and listed > 20


def test_counted_lookups_point_from_each_count_to_its_objects_and_the_sink(
        pool: od.Pool, organism, drills_and_pool: list[od.Sequence_]
) -> None:  # type: ignore[no-untyped-def]
    tok = organism[1].tokenizer
    image_id = tok.convert_tokens_to_ids(tok.image_token)
    seqs = drills_and_pool
    counts = 0
    for seq in seqs:
        groups: dict[int, list[int]] = {}
        for query, key, kind in seq.lookups:
            if kind == referents.COUNTED:
                groups.setdefault(query, []).append(key)
        for query, (sink, *objects) in groups.items():
            # The answer after the query is the number of image tokens it looks up.
            assert sink == 0 and all(seq.ids[k] == image_id for k in objects)
            assert tok.decode(seq.ids[query + 1: query + 2].tolist()).strip() == str(len(objects))
            question = tok.decode(seq.ids[:query + 1].tolist()).rsplit("How many", 1)[-1]
            assert "?" in question  # the question just before is a count
            counts += 1
    assert counts > len(seqs) // 2


def test_tallied_lookups_point_from_each_count_to_every_image_token(
        organism, drills_and_pool: list[od.Sequence_]
) -> None:  # type: ignore[no-untyped-def]
    tok = organism[1].tokenizer
    image_id = tok.convert_tokens_to_ids(tok.image_token)
    tallies = 0
    for seq in drills_and_pool:
        counted: set[int] = set()
        tallied: dict[int, list[int]] = {}
        for query, key, kind in seq.lookups:
            if kind == referents.COUNTED:
                counted.add(query)
            elif kind == referents.TALLIED:
                tallied.setdefault(query, []).append(key)
        # Every count (and nothing else) tallies the sequence's 9 image tokens, each once.
        assert set(tallied) == counted
        image = (seq.ids == image_id).nonzero()[:, 0].tolist()
        assert all(sorted(keys) == image and len(image) == 9 for keys in tallied.values())
        tallies += len(tallied)
    assert tallies > len(drills_and_pool) // 2


def test_two_lookup_losses_cannot_teach_one_head() -> None:
    assert TrainConfig(out="x", tally_weight=0.25).lookup_losses()[-1] == (
        "tally", referents.TALLIED, 0.25, 1, 2)
    with pytest.raises(ValueError, match=r"two look-up losses teach the same head: \[\(1, 0\), "
                                         r"\(2, 0\), \(1, 0\)\]"):
        TrainConfig(out="x", tally_weight=0.25, tally_head=0)
    # count (L1H1 by default) and tally (L1H2) may both be on.
    assert len(TrainConfig(out="x", count_weight=1, tally_weight=1).lookup_losses()) == 4


def test_scene_histograms_count_each_colour_and_shape() -> None:
    aux = torch.tensor([[[1, 2, 1], [0, 0, 0], [1, 5, 3], [3, 2, 2]]])  # red circle-ish ids
    counts = ol.scene_histograms(aux)[0].tolist()
    n_colours = od.AUX_CLASSES["colour"] - 1
    colours, shapes = counts[:n_colours], counts[n_colours:]
    assert len(colours) == len(COLOURS) and len(shapes) == len(SHAPES)
    assert colours[0] == 2 and colours[2] == 1 and sum(colours) == 3
    assert shapes[1] == 2 and shapes[4] == 1 and sum(shapes) == 3


@dataclass
class ReadoutCase:
    """A packed batch of 16 pool sequences with one read-out loss on (weight 0.5): its look-up
    rows of the read-out's kind, the config and heads, the loss without and with the read-out
    and its parts, and layer 1's head outputs (``capture_head_outputs``)."""

    batch: od.Batch
    rows: torch.Tensor
    config: TrainConfig
    heads: Any
    plain: torch.Tensor
    total: torch.Tensor
    parts: dict[str, float]
    said: torch.Tensor


def readout_case(pool: od.Pool, model: Any, processor: Any, kind: int, weight: str
                 ) -> ReadoutCase:
    from cogvision.organism.train import aux_heads, step_loss

    seqs = od.encode_pool(processor, pool, n_image=9, lookups=True)[:16]
    batch = od.collate(seqs, pool, model.config.text_config.pad_token_id, pack=300)
    rows = ol.of_kind(batch.lookups, kind)
    assert rows is not None
    config = TrainConfig(out="x", d_model=32, n_layers=2, n_heads=4, lookup_weight=0,
                         chain_weight=0, tally_weight=0,
                         tally_readout_weight=0).model_copy(update={weight: 0.5})
    heads = aux_heads(config)
    model.eval()
    with torch.no_grad():
        plain, _ = step_loss(model, heads, batch, config.model_copy(update={weight: 0}))
        total, parts = step_loss(model, heads, batch, config)
        with ol.capture_head_outputs(model, 1) as said:
            model(**batch.model_inputs())
    return ReadoutCase(batch, rows, config, heads, plain, total, parts, said[-1])


def test_tally_readout_reads_each_count_from_its_own_scene(pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    from cogvision.organism.train import aux_heads

    model, processor = organism
    case = readout_case(pool, model, processor, referents.TALLIED, "tally_readout_weight")
    batch, tallied, heads, parts = case.batch, case.rows, case.heads, case.parts
    assert heads.tally is not None and heads.tally.in_features == 8
    assert aux_heads(case.config.model_copy(update={"tally_readout_weight": 0})).tally is None
    # By hand: per count query, head L1H2's output slice and its sequence's own scene.
    image_id = model.config.image_token_index
    expected, seen = [], set()
    for row, query, key, _, _ in tallied.tolist():
        if (row, query) in seen:
            continue
        seen.add((row, query))
        before = int((batch.input_ids.flatten()[: row * batch.input_ids.shape[1] + key]
                      == image_id).sum())
        scene = pool.scenes[int(batch_item(batch, before // 9, pool))]
        target = [sum(o.colour == c for o in scene.objects) for c in COLOURS] + [
            sum(o.shape == s for o in scene.objects) for s in SHAPES]
        out = heads.tally(case.said[row, query, 16:24])
        expected.append(((out - torch.tensor(target, dtype=torch.float)) ** 2).mean().item())
    assert len(seen) > 2
    assert parts["tally_readout_loss"] == pytest.approx(sum(expected) / len(expected), rel=1e-5)
    assert case.total.item() == pytest.approx(
        case.plain.item() + 0.5 * parts["tally_readout_loss"], rel=1e-5)


def test_count_readout_reads_each_count_from_the_count_head(pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    model, processor = organism
    case = readout_case(pool, model, processor, referents.COUNTED, "count_readout_weight")
    batch, counted, heads, parts = case.batch, case.rows, case.heads, case.parts
    # only the read-out teaches the count head (L1H1), so it counts as taught
    assert case.config.taught_heads() == [("count", 1, 1)]
    assert heads.count is not None and (heads.count.in_features, heads.count.out_features) == (
        8, 10)
    # By hand: per count query, the gold count is the answer token it predicts.
    losses, hits, seen = [], [], set()
    for row, query, *_ in counted.tolist():
        if (row, query) in seen:
            continue
        seen.add((row, query))
        gold = int(processor.tokenizer.decode(batch.input_ids[row, query + 1]))
        logits = heads.count(case.said[row, query, 8:16])
        losses.append(torch.nn.functional.cross_entropy(logits, torch.tensor(gold)).item())
        hits.append(int(logits.argmax()) == gold)
    assert len(seen) > 2 and any(int(processor.tokenizer.decode(batch.input_ids[r, q + 1])) > 1
                                 for r, q in seen)
    assert parts["count_readout_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-5)
    assert parts["count_readout_hit"] == pytest.approx(sum(hits) / len(hits))
    assert case.total.item() == pytest.approx(
        case.plain.item() + 0.5 * parts["count_readout_loss"], rel=1e-5)
    with pytest.raises(ValueError, match="two look-up losses teach the same head"):
        TrainConfig(out="x", count_readout_weight=0.5, count_head=0)


def batch_item(batch: od.Batch, image: int, pool: od.Pool) -> int:
    """The pool index of the batch's ``image``-th image (matched by its pixels)."""
    pixels = od.pixels(pool.images)
    return int(((pixels - batch.pixel_values[image]).abs().flatten(1).sum(1) == 0).nonzero()[0, 0])


def test_members_lookups_point_from_each_list_count_to_the_colour_words_it_names(
        pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    tok = organism[1].tokenizer
    image_id = tok.convert_tokens_to_ids(tok.image_token)
    seqs = drills.encode_drills(organism[1], pool, "cogvision", n_image=9, seed=5, positions=0,
                                counts=3, groups=0.5, lookups=True)
    lists = 0
    for seq in seqs:
        members: dict[int, list[int]] = {}
        tallied: dict[int, list[int]] = {}
        counted = {query for query, _, kind in seq.lookups if kind == referents.COUNTED}
        for query, key, kind in seq.lookups:
            if kind == referents.MEMBERS:
                members.setdefault(query, []).append(key)
            elif kind == referents.MEMBER_TALLY:
                tallied.setdefault(query, []).append(key)
        image = (seq.ids == image_id).nonzero()[:, 0].tolist()
        listed: dict[int, list[int]] = {}
        for query, key, kind in seq.lookups:
            if kind in (referents.LISTED, referents.COUNTED):
                listed.setdefault(query * 10 + kind, []).append(key)
        assert {q for q, _, kind in seq.lookups if kind == referents.LISTED} == set(members)
        for query, words in members.items():
            assert query in counted  # a count's answer looks up its question's colour words
            # its counted objects again, for the read-out from the members head
            assert listed[query * 10 + referents.LISTED] == listed[
                query * 10 + referents.COUNTED]
            before = tok.decode(seq.ids[:query + 1].tolist()).rsplit("colours are", 1)[-1]
            said = [tok.decode(seq.ids[k: k + 1].tolist()).strip() for k in words]
            assert before.split("?")[0].replace(" ", "") == ",".join(said)
            assert words == sorted(words) and words[-1] < query
            lists += 1
        # each of those words (and nothing else) tallies the 9 image tokens
        assert set(tallied) == {k for words in members.values() for k in words}
        assert all(sorted(keys) == image for keys in tallied.values())
        # and counts the objects of its colour, with the sink first
        scene = pool.scenes[seq.item]
        for word in tallied:
            keys = [k for q, k, kind in seq.lookups if q == word
                    and kind == referents.MEMBER_COUNTED]
            colour = tok.decode(seq.ids[word: word + 1].tolist()).strip()
            cells = sorted(o.row * 3 + o.col for o in scene.where(colour=colour))
            assert keys == [0, *(image[0] + cell for cell in cells)]
    assert lists >= 2 * len(seqs)  # 3 list-counts per drill (fewer where a scene has 1 colour)


def test_step_loss_members_head_and_its_tallies(pool: od.Pool, organism) -> None:  # type: ignore[no-untyped-def]
    from cogvision.organism.train import aux_heads, step_loss

    model, processor = organism
    seqs = drills.encode_drills(processor, pool, "cogvision", n_image=9, seed=5, positions=0,
                                counts=3, lookups=True)[:8]
    batch = od.collate(seqs, pool, model.config.text_config.pad_token_id, pack=400)
    members = ol.of_kind(batch.lookups, referents.MEMBERS)
    tallied = ol.of_kind(batch.lookups, referents.TALLIED)
    both = ol.of_kind(batch.lookups, referents.TALLIED, referents.MEMBER_TALLY)
    assert members is not None and tallied is not None and both is not None
    assert len(both) > len(tallied)
    config = TrainConfig(out="x", d_model=32, n_layers=2, n_heads=4, lookup_weight=0,
                         chain_weight=0, tally_weight=0.5, tally_readout_weight=0)
    heads = aux_heads(config)
    model.eval()
    with torch.no_grad():
        plain, parts = step_loss(model, heads, batch, config)
        weighted, on = step_loss(model, heads, batch, config.model_copy(update={
            "members_weight": 2.0, "members_layer": 1, "members_head": 3}))
        with ol.capture_attention_inputs(model, 1) as seen:
            model(**batch.model_inputs())
        member, member_hit = ol.lookup_loss(model, seen[-1], 1, 3, members)
        tally, _ = ol.lookup_loss(model, seen[-1], 1, 2, tallied)
        tally_both, _ = ol.lookup_loss(model, seen[-1], 1, 2, both)
    # Off, the tally head learns from the counts alone; on, also from the colour words.
    assert parts["tally_loss"] == tally.item() and on["tally_loss"] == tally_both.item()
    assert on["members_loss"] == member.item() and on["members_hit"] == member_hit
    assert torch.allclose(weighted, plain - 0.5 * tally + 0.5 * tally_both + 2.0 * member)
    # The colour words' count read-out: from layer 1's input at each word, to its count.
    counting = config.model_copy(update={"members_count_weight": 0.5, "members_layer": 1})
    heads = aux_heads(counting)
    assert heads.member_count is not None and heads.member_count.in_features == 32
    words = ol.of_kind(batch.lookups, referents.MEMBER_COUNTED)
    assert words is not None
    with torch.no_grad():
        read, read_parts = step_loss(model, heads, batch, counting)
        by_hand, hit = ol.count_readout_loss(seen[-1]["hidden_states"], 0, 32,
                                             heads.member_count, words)
    assert read_parts["members_count_loss"] == by_hand.item()
    assert read_parts["members_count_hit"] == hit
    assert torch.allclose(read, plain + 0.5 * by_hand)
    # The list count's read-out from the members head's output at the count's answer.
    reading = config.model_copy(update={"members_readout_weight": 0.5, "members_layer": 1,
                                        "members_head": 3})
    heads = aux_heads(reading)
    assert heads.listed is not None and heads.listed.in_features == 8
    answers = ol.of_kind(batch.lookups, referents.LISTED)
    assert answers is not None
    with torch.no_grad(), ol.capture_head_outputs(model, 1) as said:
        model(**batch.model_inputs())
        total, listed_parts = step_loss(model, heads, batch, reading)
        by_hand, hit = ol.count_readout_loss(said[0], 3, 8, heads.listed, answers)
    assert listed_parts["members_readout_loss"] == by_hand.item()
    assert listed_parts["members_readout_hit"] == hit
    assert torch.allclose(total, plain + 0.5 * by_hand)
    with pytest.raises(ValueError, match=r"members head L2H1 is outside"):
        TrainConfig(out="x", n_layers=2, chain_weight=0, members_weight=0.25)
