"""RefCOCO, RefCOCO+ and RefCOCOg: referring expressions over COCO train2014 images.

Each dataset is a pickled list of refs (`refs(unc).p`, `refs(umd).p` for RefCOCOg) plus a COCO instances
file whose annotation ids give the boxes (`[x, y, w, h]`), image file names and sizes. One reader serves
the three kinds; they differ only in their split names. The refs file is unpickled with a restricted
unpickler that builds plain containers and scalars only and refuses every global, so a tampered file
cannot run code. Records come one per image, in order of the image's first ref; refs keep file order.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any, ClassVar, Generator, Iterator

from pydantic import ValidationError, model_validator

from schemas.record import AnnotationRecord, RefExpr
from schemas.sample import escape_source_text
from sources.base import Item, Source, SourceError, SourceOptions, box_from_xywh, load_json, require_keys

_REF_KEYS = ("ref_id", "ann_id", "image_id", "split", "sentences")
_INSTANCES_HINT = "a COCO instances file (keys images, annotations, categories), e.g. refcoco/instances.json"


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle asked for a global (a class or function): the restricted unpickler never loads one."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name
        super().__init__(f"{module}.{name}")


class PlainUnpickler(pickle.Unpickler):
    """Builds lists, dicts, tuples, strings, bytes, numbers, booleans and None; refuses any global."""

    def find_class(self, module: str, name: str) -> Any:
        raise RefusedGlobal(module, name)


def _text(value: Any) -> Any:
    """Python 2 `str` values arrive as bytes: decode them as UTF-8 (latin-1 if that fails), recursively."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_text(v) for v in value)
    return value


def load_refs(path: str | os.PathLike[str], kind: str) -> list[Any]:
    """Read a refs pickle safely (no globals, hence no code) into a list with str keys and values."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"{kind}: refs file not found: {p}; check `refs` in the recipe "
                          "(the dataset's refs(unc).p, or refs(umd).p for RefCOCOg)")
    data = p.read_bytes()
    try:
        obj = PlainUnpickler(io.BytesIO(data), encoding="bytes").load()
    except RefusedGlobal as e:
        raise SourceError(f"{kind}: {p} asks to load {e.module}.{e.name}; vlforge refuses to load code from a "
                          "pickle. A refs file holds only lists, dicts, strings and numbers: use the dataset's "
                          "original refs(unc).p / refs(umd).p") from None
    except Exception as e:  # arbitrary bytes fail in many ways; each one means "not a refs pickle"
        raise SourceError(f"{kind}: {p} is not a readable pickle ({type(e).__name__}: {e}); expected the "
                          "dataset's refs(unc).p / refs(umd).p, a pickled list of refs") from None
    obj = _text(obj)
    if not isinstance(obj, list):
        raise SourceError(f"{kind}: {p} holds a pickled {type(obj).__name__}, expected a list of refs "
                          f"(dicts with keys {', '.join(_REF_KEYS)}); is this the refs(unc).p file?")
    return obj


class RefCOCOOptions(SourceOptions):
    """`refs`: the refs pickle; `instances`: the COCO instances file (default: instances.json beside refs)."""

    refs: str
    instances: str | None = None

    path_keys: ClassVar[tuple[str, ...]] = ("refs", "instances")

    @model_validator(mode="after")
    def _known_splits(self) -> "RefCOCOOptions":
        allowed = RefCOCOgSource.SPLITS if self.kind == "refcocog" else RefCOCOSource.SPLITS
        bad = [s for s in self.splits or [] if s not in allowed]
        if bad:
            raise ValueError(f"{self.kind} has no split(s) {', '.join(map(repr, bad))}; "
                             f"its splits are {', '.join(allowed)}")
        return self


class RefCOCOSource(Source):
    """RefCOCO (UNC splits train/val/testA/testB). RefCOCO+ and RefCOCOg subclass it."""

    kind: ClassVar[str] = "refcoco"
    Options: ClassVar[type[SourceOptions]] = RefCOCOOptions
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "val", "testA", "testB")

    def _instances_path(self) -> str:
        opts = self.options
        assert isinstance(opts, RefCOCOOptions)
        if opts.instances is not None:
            return opts.instances
        return os.path.join(os.path.dirname(opts.refs), "instances.json")

    def read(self) -> Iterator[Item]:
        opts = self.options
        assert isinstance(opts, RefCOCOOptions)
        refs_file = opts.refs
        inst_file = self._instances_path()
        refs = load_refs(refs_file, self.kind)
        inst = load_json(inst_file, self.kind, _INSTANCES_HINT)
        require_keys(inst, ("images", "annotations", "categories"), self.kind, inst_file, _INSTANCES_HINT,
                     hint="; RefCOCO boxes come from the instances file given as `instances`")
        not_lists = [k for k in ("images", "annotations", "categories") if not isinstance(inst[k], list)]
        if not_lists:
            raise SourceError(f"{self.kind}: {', '.join(map(repr, not_lists))} in {inst_file} must be a list; "
                              f"expected {_INSTANCES_HINT}")
        images = {im.get("id"): im for im in inst["images"] if isinstance(im, dict)}
        anns = {a.get("id"): a for a in inst["annotations"] if isinstance(a, dict)}
        cats = {c.get("id"): c.get("name") for c in inst["categories"] if isinstance(c, dict)}

        # Pass 1: check each ref's shape and split, group the kept ones by image in first-seen order.
        by_image: dict[Any, list[dict[str, Any]]] = {}
        for i, ref in enumerate(refs):
            if not isinstance(ref, dict):
                yield self.reject("bad_value", f"{self.kind}: ref #{i} in {refs_file} is a "
                                  f"{type(ref).__name__}, expected a dict with keys {', '.join(_REF_KEYS)}",
                                  file=refs_file, record=f"#{i}")
                continue
            if "split" in ref and not self.split_ok(ref["split"]):
                continue
            rid = ref.get("ref_id", f"#{i}")
            missing = [k for k in _REF_KEYS if k not in ref]
            if missing:
                yield self.reject("missing_key", f"{self.kind}: ref {rid} in {refs_file} has no "
                                  f"{', '.join(map(repr, missing))} key; a ref needs {', '.join(_REF_KEYS)}",
                                  file=refs_file, record=rid)
                continue
            odd = [k for k in ("ref_id", "ann_id", "image_id") if isinstance(ref[k], bool)
                   or not isinstance(ref[k], (int, str))]
            if odd:
                yield self.reject("bad_value", f"{self.kind}: ref {rid} in {refs_file} has "
                                  f"{', '.join(f'{k}={ref[k]!r}' for k in odd)}; ids must be integers or strings",
                                  file=refs_file, record=rid)
                continue
            by_image.setdefault(ref["image_id"], []).append(ref)

        n = 0
        for image_id, image_refs in by_image.items():
            if self.limited(n):
                return
            record = yield from self._record(image_id, image_refs, images, anns, cats, refs_file, inst_file)
            if record is not None:
                n += 1
                yield record

    def _record(self, image_id: Any, refs: list[dict[str, Any]], images: dict[Any, Any], anns: dict[Any, Any],
                cats: dict[Any, Any], refs_file: str, inst_file: str
                ) -> Generator[Item, None, AnnotationRecord | None]:
        """Yield the rejects of one image's refs; return its record (None if nothing survived)."""
        ref_ids = [str(r["ref_id"]) for r in refs]
        im = images.get(image_id)
        if im is None:
            yield self.reject("unknown_image", f"{self.kind}: refs {', '.join(ref_ids)} name image_id {image_id}, "
                              f"which {inst_file} does not list; is `instances` the dataset's own instances.json?",
                              file=refs_file, record=image_id, ann_ids=ref_ids)
            return None
        missing = [k for k in ("file_name", "width", "height") if k not in im]
        if missing:
            yield self.reject("missing_key", f"{self.kind}: image {image_id} in {inst_file} has no "
                              f"{', '.join(map(repr, missing))} key; COCO images need file_name, width, height",
                              file=inst_file, record=image_id, ann_ids=ref_ids)
            return None
        width, height = im["width"], im["height"]
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            yield self.reject("bad_value", f"{self.kind}: image {image_id} in {inst_file} has size "
                              f"{width!r}x{height!r}; width and height must be positive integers",
                              file=inst_file, record=image_id, ann_ids=ref_ids)
            return None
        image, reason = self.image_ref(str(im["file_name"]), width, height)
        if image is None:
            assert reason is not None
            yield self.image_reject(reason, str(im["file_name"]), file=inst_file, record=image_id)
            return None

        exprs: list[RefExpr] = []
        splits: set[str] = set()
        for ref in refs:
            expr = yield from self._expr(ref, image_id, width, height, anns, cats, refs_file, inst_file)
            if expr is not None:
                exprs.append(expr)
                splits.add(str(ref["split"]))
        if not exprs:
            return None
        return AnnotationRecord(id=str(image_id), source=self.name, source_kind=self.kind, file=refs_file,
                                image=image, split=splits.pop() if len(splits) == 1 else None, refs=exprs)

    def _expr(self, ref: dict[str, Any], image_id: Any, width: int, height: int, anns: dict[Any, Any],
              cats: dict[Any, Any], refs_file: str, inst_file: str) -> Generator[Item, None, RefExpr | None]:
        """Yield the rejects of one ref; return its RefExpr (None if it was rejected)."""
        rid = str(ref["ref_id"])
        ann_id = ref["ann_id"]
        ids = [rid, str(ann_id)]
        ann = anns.get(ann_id)
        if ann is None:
            yield self.reject("unknown_annotation", f"{self.kind}: ref {rid} names ann_id {ann_id}, which "
                              f"{inst_file} does not list; is `instances` the dataset's own instances.json?",
                              file=refs_file, record=rid, ann_ids=ids)
            return None
        if ann.get("image_id") != image_id:
            yield self.reject("bad_value", f"{self.kind}: ref {rid} is on image {image_id} but its ann_id "
                              f"{ann_id} is on image {ann.get('image_id')} in {inst_file}; the refs and "
                              "instances files do not belong together", file=refs_file, record=rid, ann_ids=ids)
            return None
        category = cats.get(ann.get("category_id"))
        if category is None:
            yield self.reject("unknown_category", f"{self.kind}: annotation {ann_id} (ref {rid}) has category_id "
                              f"{ann.get('category_id')!r}, which the categories of {inst_file} do not list",
                              file=refs_file, record=rid, ann_ids=ids)
            return None
        try:
            box = box_from_xywh(ann.get("bbox"), width, height)
        except (ValueError, TypeError) as e:
            msg = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
            yield self.reject("box_invalid", f"{self.kind}: annotation {ann_id} (ref {rid}) in {inst_file} has "
                              f"an unusable bbox {ann.get('bbox')!r}: {msg}", file=refs_file, record=rid, ann_ids=ids)
            return None
        if not box.inside_image(1.0):
            yield self.reject("box_outside_image", f"{self.kind}: annotation {ann_id} (ref {rid}) has bbox "
                              f"{ann.get('bbox')!r}, which leaves its {width}x{height} image by more than 1 px",
                              file=refs_file, record=rid, ann_ids=ids)
            return None

        sents = ref["sentences"]
        if not isinstance(sents, list) or not sents:
            yield self.reject("missing_key", f"{self.kind}: ref {rid} in {refs_file} has no sentences "
                              f"(got {sents!r}); a ref needs a list of {{sent_id, sent}} dicts",
                              file=refs_file, record=rid, ann_ids=ids)
            return None
        texts: list[str] = []
        for j, s in enumerate(sents):
            sid = s.get("sent_id", f"#{j}") if isinstance(s, dict) else f"#{j}"
            where = f"{rid}/sent {sid}"
            if not isinstance(s, dict) or "sent" not in s:
                yield self.reject("missing_key", f"{self.kind}: sentence {sid} of ref {rid} has no 'sent' key "
                                  f"(got {s!r})", file=refs_file, record=where, ann_ids=ids)
                continue
            text = s["sent"].strip() if isinstance(s["sent"], str) else None
            if not text:
                yield self.reject("bad_value", f"{self.kind}: sentence {sid} of ref {rid} is empty or not text "
                                  f"(got {s['sent']!r})", file=refs_file, record=where, ann_ids=ids)
                continue
            texts.append(escape_source_text(text))
        if not texts:
            return None
        return RefExpr(ref_id=rid, sentences=texts, box=box, ann_id=str(ann_id), category=str(category))


class RefCOCOPlusSource(RefCOCOSource):
    """RefCOCO+ (UNC splits; expressions without location words)."""

    kind: ClassVar[str] = "refcoco_plus"


class RefCOCOgSource(RefCOCOSource):
    """RefCOCOg (UMD splits train/val/test; longer expressions)."""

    kind: ClassVar[str] = "refcocog"
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "val", "test")
