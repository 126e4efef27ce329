"""Token counts of samples: by a local Hugging Face tokenizer, or a whitespace estimate when none is named.

The mix stage uses them to set the text-only share by tokens, and stats use them for the token-length
distribution. Only the text is counted: `<image>` placeholders are removed, because how many visual tokens
an image becomes depends on the model that is trained, not on the data.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from functools import lru_cache
from typing import Any, Protocol, Sequence

from schemas.sample import IMAGE_TOKEN, Sample

#: Upper edges of the token-length histogram buckets; the last bucket is open-ended.
HISTOGRAM_EDGES: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048, 4096)


class TokenizerLike(Protocol):
    """What `count_tokens` needs of a tokenizer: `encode(text, add_special_tokens=False) -> ids`."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> Sequence[int]: ...


class TokenizerError(ValueError):
    """A tokenizer named in the recipe could not be loaded offline."""


@lru_cache(maxsize=4)
def load_tokenizer(name: str) -> Any:
    """Load a tokenizer from a local folder or the local Hugging Face cache (never the network), once."""
    looks_like_path = os.path.isabs(name) or name.startswith(("./", "../", "~"))
    if looks_like_path and not os.path.isdir(os.path.expanduser(name)):
        raise TokenizerError(f"tokenizer folder {name!r} does not exist. Point mix.tokenizer at a local folder "
                             "that holds tokenizer.json / tokenizer_config.json, or leave it out to use the "
                             "whitespace estimate")
    try:
        from transformers import AutoTokenizer
    except ImportError as e:  # pragma: no cover - transformers is installed with the tune extra
        raise TokenizerError(f"tokenizer {name!r} needs the `transformers` package: pip install transformers") from e
    try:
        return AutoTokenizer.from_pretrained(os.path.expanduser(name), local_files_only=True)
    except (OSError, ValueError) as e:
        raise TokenizerError(
            f"tokenizer {name!r} could not be loaded offline ({type(e).__name__}: {str(e).splitlines()[0]}). "
            "Point mix.tokenizer at a local folder that holds tokenizer.json / tokenizer_config.json, "
            "or leave it out to use the whitespace estimate") from e


def _resolve(tokenizer: str | TokenizerLike | None) -> TokenizerLike | None:
    return load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer


def count_tokens(text: str, tokenizer: str | TokenizerLike | None = None) -> int:
    """Tokens in `text`: by `tokenizer` (a loaded one, or a local name/path) without special tokens,
    or, when None, the number of whitespace-separated words (an estimate; subword tokenizers give more)."""
    tok = _resolve(tokenizer)
    if tok is None:
        return len(text.split())
    return len(tok.encode(text, add_special_tokens=False))


def count_tokens_batch(texts: Sequence[str], tokenizer: str | TokenizerLike | None = None) -> list[int]:
    """`count_tokens` for many texts; a fast (Rust) tokenizer encodes them in one call."""
    tok = _resolve(tokenizer)
    if tok is None:
        return [len(t.split()) for t in texts]
    if texts and callable(tok):
        try:
            ids = tok(list(texts), add_special_tokens=False)["input_ids"]
            return [len(x) for x in ids]
        except (TypeError, KeyError):
            pass
    return [len(tok.encode(t, add_special_tokens=False)) for t in texts]


def sample_text(sample: Sample) -> str:
    """The text of all turns, one per line, with the `<image>` placeholders taken out."""
    return "\n".join(t.text.replace(IMAGE_TOKEN, "").strip() for t in sample.turns)


def sample_tokens(samples: Sequence[Sample], tokenizer: str | TokenizerLike | None = None) -> list[int]:
    """Token count of each sample's text (see `sample_text`)."""
    return count_tokens_batch([sample_text(s) for s in samples], tokenizer)


def histogram(values: Sequence[int], edges: Sequence[int] = HISTOGRAM_EDGES) -> dict[str, int]:
    """Counts per length bucket, keyed `"<32"`, `"32-63"`, ..., `">=4096"`; every bucket is listed."""
    labels = [f"<{edges[0]}"] + [f"{lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:])] + [f">={edges[-1]}"]
    counts = [0] * len(labels)
    for v in values:
        counts[bisect_right(edges, v)] += 1
    return dict(zip(labels, counts))
