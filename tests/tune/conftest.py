"""Tiny real-architecture models and a tiny LLaVA JSON set for the tuning tests, built from configs.

Everything is written to a session temp folder and loaded back through the real loading code
(`from_pretrained`), so the tests exercise what a run does, at a size that trains in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = [
    "What colour is the square? Answer the question using a single word or phrase.",
    "red green blue yellow white black", "The square is red.", "Describe the image briefly.",
    "The capital of France is Paris.", "What is two plus two? Four.", "Name a fruit. Apple.",
    "user assistant system", "A small picture of a coloured square on a plain background.",
]


def make_tokenizer(folder: Path) -> None:
    """A byte-level BPE tokenizer (vocab ~300) with ChatML specials and a ChatML chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(CORPUS * 3, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    fast.save_pretrained(folder)


def make_llm(folder: Path, family: str = "llama", layers: int = 4, hidden: int = 32, seed: int = 0) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    make_tokenizer(folder)
    vocab = len(AutoTokenizer.from_pretrained(folder))
    common = dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  pad_token_id=0, eos_token_id=2, bos_token_id=1)
    torch.manual_seed(seed)
    if family == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common, tie_word_embeddings=True))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=False))
    model.save_pretrained(folder)


def make_vision(folder: Path, family: str = "siglip", seed: int = 0) -> None:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel, SiglipVisionConfig, SiglipVisionModel

    cfg = dict(hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2, image_size=16,
               patch_size=8)
    torch.manual_seed(seed)
    model = SiglipVisionModel(SiglipVisionConfig(**cfg)) if family == "siglip" else CLIPVisionModel(
        CLIPVisionConfig(**cfg))
    model.save_pretrained(folder)


COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 20)}


def make_dataset(root: Path, n_images: int = 8) -> Path:
    """A LLaVA JSON with `n_images` one-colour pictures (VQA rows) and six text-only rows."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    names = list(COLOURS)
    for i in range(n_images):
        colour = names[i % len(names)]
        w, h = (20 + i, 12 + i) if i % 2 else (12 + i, 20 + i)
        Image.new("RGB", (w, h), COLOURS[colour]).save(images / f"img{i}.png")
        rows.append({"id": f"vqa-{i}", "image": f"img{i}.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat colour is the square? Answer the question using a single "
                                       "word or phrase."},
            {"from": "gpt", "value": colour}]})
    facts = [("What is the capital of France?", "Paris"), ("What is two plus two?", "Four"),
             ("Name a fruit.", "Apple"), ("Say hello.", "Hello"), ("What colour is the sky?", "blue"),
             ("Describe a square.", "A shape with four equal sides.")]
    for j, (q, a) in enumerate(facts):
        rows.append({"id": f"text-{j}", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]})
    path = root / "llava.json"
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on shared cores a spinning thread pool costs 100x."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Paths of tiny models (llama, qwen2, siglip, clip) and a tiny dataset, built once per session."""
    root = tmp_path_factory.mktemp("tune")
    paths = {"llama": root / "llama", "qwen2": root / "qwen2", "siglip": root / "siglip", "clip": root / "clip",
             "data_root": root / "data"}
    make_llm(paths["llama"], "llama")
    make_llm(paths["qwen2"], "qwen2", layers=3)
    make_vision(paths["siglip"], "siglip")
    make_vision(paths["clip"], "clip")
    paths["data"] = make_dataset(paths["data_root"])
    paths["images"] = paths["data_root"] / "images"
    return paths


@pytest.fixture
def build(tiny: dict[str, Path]):
    """Factory: an assembled VisionLanguageModel (seeded projector) plus its tokenizer and image spec."""
    import torch

    from pipeline.tune.model import build_model

    def make(llm: str = "llama", vision: str = "siglip", seed: int = 0):
        torch.manual_seed(seed)
        return build_model(str(tiny[llm]), str(tiny[vision]))

    return make


def make_llava(folder: Path) -> None:
    """A tiny LLaVA-1.5-style model (CLIP tower, Llama text model) with its processor."""
    import torch
    from tokenizers import AddedToken
    from transformers import (AutoTokenizer, CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    make_tokenizer(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.add_special_tokens({"additional_special_tokens": [AddedToken("<image>", special=True, normalized=False)]})
    image_id = tok.convert_tokens_to_ids("<image>")
    vision = CLIPVisionConfig(hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
                              image_size=16, patch_size=8)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, eos_token_id=2)
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(LlavaConfig(vision_config=vision, text_config=text, image_token_id=image_id,
                                                      vision_feature_layer=-2,
                                                      vision_feature_select_strategy="default"))
    model.save_pretrained(folder)
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 16},
                                                                  crop_size={"height": 16, "width": 16}),
                               tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1, image_token="<image>", chat_template=CHATML)
    processor.save_pretrained(folder)
