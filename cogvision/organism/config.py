"""The options of ``cogvision organism train`` (``TrainConfig``, recorded in the manifest); the
schedule they drive is described in ``cogvision.organism.train``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cogvision.organism import data as od
from cogvision.organism.model import OrganismSpec
from cogvision.organism.referents import CHAINED, COUNTED, MEMBERS, NAMED, TALLIED
from cogvision.sources.synth import SceneOptions


class TrainConfig(BaseModel):
    """Options of ``cogvision organism train`` (recorded in the manifest). The defaults are the
    first command of the shipped organism's recipe (W1): two stages in one run (5,000 +
    ``restart_steps`` 4,000 steps) on two threads, packed batches, position and count drills,
    supervised look-up heads L1H0 (named objects) and L2H0 (objects reached through the chain of
    steps), and a tally head L1H2 with a read-out of the scene's counts; 73-115 minutes on 2 CPU
    cores (``--minutes`` caps it; ``--resume`` continues a capped run). The shipped weights are
    W1 fine-tuned with ``benchmarks/configs/organism_count_finetune.yaml``. Smaller models must
    turn off the look-up losses whose heads they lack (``chain_weight=0``, ``tally_weight=0``)."""

    model_config = ConfigDict(extra="forbid")

    out: str
    variant: str = "cogvision"
    seed: int = 0
    minutes: float = Field(default=60.0, gt=0, description=(
        "Wall-time cap of the whole run (a capped run saves its place; organism train --resume "
        "continues it)."))
    threads: int | None = Field(default=2, ge=1)
    device: str = Field(default="cpu", description="torch device of the run (cpu, cuda).")
    init_from: str | None = Field(default=None, description="Continue from a saved organism.")
    image_size: int = 96
    grid: int = 3
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 8
    intermediate: int = 384
    vision_hidden: int = 128
    vision_layers: int = 2
    easy_items: int = 2000
    full_items: int = 10000
    val_items: int = 150
    vision_steps: int = Field(default=400, ge=0)
    vision_lr: float = 1e-3
    aux_head_lr: float = 1e-2
    steps: int = Field(default=5000, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    min_lr: float = 1e-4
    warmup: int = Field(default=100, ge=0)
    weight_decay: float = 0.01
    aux_weight: float = 0.5
    curriculum_fraction: float = 0.15
    easy_mix: float = 0.2
    dense: bool = True
    cell_words: bool = Field(default=True, description="One token per grid cell name.")
    drill_mix: float = Field(default=0.25, ge=0, le=1)
    drill_batch: int = Field(default=16, ge=1)
    drill_positions: int = Field(default=9, ge=0, description=(
        "\"In which row and column is ...?\" steps per drill (capped by the scene's objects)."))
    drill_counts: int = Field(default=3, ge=0, description=(
        "Count steps per drill of each kind: over the colour list in context, and by colour or "
        "shape (cogvision.organism.drills.count_blocks; 0: none)."))
    drill_group_counts: float = Field(default=0.0, ge=0, le=1, description=(
        "Share of the drills' list-counts that ask about a named colour group's members, as "
        "the benchmark's colour-group program does (0: all random sets of 1-3 colours)."))
    pack: int = Field(default=160, ge=0, description=(
        "Pack a batch's sequences into rows of this many tokens (0: one padded row each); "
        "the same loss on fewer tokens."))
    lookup_weight: float = Field(default=0.25, ge=0, description=(
        "Weight of the supervised look-up loss (0: off; see cogvision.organism.lookup)."))
    lookup_layer: int = Field(default=1, ge=0, description="Decoder layer of the look-up head.")
    lookup_head: int = Field(default=0, ge=0, description="Head taught to look up named objects.")
    chain_weight: float = Field(default=0.25, ge=0, description=(
        "Weight of the supervised look-up loss on objects reached through the chain of steps "
        "(0: off; see cogvision.organism.referents.step_referents)."))
    chain_layer: int = Field(default=2, ge=0, description="Decoder layer of the chain head.")
    chain_head: int = Field(default=0, ge=0, description="Head taught the chained look-ups.")
    count_weight: float = Field(default=0.0, ge=0, description=(
        "Weight of the supervised look-up loss on the objects a count counts "
        "(0: off; see cogvision.organism.lookup)."))
    count_layer: int = Field(default=1, ge=0, description="Decoder layer of the count head.")
    count_head: int = Field(default=1, ge=0, description="Head taught the counted look-ups.")
    tally_weight: float = Field(default=0.25, ge=0, description=(
        "Weight of the supervised look-up loss from a count's answer to every image token "
        "(uniform: a histogram of the objects; 0: off; see cogvision.organism.lookup)."))
    tally_layer: int = Field(default=1, ge=0, description="Decoder layer of the tally head.")
    tally_head: int = Field(default=2, ge=0, description="Head taught the tallied look-ups.")
    tally_readout_weight: float = Field(default=0.25, ge=0, description=(
        "Weight of a linear read-out of the scene's colour and shape counts from the tally "
        "head's output at each count (0: off; cogvision.organism.lookup.tally_readout_loss)."))
    count_sink: float = Field(default=1.0, gt=0, description=(
        "Weight of the sink against each counted object in the count head's target (1: "
        "uniform, the sink's share 1 / (n + 1); 4: 4 / (4 + n), which spaces larger counts "
        "further apart)."))
    count_readout_weight: float = Field(default=0.0, ge=0, description=(
        "Weight of a linear read-out of each count's answer from the count head's output at the "
        "count (0: off; the count head is taught by it even with count_weight=0; "
        "cogvision.organism.lookup.count_readout_loss)."))
    members_weight: float = Field(default=0.0, ge=0, description=(
        "Weight of a supervised look-up from the answer of \"How many of those colours are "
        "<colours>?\" to the colour words the question names, which also tally the image "
        "(uniform over every image token, as the tally head does from a count); 0: off "
        "(cogvision.organism.referents, kinds MEMBERS and MEMBER_TALLY)."))
    members_layer: int = Field(default=2, ge=0, description="Decoder layer of the members head.")
    members_head: int = Field(default=1, ge=0, description="Head taught the members look-ups.")
    members_readout_weight: float = Field(default=0.0, ge=0, description=(
        "Weight of a linear read-out of a list count's answer from the members head's output "
        "at its answer (0: off; cogvision.organism.lookup.count_readout_loss)."))
    members_count_weight: float = Field(default=0.0, ge=0, description=(
        "Weight of a linear read-out of each colour word's count (the scene's objects of that "
        "colour) from the members head layer's input at that word (0: off; "
        "cogvision.organism.lookup.count_readout_loss)."))
    checkpoint_every: int = 200
    eval_every: int = 1000
    restart_steps: int = Field(default=4000, ge=0, description="Steps of a second stage (0: none).")
    restart_lr: float = 5e-4
    restart_warmup: int = 50

    @model_validator(mode="after")
    def _lookup_heads_exist(self) -> TrainConfig:
        for name, layer, head in self.taught_heads():
            if layer >= self.n_layers or head >= self.n_heads:
                raise ValueError(f"{name} head L{layer}H{head} is outside the decoder's "
                                 f"{self.n_layers} layers x {self.n_heads} heads")
        if self.members_count_weight > 0 and self.members_layer >= self.n_layers:
            raise ValueError(f"members layer {self.members_layer} is outside the decoder's "
                             f"{self.n_layers} layers")
        taught = [(layer, head) for _, layer, head in self.taught_heads()]
        if len(set(taught)) < len(taught):
            raise ValueError(f"two look-up losses teach the same head: {taught}")
        return self

    def lookup_losses(self) -> list[tuple[str, int, float, int, int]]:
        """(name, kind, weight, layer, head) of each supervised look-up loss that is on."""
        every = [("lookup", NAMED, self.lookup_weight, self.lookup_layer, self.lookup_head),
                 ("chain", CHAINED, self.chain_weight, self.chain_layer, self.chain_head),
                 ("count", COUNTED, self.count_weight, self.count_layer, self.count_head),
                 ("tally", TALLIED, self.tally_weight, self.tally_layer, self.tally_head),
                 ("members", MEMBERS, self.members_weight, self.members_layer,
                  self.members_head)]
        return [loss for loss in every if loss[2] > 0]

    def taught_heads(self) -> list[tuple[str, int, int]]:
        """(name, layer, head) of every head a supervised loss teaches: the look-up losses'
        and the count head when only its read-out is on."""
        heads = [(name, layer, head) for name, _, _, layer, head in self.lookup_losses()]
        if self.count_readout_weight > 0 and not self.count_weight:
            heads.append(("count", self.count_layer, self.count_head))
        return heads

    def second_stage(self) -> TrainConfig:
        """The config a separate second ``organism train`` run would have (seed + 1)."""
        return self.model_copy(update={
            "seed": self.seed + 1, "steps": self.restart_steps, "lr": self.restart_lr,
            "warmup": self.restart_warmup, "vision_steps": 0, "curriculum_fraction": 0.0,
            "restart_steps": 0})

    def spec(self) -> OrganismSpec:
        return OrganismSpec(image_size=self.image_size, grid=self.grid, d_model=self.d_model,
                            n_layers=self.n_layers, n_heads=self.n_heads,
                            n_kv_heads=self.n_heads, intermediate=self.intermediate,
                            vision_hidden=self.vision_hidden, vision_layers=self.vision_layers)

    def scene_options(self, *, easy: bool = False) -> SceneOptions:
        return od.organism_scenes(self.image_size, self.grid, easy=easy)
