"""Karpathy caption splits of Flickr30k, Flickr8k and COCO (`dataset_flickr30k.json`, `dataset_coco.json`).

The file is `{"images": [{filename, split, sentences: [{raw, tokens, sentid}]}]}`; COCO adds `filepath`
(`train2014` / `val2014`), so its images live at `filepath/filename`, and a `restval` split (the part of
COCO val2014 that is neither Karpathy val nor test) that is usually trained on: `restval_as_train`
relabels it `train` before `splits` are applied. The record id is the image's path, which is unique.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generator, Iterator

from schemas.record import AnnotationRecord, Caption
from schemas.sample import escape_source_text
from sources.base import Item, Source, SourceError, SourceOptions, load_json, require_keys

_HINT = "a Karpathy split file such as dataset_flickr30k.json or dataset_coco.json ({images: [...]})"


class KarpathyOptions(SourceOptions):
    """`path`: the dataset_*.json file; `restval_as_train`: count COCO's restval images as train."""

    path: str
    restval_as_train: bool = True


class KarpathySource(Source):
    """Reads Karpathy-split captions: one record per image with all its captions."""

    kind: ClassVar[str] = "karpathy"
    Options: ClassVar[type[SourceOptions]] = KarpathyOptions

    def read(self) -> Iterator[Item]:
        opts = self.options
        assert isinstance(opts, KarpathyOptions)
        path = opts.path
        data = load_json(path, self.kind, _HINT)
        require_keys(data, ("images",), self.kind, path, _HINT)
        if not isinstance(data["images"], list):
            raise SourceError(f"{self.kind}: 'images' in {path} is a {type(data['images']).__name__}, "
                              f"expected a list; expected {_HINT}")
        seen: set[str] = set()
        n = 0
        for i, im in enumerate(data["images"]):
            if self.limited(n):
                return
            record = yield from self._record(i, im, path, seen)
            if record is not None:
                n += 1
                yield record

    def _record(self, i: int, im: Any, path: str, seen: set[str]
                ) -> Generator[Item, None, AnnotationRecord | None]:
        """Yield the rejects of image #i; return its record (None if rejected or not in the chosen splits)."""
        opts = self.options
        assert isinstance(opts, KarpathyOptions)
        if not isinstance(im, dict):
            yield self.reject("bad_value", f"{self.kind}: images[{i}] in {path} is a {type(im).__name__}, "
                              "expected an object {filename, split, sentences}", file=path, record=f"#{i}")
            return None
        missing = [k for k in ("filename", "split") if k not in im]
        if missing:
            yield self.reject("missing_key", f"{self.kind}: images[{i}] in {path} has no "
                              f"{', '.join(map(repr, missing))} key; each image needs filename, split, sentences",
                              file=path, record=im.get("filename", f"#{i}"))
            return None
        rel = f"{im['filepath']}/{im['filename']}" if im.get("filepath") else str(im["filename"])
        split = str(im["split"])
        if split == "restval" and opts.restval_as_train:
            split = "train"
        if not self.split_ok(split):
            return None
        if rel in seen:
            yield self.reject("bad_value", f"{self.kind}: image {rel} appears twice in {path} (again at "
                              f"images[{i}]); only its first entry is used", file=path, record=rel)
            return None
        seen.add(rel)
        image, reason = self.image_ref(rel)
        if image is None:
            assert reason is not None
            yield self.image_reject(reason, rel, file=path, record=rel)
            return None
        sents = im.get("sentences")
        if not isinstance(sents, list) or not sents:
            yield self.reject("missing_key", f"{self.kind}: image {rel} in {path} has no sentences "
                              f"(got {sents!r}); each image needs a list of {{raw, tokens}} sentences",
                              file=path, record=rel)
            return None
        captions: list[Caption] = []
        for j, s in enumerate(sents):
            sid = s.get("sentid") if isinstance(s, dict) else None
            where = f"{rel}#{sid if sid is not None else j}"
            if not isinstance(s, dict) or "raw" not in s:
                yield self.reject("missing_key", f"{self.kind}: sentence {j} of image {rel} in {path} has no "
                                  f"'raw' key (got {s!r})", file=path, record=where)
                continue
            text = s["raw"].strip() if isinstance(s["raw"], str) else ""
            if not text:
                yield self.reject("empty_caption", f"{self.kind}: sentence {j} of image {rel} in {path} is empty "
                                  f"(raw={s['raw']!r})", file=path, record=where)
                continue
            captions.append(Caption(text=escape_source_text(text), ann_id=None if sid is None else str(sid)))
        if not captions:
            return None
        return AnnotationRecord(id=rel, source=self.name, source_kind=self.kind, file=path, image=image,
                                split=split, captions=captions)
