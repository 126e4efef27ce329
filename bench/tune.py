"""Benchmark: vlforge's LoRA training loop against a plain HF Trainer + peft baseline, and IAA against LoRA.

In one run, on the same model (default: the embedded SmolLM2-135M-Instruct), the same tokenized
samples and the same batch size, it times optimizer steps of
  1. vlforge: `train_stages` with one lora stage on the assembled model (text samples, so the step is the
     LLM's; the vision tower is not run),
  2. baseline: `transformers.Trainer` on the peft-wrapped causal LM (same LoRA config, AdamW, cosine
     schedule, clipping), fed the same padded batches,
alternating the two `--rounds` times so that load from other processes hits both alike. A step's time
is the wall time between the ends of consecutive steps (data, forward, backward, optimizer); the first
`--warmup` steps of each run are dropped. Then it times IAA and LoRA steps on image samples and
counts their trainable parameters.

    .venv/bin/python bench/tune.py [--llm embedded] [--batch 4] [--steps 4] [--warmup 1] [--rounds 3] [--threads 1]

Prints one `name value` figure per line; the ratio figures are the comparable ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from pipeline.tune.collate import ChatEncoder, Collator, Encoded  # noqa: E402
from pipeline.tune.config import TuneSection  # noqa: E402
from pipeline.tune.data import TuneExample  # noqa: E402
from pipeline.tune.embedded import resolve  # noqa: E402
from pipeline.tune.model import build_model  # noqa: E402
from pipeline.tune.train import train_stages  # noqa: E402

LORA = {"method": "lora", "lr": 1e-4, "rank": 8, "alpha": 16, "dropout": 0.05, "warmup": 0.0,
        "schedule": "cosine", "max_grad_norm": 1.0}


def text_examples(n: int) -> list[TuneExample]:
    """Short question/answer conversations of similar length (arithmetic with a sentence of context)."""
    out = []
    for i in range(n):
        a, b = 17 + 7 * i, 25 + 3 * i
        q = (f"A shop sold {a} apples in the morning and {b} apples in the afternoon. "
             f"How many apples did it sell that day? Answer with a number.")
        out.append(TuneExample(id=f"t{i}", messages=[{"role": "user", "content": q},
                                                     {"role": "assistant", "content": f"It sold {a + b} apples."}]))
    return out


def image_examples(folder: Path, n: int) -> list[TuneExample]:
    """Conversations about real public-domain photos from scikit-image."""
    from PIL import Image
    from skimage import data

    names = ["astronaut", "coffee", "chelsea", "rocket", "camera", "coins"]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        p = folder / f"{name}.png"
        if not p.exists():
            Image.fromarray(getattr(data, name)()).convert("RGB").save(p)
        paths.append(str(p))
    return [TuneExample(id=f"m{i}", images=[paths[i % len(paths)]], messages=[
        {"role": "user", "content": "<image>\nWhat is shown in this picture? Answer in one short sentence."},
        {"role": "assistant", "content": f"A photo named {names[i % len(names)]}."}]) for i in range(n)]


Step = tuple[float, float]  # (wall seconds, CPU seconds of this process)


def _intervals(stamps: list[tuple[float, float]]) -> list[Step]:
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:])]


class Counting:
    """Wraps a collate function and records the non-padding tokens of every batch it makes."""

    def __init__(self, collate: Collator) -> None:
        self.collate = collate
        self.tokens: list[int] = []

    def __call__(self, items: list[Encoded]) -> dict[str, torch.Tensor]:
        batch = self.collate(items)
        self.tokens.append(int(batch["attention_mask"].sum()))
        return batch


def vlforge_step_times(llm: str, vision: str, items: list[Encoded], stage: dict, batch: int, steps: int,
                       out: str) -> tuple[list[Step], list[int], int]:
    """Per-step seconds, tokens per timed step and trainable parameters of vlforge's loop."""
    torch.manual_seed(0)
    built = build_model(llm, vision)
    collate = Counting(Collator(ChatEncoder(built.tokenizer, built.model.num_image_tokens, 4096).pad_id,
                                built.image_spec))
    section = TuneSection.model_validate({"stages": [{**stage, "steps": steps}], "batch_size": batch,
                                          "resume": False, "seed": 0})
    stamps: list[tuple[float, float]] = []
    result = train_stages(built.model, section, items, collate, out, torch.device("cpu"),
                          on_step=lambda _info: stamps.append((time.perf_counter(), time.process_time())))
    return _intervals(stamps), collate.tokens[1:], result.stats[0]["trainable_params"]


def trainer_step_times(llm_path: str, items: list[Encoded], pad_id: int, batch: int, steps: int,
                       out: str) -> tuple[list[Step], list[int]]:
    """Per-step seconds and tokens per step of HF Trainer on the peft-wrapped causal LM."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from pipeline.tune.config import DEFAULT_LORA_TARGETS

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(llm_path, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=LORA["rank"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                             target_modules=list(DEFAULT_LORA_TARGETS), task_type="CAUSAL_LM"))
    collate = Counting(Collator(pad_id, None))

    def collator(rows: list[dict]) -> dict[str, torch.Tensor]:
        b = collate([r["item"] for r in rows])
        return {"input_ids": b["input_ids"], "attention_mask": b["attention_mask"], "labels": b["labels"]}

    class Rows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(items)

        def __getitem__(self, i: int) -> dict:
            return {"item": items[i]}

    stamps: list[tuple[float, float]] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001, ANN003, ANN201
            stamps.append((time.perf_counter(), time.process_time()))

    args = TrainingArguments(output_dir=out, per_device_train_batch_size=batch, max_steps=steps,
                             learning_rate=LORA["lr"], lr_scheduler_type="cosine", warmup_steps=0,
                             max_grad_norm=1.0, weight_decay=0.0, optim="adamw_torch", use_cpu=True,
                             report_to=[], logging_strategy="no", save_strategy="no", disable_tqdm=True,
                             dataloader_pin_memory=False, remove_unused_columns=False, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=Rows(), data_collator=collator, callbacks=[Clock()])
    trainer.train()
    return _intervals(stamps), collate.tokens[1:steps]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llm", default="embedded")
    ap.add_argument("--vision", default="embedded")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps at the start of each run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 keeps a shared machine's load from stalling the thread pool")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    llm, vision = resolve(a.llm, a.vision)
    total = a.warmup + a.steps + 1  # +1: a step's time is measured from the end of the one before
    work = Path(tempfile.mkdtemp(prefix="vlforge-bench-tune-"))
    torch.manual_seed(0)
    built = build_model(llm, vision)
    enc = ChatEncoder(built.tokenizer, built.model.num_image_tokens, 4096)
    text_items = [enc.encode(e) for e in text_examples(a.batch * total)]
    mm_items = [enc.encode(e) for e in image_examples(work / "images", a.batch * total)]
    del built
    print(f"model {llm}")
    print(f"threads {torch.get_num_threads()}")
    print(f"batch {a.batch}")
    print(f"tokens_per_sample {statistics.mean(it.length for it in text_items):.1f}")

    ours: list[Step] = []
    base: list[Step] = []
    ours_tok: list[int] = []
    base_tok: list[int] = []
    for r in range(a.rounds):
        t, tok, lora_params = vlforge_step_times(llm, vision, text_items, LORA, a.batch, total, str(work / f"v{r}"))
        ours += t[a.warmup:]
        ours_tok += tok[a.warmup:]
        t, tok = trainer_step_times(llm, text_items, enc.pad_id, a.batch, total, str(work / f"h{r}"))
        base += t[a.warmup:]
        base_tok += tok[a.warmup:]
    # medians: robust to the bursts of load other processes put on a shared machine. CPU seconds of
    # this process (one thread) count the work done whatever else runs; wall seconds are what a user waits.
    for k, clock in ((0, "wall"), (1, "cpu")):
        ours_tps = statistics.median(ours_tok) / statistics.median(s[k] for s in ours)
        base_tps = statistics.median(base_tok) / statistics.median(s[k] for s in base)
        print(f"lora_vlforge_tokens_per_{clock}_s {ours_tps:.1f}")
        print(f"lora_hf_trainer_tokens_per_{clock}_s {base_tps:.1f}")
        print(f"lora_tokens_per_s_ratio_{clock} {ours_tps / base_tps:.3f}")

    t_lora, _, lora_params = vlforge_step_times(llm, vision, mm_items, LORA, a.batch, total, str(work / "lm"))
    iaa = {"method": "iaa", "lr": 2e-5, "warmup": 0.0}
    t_iaa, _, iaa_params = vlforge_step_times(llm, vision, mm_items, iaa, a.batch, total, str(work / "iaa"))
    lora_s = statistics.median(s[1] for s in t_lora[a.warmup:])
    iaa_s = statistics.median(s[1] for s in t_iaa[a.warmup:])
    print(f"lora_image_step_cpu_s {lora_s:.3f}")
    print(f"iaa_image_step_cpu_s {iaa_s:.3f}")
    print(f"iaa_step_time_ratio_vs_lora {iaa_s / lora_s:.3f}")
    print(f"lora_trainable_params {lora_params}")
    print(f"iaa_trainable_params {iaa_params}")
    print(f"iaa_trainable_params_ratio_vs_lora {iaa_params / lora_params:.2f}")


if __name__ == "__main__":
    main()
