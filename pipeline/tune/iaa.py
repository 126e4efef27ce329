"""The Inner-Adaptor Architecture (IAA): vision for a frozen LLM without touching it.

Paper: Bin Wang et al., "Inner-Adaptor Architecture: Empowering Multimodal LLMs with Visual Ability
while Keeping Their Text Capabilities", arXiv 2408.12902 (AAAI 2025).

Let the frozen LLM be an embedding E, decoder layers f_0 .. f_{L-1}, a final norm N and a head W.
Text-only requests keep the untouched model:

    h_0 = E(x);   h_{i+1} = f_i(h_i);   logits = W · N(h_L)

Multimodal requests run a second workflow over the same frozen layers, with trainable insertion layers
g_k placed in series right after the frozen layers in the set S:

    h_0 = E'(x) with visual tokens spliced in
    h = f_i(h);   if i in S:  h = g_i(h)             for i = 0 .. L-1
    logits = W' · N'(h)

where E', N', W' are new copies of E, N, W (untied from the originals and from each other) and each g_i
is a full decoder layer of the LLM's own class, initialised as a copy of f_i. The published models use
S = {i : i % 5 in {0, 1}} (14 insertions for 32 layers, "IAA-14"). Only E', g, N', W' (and the
projector, outside this module) are trained, so the text-only logits stay bit-identical to the base
LLM's whatever the training does.

`InnerAdaptor` holds only its own modules: it never registers the LLM as a submodule, so its
`state_dict()` is exactly what IAA trains and the base checkpoint's keys are unchanged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask


def default_insert_at(num_layers: int) -> list[int]:
    """The paper's rule: after every layer i with i % 5 in {0, 1}."""
    return [i for i in range(num_layers) if i % 5 in (0, 1)]


def _decoder(llm: nn.Module) -> nn.Module:
    """The decoder stack (embeddings, layers, norm, rotary) of a Llama/Qwen2-style causal LM."""
    decoder = getattr(llm, "model", None)
    for attr in ("embed_tokens", "layers", "norm", "rotary_emb"):
        if decoder is None or not hasattr(decoder, attr):
            raise TypeError(f"IAA needs a Llama/Qwen2-style causal LM (model.embed_tokens, model.layers, model.norm, "
                            f"model.rotary_emb); {type(llm).__name__} has no model.{attr}. Use lora instead")
    return decoder


class InnerAdaptor(nn.Module):
    """Trainable insertion layers plus a multimodal embedding, norm and head around a frozen LLM."""

    def __init__(self, llm: nn.Module, insert_at: list[int] | None = None) -> None:
        super().__init__()
        decoder = _decoder(llm)
        num_layers = len(decoder.layers)
        insert_at = default_insert_at(num_layers) if insert_at is None else sorted(insert_at)
        bad = [i for i in insert_at if not 0 <= i < num_layers]
        if bad:
            raise ValueError(f"iaa.insert_at has layer indices {bad} outside 0..{num_layers - 1} "
                             f"(the LLM has {num_layers} layers)")
        self.insert_at = list(insert_at)
        # Copies (new tensors), so the multimodal path can learn while the text path stays put.
        self.embed = copy.deepcopy(decoder.embed_tokens)
        self.layers = nn.ModuleDict({str(i): copy.deepcopy(decoder.layers[i]) for i in self.insert_at})
        self.norm = copy.deepcopy(decoder.norm)
        head = llm.get_output_embeddings()
        self.head = nn.Linear(head.in_features, head.out_features, bias=head.bias is not None,
                              dtype=head.weight.dtype, device=head.weight.device)
        with torch.no_grad():
            self.head.weight.copy_(head.weight)
            if head.bias is not None:
                self.head.bias.copy_(head.bias)
        for p in self.parameters():
            p.requires_grad_(True)

    @staticmethod
    def _masks(decoder: nn.Module, embeds: torch.Tensor, attention_mask: torch.Tensor | None,
               position_ids: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """The attention masks the decoder's own forward would build, one per layer type."""
        kw = dict(config=decoder.config, inputs_embeds=embeds, attention_mask=attention_mask,
                  past_key_values=None, position_ids=position_ids)
        masks = {"full_attention": create_causal_mask(**kw)}
        if "sliding_attention" in (getattr(decoder.config, "layer_types", None) or []):
            masks["sliding_attention"] = create_sliding_window_causal_mask(**kw)
        return masks

    def forward(self, llm: nn.Module, inputs_embeds: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Multimodal workflow: `inputs_embeds` (from `self.embed`, visual tokens spliced) -> logits."""
        decoder = _decoder(llm)
        seq = inputs_embeds.shape[1]
        position_ids = torch.arange(seq, device=inputs_embeds.device).unsqueeze(0)
        masks = self._masks(decoder, inputs_embeds, attention_mask, position_ids)
        rope = decoder.rotary_emb(inputs_embeds, position_ids)
        layer_types = getattr(decoder.config, "layer_types", None) or ["full_attention"] * len(decoder.layers)
        h = inputs_embeds
        for i, frozen in enumerate(decoder.layers):
            kw = dict(attention_mask=masks[layer_types[i]], position_embeddings=rope, position_ids=position_ids)
            h = _hidden(frozen(h, **kw))
            if str(i) in self.layers:
                h = _hidden(self.layers[str(i)](h, **kw))
        return self.head(self.norm(h))


def _hidden(out: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    # Older transformers decoder layers return a tuple whose first item is the hidden state.
    return out[0] if isinstance(out, tuple) else out
