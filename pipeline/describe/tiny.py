"""Tiny, randomly initialised vision-language models of real architectures, for tests and the benchmark.

No vision-language weights can be had offline, so these are built from configs (a few hundred thousand
parameters), given a byte-level tokenizer made here, and saved with `save_pretrained`; the describe stage then
loads them through the same `from_pretrained` path a real checkpoint takes. Their replies are random.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Qwen2-VL's special tokens (the chat, vision and grounding markers).
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>", "<|object_ref_start|>", "<|object_ref_end|>",
                 "<|box_start|>", "<|box_end|>"]

#: A minimal Qwen-style chat template: content lists with image parts, as Qwen2-VL's processor expects.
QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def byte_tokenizer(specials: list[str], eos: str, pad: str):  # -> PreTrainedTokenizerFast
    """A byte-level BPE tokenizer with no merges (256 byte symbols) plus `specials`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=pad,
                                   additional_special_tokens=[s for s in specials if s not in (eos, pad)])


def _save(model: Any, out: Path, eos_id: int, pad_id: int, *parts: Any) -> Path:
    """Give a tiny model's generation config its end and padding tokens, and save it with its processor
    parts into `out`."""
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = pad_id
    model.save_pretrained(out)
    for part in parts:
        part.save_pretrained(out)
    return out


def build_tiny_qwen2vl(out: str | Path, hidden: int = 32, layers: int = 2, version: str = "2") -> Path:
    """Save a tiny random Qwen2-VL (`version` "2") or Qwen2.5-VL ("2.5") with its processor to `out`."""
    import torch
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLConfig,
                              Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil)

    if version not in ("2", "2.5"):
        raise ValueError(f"version must be '2' or '2.5', got {version!r}")

    out = Path(out)
    tok = byte_tokenizer(QWEN_SPECIALS, eos="<|im_end|>", pad="<|endoftext|>")
    ids = {s: tok.convert_tokens_to_ids(s) for s in QWEN_SPECIALS}
    # 28x28 pixel units: at most 4x4 of them, so an image is at most 16 patches -> 4 merged visual tokens.
    # The PIL image processor needs no torchvision. The processor is saved as its parts (the layout of a hub
    # checkpoint: preprocessor_config.json, tokenizer files, chat_template.jinja), because a Qwen2VLProcessor
    # cannot be built or saved without a video processor, which needs torchvision.
    image_processor = Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=112 * 112)
    heads = 4
    if version == "2":
        config_cls, model_cls = Qwen2VLConfig, Qwen2VLForConditionalGeneration
        vision = {"depth": 1, "embed_dim": hidden, "hidden_size": hidden, "num_heads": heads, "mlp_ratio": 2,
                  "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "in_channels": 3}
    else:  # Qwen2.5-VL: windowed attention in the tower, a full-attention block listed by index
        config_cls, model_cls = Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
        vision = {"depth": 2, "hidden_size": hidden, "intermediate_size": hidden * 2, "num_heads": heads,
                  "out_hidden_size": hidden, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                  "window_size": 56, "fullatt_block_indexes": [1], "in_channels": 3}
    config = config_cls(
        text_config={"vocab_size": len(tok), "hidden_size": hidden, "intermediate_size": hidden * 2,
                     "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": 2,
                     "max_position_embeddings": 2048,
                     "rope_scaling": {"type": "mrope", "rope_type": "default",
                                      "mrope_section": [hidden // heads // 4, hidden // heads // 8,
                                                        hidden // heads // 8]},
                     "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
                     "bos_token_id": ids["<|im_start|>"], "tie_word_embeddings": True},
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    torch.manual_seed(0)
    model = model_cls(config).eval()
    _save(model, out, ids["<|im_end|>"], ids["<|endoftext|>"], image_processor, tok)
    (out / "chat_template.jinja").write_text(QWEN_CHAT_TEMPLATE)
    return out


#: A minimal LLaVA-1.5-style chat template (`USER: <image>\n... ASSISTANT:`).
LLAVA_CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{% if m['role'] != 'user' %}</s>{% endif %} {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}")


def build_tiny_llava(out: str | Path, hidden: int = 32, layers: int = 2, image_size: int = 28) -> Path:
    """Save a tiny random LLaVA (CLIP vision tower + Llama) with its processor to `out`."""
    import torch
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    out = Path(out)
    specials = ["</s>", "<s>", "<pad>", "<image>"]
    tok = byte_tokenizer(specials, eos="</s>", pad="<pad>")
    tok.bos_token = "<s>"
    ids = {s: tok.convert_tokens_to_ids(s) for s in specials}
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=14,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_CHAT_TEMPLATE, image_token="<image>")
    config = LlavaConfig(
        vision_config={"model_type": "clip_vision_model", "hidden_size": hidden, "intermediate_size": hidden * 2,
                       "num_hidden_layers": layers, "num_attention_heads": 4, "image_size": image_size,
                       "patch_size": 14, "projection_dim": hidden},
        text_config={"model_type": "llama", "vocab_size": len(tok), "hidden_size": hidden,
                     "intermediate_size": hidden * 2, "num_hidden_layers": layers, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "max_position_embeddings": 2048,
                     "eos_token_id": ids["</s>"], "pad_token_id": ids["<pad>"], "bos_token_id": ids["<s>"]},
        image_token_id=ids["<image>"], vision_feature_layer=-1, vision_feature_select_strategy="default",
        projector_hidden_act="gelu")
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    return _save(model, out, ids["</s>"], ids["<pad>"], processor)


#: Florence-2's task tokens. Florence2Processor rewrites a prompt that is one of them into its natural-language
#: question before tokenizing, so the model never sees them; they are in the tokenizer (as in the released
#: checkpoints' vocabularies) so that replies echoing them decode as one token.
FLORENCE_TASKS = ["<OCR>", "<OCR_WITH_REGION>", "<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>",
                  "<OD>", "<DENSE_REGION_CAPTION>", "<CAPTION_TO_PHRASE_GROUNDING>",
                  "<REFERRING_EXPRESSION_SEGMENTATION>", "<REGION_TO_SEGMENTATION>", "<OPEN_VOCABULARY_DETECTION>",
                  "<REGION_TO_CATEGORY>", "<REGION_TO_DESCRIPTION>", "<REGION_TO_OCR>", "<REGION_PROPOSAL>"]


def build_tiny_florence2(out: str | Path, hidden: int = 32, layers: int = 1, image_size: int = 64) -> Path:
    """Save a tiny random Florence-2 (DaViT vision tower + BART encoder-decoder) with its processor to `out`.

    The tokenizer holds BART's specials, `<image>`, the 1000 location tokens `<loc_0>`..`<loc_999>` and the
    task tokens. The vision tower downsamples by 4*2*2*2 = 32, so an `image_size` square image is
    (image_size/32)^2 spatial tokens plus one pooled token: the processor's `image_seq_length`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (CLIPImageProcessorPil, Florence2Config, Florence2ForConditionalGeneration,
                              Florence2Processor, PreTrainedTokenizerFast)

    out = Path(out)
    if image_size % 32:
        raise ValueError(f"image_size must be a multiple of 32, got {image_size}")
    base = ["<s>", "<pad>", "</s>", "<unk>", "<image>"]
    locs = [f"<loc_{i}>" for i in range(1000)]
    specials = base + FLORENCE_TASKS + locs
    # byte_tokenizer's construction, but with BART's four specials and `<image>` registered as the tokenizer's
    # image_token (Florence2Processor reads tokenizer.image_token / image_token_id).
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    backend = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(sorted(alphabet))}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(specials)
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                  unk_token="<unk>", extra_special_tokens={"image_token": "<image>"})
    ids = {s: tok.convert_tokens_to_ids(s) for s in base}
    seq_len = (image_size // 32) ** 2 + 1
    image_processor = CLIPImageProcessorPil(size={"height": image_size, "width": image_size}, do_center_crop=False,
                                            crop_size={"height": image_size, "width": image_size},
                                            image_seq_length=seq_len)
    processor = Florence2Processor(image_processor=image_processor, tokenizer=tok)
    dims = [hidden // 2, hidden // 2, hidden, hidden]
    config = Florence2Config(
        vision_config={"depths": [1, 1, 1, 1], "embed_dim": dims, "num_heads": [2, 2, 4, 4],
                       "num_groups": [2, 2, 4, 4], "window_size": 2, "drop_path_rate": 0.0,
                       "projection_dim": hidden, "max_position_embeddings": 16, "max_temporal_embeddings": 4},
        text_config={"model_type": "bart", "vocab_size": len(tok), "d_model": hidden, "encoder_layers": layers,
                     "decoder_layers": layers, "encoder_attention_heads": 4, "decoder_attention_heads": 4,
                     "encoder_ffn_dim": hidden * 2, "decoder_ffn_dim": hidden * 2, "max_position_embeddings": 256,
                     "bos_token_id": ids["<s>"], "pad_token_id": ids["<pad>"], "eos_token_id": ids["</s>"],
                     "decoder_start_token_id": ids["</s>"], "forced_bos_token_id": ids["<s>"],
                     "forced_eos_token_id": ids["</s>"]},
        image_token_id=ids["<image>"])
    torch.manual_seed(0)
    model = Florence2ForConditionalGeneration(config).eval()
    gc = model.generation_config
    gc.bos_token_id, gc.eos_token_id, gc.pad_token_id = ids["<s>"], ids["</s>"], ids["<pad>"]
    # BART's convention, as in the released checkpoints: decoding starts at </s> and <s> is forced next.
    gc.decoder_start_token_id, gc.forced_bos_token_id = ids["</s>"], ids["<s>"]
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


#: A minimal Idefics3 / SmolVLM chat template (`User:<image>...<end_of_utterance>\nAssistant:`).
IDEFICS3_CHAT_TEMPLATE = (
    "<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}:"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}")


def build_tiny_idefics3(out: str | Path, hidden: int = 32, layers: int = 2, image_size: int = 32,
                        patch_size: int = 8) -> Path:
    """Save a tiny random Idefics3 (SmolVLM's architecture: SigLIP-style tower + pixel shuffle + Llama) with its
    processor to `out`. Images are not split into tiles: each is one `image_size` square, which the pixel
    shuffle (scale factor 2) turns into (image_size/patch_size)^2 / 4 image tokens."""
    import torch
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil,
                              Idefics3Processor)

    out = Path(out)
    scale = 2
    grid = image_size // patch_size
    if image_size % patch_size or grid % scale:
        raise ValueError(f"image_size/patch_size must be a whole multiple of {scale}, got {image_size}/{patch_size}")
    specials = ["<|im_start|>", "<end_of_utterance>", "<|endoftext|>", "<fake_token_around_image>", "<image>",
                "<global-img>"] + [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)]
    tok = byte_tokenizer(specials, eos="<end_of_utterance>", pad="<|endoftext|>")
    tok.bos_token = "<|im_start|>"
    ids = {s: tok.convert_tokens_to_ids(s) for s in specials}
    image_processor = Idefics3ImageProcessorPil(size={"longest_edge": image_size},
                                                max_image_size={"longest_edge": image_size},
                                                do_image_splitting=False)
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tok,
                                  image_seq_len=grid * grid // (scale * scale), chat_template=IDEFICS3_CHAT_TEMPLATE)
    config = Idefics3Config(
        vision_config={"hidden_size": hidden, "intermediate_size": hidden * 2, "num_hidden_layers": layers,
                       "num_attention_heads": 4, "image_size": image_size, "patch_size": patch_size},
        text_config={"model_type": "llama", "vocab_size": len(tok), "hidden_size": hidden,
                     "intermediate_size": hidden * 2, "num_hidden_layers": layers, "num_attention_heads": 4,
                     "num_key_value_heads": 2, "max_position_embeddings": 2048,
                     "eos_token_id": ids["<end_of_utterance>"], "pad_token_id": ids["<|endoftext|>"],
                     "bos_token_id": ids["<|im_start|>"]},
        image_token_id=ids["<image>"], scale_factor=scale, pad_token_id=ids["<|endoftext|>"])
    torch.manual_seed(0)
    model = Idefics3ForConditionalGeneration(config).eval()
    return _save(model, out, ids["<end_of_utterance>"], ids["<|endoftext|>"], processor)
