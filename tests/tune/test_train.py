"""The loop's pieces: learning-rate schedule, batch order and sharding, bf16."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.tune.collate import ChatEncoder, Collator
from pipeline.tune.config import TuneSection
from pipeline.tune.data import load_examples
from pipeline.tune.train import BatchOrder, lr_factor, train_stages


def _stage(**kw):
    return TuneSection.model_validate({"stages": [{"method": "projector", "lr": 1.0, **kw}]}).stages[0]


def test_lr_schedules() -> None:
    cos = lr_factor(_stage(steps=10, warmup=0.2))
    assert [round(cos(s), 4) for s in range(10)] == [0.5, 1.0, 1.0, 0.9619, 0.8536, 0.6913, 0.5, 0.3087, 0.1464,
                                                      0.0381]
    lin = lr_factor(_stage(steps=4, warmup=0.0, schedule="linear"))
    assert [lin(s) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    const = lr_factor(_stage(steps=3, warmup=0.5, schedule="constant"))
    assert [const(s) for s in range(3)] == [0.5, 1.0, 1.0]


def test_batch_order_walks_seeded_epochs_and_shards_global_batches() -> None:
    order = BatchOrder(10, seed=3, stage_index=1)
    first_epoch = [i for g in range(5) for i in order.micro_batch(g, 2, 0, 1)]
    assert sorted(first_epoch) == list(range(10))  # an epoch visits every sample once
    assert first_epoch == [i for g in range(5) for i in BatchOrder(10, 3, 1).micro_batch(g, 2, 0, 1)]
    assert first_epoch != [i for g in range(5) for i in BatchOrder(10, 3, 2).micro_batch(g, 2, 0, 1)]
    # two workers with batch 2 see, between them, exactly the global batch of one worker with batch 4
    for g in range(6):
        shards = order.micro_batch(g, 2, 0, 2) + order.micro_batch(g, 2, 1, 2)
        assert shards == order.micro_batch(g, 4, 0, 1)


def test_bf16_autocast_trains(build, tiny: dict[str, Path], tmp_path: Path) -> None:
    built = build("llama")
    enc = ChatEncoder(built.tokenizer, built.model.num_image_tokens, 256)
    examples, _ = load_examples(str(tiny["data"]), str(tiny["images"]))
    items = [enc.encode(e) for e in examples]
    section = TuneSection.model_validate({"stages": [{"method": "lora", "lr": 1e-2, "steps": 2, "rank": 2}],
                                          "precision": "bf16", "batch_size": 4, "resume": False})
    before = built.model.projector.fc1.weight.detach().clone()
    result = train_stages(built.model, section, items, Collator(enc.pad_id, built.image_spec), str(tmp_path),
                          torch.device("cpu"))
    assert built.model.projector.fc1.weight.dtype == torch.float32  # weights stay fp32 under autocast
    assert not torch.equal(before, built.model.projector.fc1.weight)
    assert all(torch.isfinite(torch.tensor(s["loss_last"])) for s in result.stats)


def test_no_samples_is_a_clear_error(build, tmp_path: Path) -> None:
    built = build("llama")
    section = TuneSection.model_validate({"stages": [{"method": "iaa", "lr": 1e-2, "steps": 1}]})
    with pytest.raises(ValueError, match="no training samples"):
        train_stages(built.model, section, [], None, str(tmp_path), torch.device("cpu"))


def test_image_only_stage_without_images_is_a_clear_error(build, tiny: dict[str, Path], tmp_path: Path) -> None:
    built = build("llama")
    enc = ChatEncoder(built.tokenizer, built.model.num_image_tokens, 256)
    examples, _ = load_examples(str(tiny["data"]), str(tiny["images"]))
    text = [enc.encode(e) for e in examples if e.text_only]
    section = TuneSection.model_validate({"stages": [{"method": "projector", "lr": 1e-2, "steps": 1}]})
    with pytest.raises(ValueError, match="stage projector trains on samples with images, and there are none"):
        train_stages(built.model, section, text, Collator(enc.pad_id, built.image_spec), str(tmp_path),
                     torch.device("cpu"))
