"""Saving only what was trained, loading it back; training checkpoints for resume.

A tuned model folder holds:

    manifest.json            base model paths, the stages, what each file is
    projector.safetensors    the projector (trained by every method)
    lora/                    peft adapter (adapter_config.json + adapter_model.safetensors), for lora
    iaa.safetensors          the inner adaptor's own modules, for iaa
    llm.safetensors          the LLM tensors that last_layers / full changed, keyed as in the base checkpoint

The base checkpoints are never rewritten: loading = base from its path + these files on top.
Training checkpoints (`checkpoints/<stage>-<step>/`) add the optimizer, the scheduler and the RNG
state, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from pipeline.tune.config import Stage, TuneSection
from pipeline.tune.iaa import InnerAdaptor
from pipeline.tune.methods import has_lora, prepare_structure

MANIFEST = "manifest.json"
FORMAT = "vlforge-tune/1"


def llm_trained_keys(model: nn.Module, trained: set[str]) -> list[str]:
    """Base-checkpoint keys of LLM tensors that were trained (not adapters): `llm.` stripped."""
    if has_lora(model):
        return []
    return sorted(n[len("llm."):] for n in trained if n.startswith("llm."))


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous()


def save_tuned(model: nn.Module, out: str | os.PathLike[str], base: dict[str, Any], stages: list[Stage],
               trained: set[str]) -> Path:
    """Write what was trained (and nothing else) to `out`, with a manifest to load it back."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files = {"projector": "projector.safetensors"}
    save_file({k: _cpu(v) for k, v in model.projector.state_dict().items()}, str(tmp / files["projector"]))
    if getattr(model, "iaa", None) is not None:
        files["iaa"] = "iaa.safetensors"
        save_file({k: _cpu(v) for k, v in model.iaa.state_dict().items()}, str(tmp / files["iaa"]))
    if has_lora(model):
        files["lora"] = "lora"
        model.llm.save_pretrained(str(tmp / "lora"))
    keys = llm_trained_keys(model, trained)
    if keys:
        files["llm"] = "llm.safetensors"
        params = dict(model.base_llm.named_parameters())
        save_file({k: _cpu(params[k]) for k in keys}, str(tmp / files["llm"]))
    manifest = {"format": FORMAT, "base": base, "stages": [s.model_dump() for s in stages], "files": files,
                "iaa": {"insert_at": model.iaa.insert_at} if getattr(model, "iaa", None) is not None else None,
                "llm_keys": keys}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no tuned model here. Point at the `model` folder that `vlforge tune` "
                                f"wrote (it holds {MANIFEST})")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def load_tuned_into(model: nn.Module, folder: str | os.PathLike[str]) -> nn.Module:
    """Put the saved trained weights of `folder` onto a freshly built base `model` (same base paths)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    files = manifest["files"]
    model.projector.load_state_dict(load_file(str(folder / files["projector"])))
    if "iaa" in files:
        model.iaa = InnerAdaptor(model.base_llm, manifest["iaa"]["insert_at"])
        model.iaa.load_state_dict(load_file(str(folder / files["iaa"])))
    if "lora" in files:
        from peft import PeftModel

        model.replace_llm(PeftModel.from_pretrained(model.llm, str(folder / files["lora"])))
    if "llm" in files:
        missing, unexpected = model.base_llm.load_state_dict(load_file(str(folder / files["llm"])), strict=False)
        if unexpected:
            raise ValueError(f"{folder / files['llm']}: keys {unexpected[:5]} are not in the base LLM; was it "
                             f"saved from another model than {manifest['base'].get('llm')}?")
    model.requires_grad_(False)
    model.eval()
    return model


# ---- training checkpoints ---------------------------------------------------------------------------


def checkpoint_dir(out_dir: str | os.PathLike[str]) -> Path:
    return Path(out_dir) / "checkpoints"


def save_checkpoint(out_dir: str | os.PathLike[str], model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, stage_index: int, step: int, trained: set[str], section: TuneSection,
                    stats: list[dict[str, Any]]) -> Path:
    """Save the state needed to continue: trained tensors, optimizer, scheduler, RNG, position."""
    root = checkpoint_dir(out_dir)
    name = f"stage{stage_index}-step{step:07d}"
    tmp = root / (name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    keep = set(trained) | {n for n, _ in model.named_parameters() if n.startswith(("projector.", "iaa."))}
    params = {n: _cpu(p) for n, p in model.named_parameters() if n in keep}
    torch.save({"params": params, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state()}, tmp / "state.pt")
    meta = {"stage": stage_index, "step": step, "trained": sorted(trained), "stats": stats,
            "stages": [s.model_dump() for s in section.stages]}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    olds = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.endswith(".tmp"))
    for old in olds[: max(0, len(olds) - section.keep_checkpoints)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out_dir: str | os.PathLike[str], section: TuneSection) -> Path | None:
    """The newest checkpoint whose stages match this section's, or None."""
    root = checkpoint_dir(out_dir)
    if not root.is_dir():
        return None
    stages = [s.model_dump() for s in section.stages]
    for cand in sorted((p for p in root.iterdir() if p.is_dir() and not p.name.endswith(".tmp")), reverse=True):
        meta_file = cand / "meta.json"
        if meta_file.is_file() and json.loads(meta_file.read_text(encoding="utf-8")).get("stages") == stages:
            return cand
    return None


def restore_checkpoint(path: Path, model: nn.Module, section: TuneSection) -> tuple[dict[str, Any], dict[str, Any]]:
    """Rebuild structure up to the checkpoint's stage and load its tensors. Returns (meta, state)."""
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    prepare_structure(model, section.stages[: meta["stage"] + 1])
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    missing, unexpected = model.load_state_dict(state["params"], strict=False)
    if unexpected:
        raise ValueError(f"checkpoint {path}: tensors {unexpected[:5]} do not fit the model. Delete "
                         f"{checkpoint_dir(path.parent.parent)} or set tune.resume: false")
    torch.set_rng_state(state["rng"])
    return meta, state
