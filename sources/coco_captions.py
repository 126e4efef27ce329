"""COCO captions (`captions_{train,val}{2014,2017}.json`): one record per image with its captions.

Also holds `CocoReader`, the part shared with `coco_instances`: the images table, grouping the
annotations by image, record order, `limit` and `splits`.

Choices (the same in both COCO readers):
- Records come in the order of the `images` list; an image gets a record only when at least one of
  its annotations is usable. An image with no annotations at all yields nothing (there is nothing to
  adapt); an image whose annotations were all rejected yields nothing more than those rejects.
- A bad annotation (missing key, empty caption, bad box) is one Reject; the image keeps its good ones.
- A missing or escaping image file, or an unusable `images` entry, is one Reject for the whole image.
- Problems not tied to a listed image (an annotation without `image_id`, or on an image id that
  `images` does not list: `unknown_image`) are yielded after the records, once the whole file has been
  read; a run stopped early by `limit` does not report them.
- `limit` counts images picked in the scan (an image whose file is missing still counts).
- Two phases: `scan()` (a read task) groups annotations by image; `parse_unit()` (a worker) does the rest.
- The split is the `split` option, else the one in the file name (captions_val2017.json -> "val");
  `splits` keeps or skips the whole file.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterator

from schemas.record import AnnotationRecord, Caption
from schemas.reject import Reject
from sources.base import Item, RawUnit, SourceError, SourceOptions, TwoPhaseSource, load_json, require_keys
from sources.fields import BadField, field_message, get_id, get_text, optional_size, split_from_name


class CocoOptions(SourceOptions):
    """One COCO annotation file."""

    path: str
    #: The split this file holds; default: from the file name (captions_val2017.json -> "val").
    split: str | None = None

    path_keys: ClassVar[tuple[str, ...]] = ("path",)


class CocoReader(TwoPhaseSource):
    """The COCO file layout shared by captions and instances. Subclasses parse one annotation."""

    Options: ClassVar[type[SourceOptions]] = CocoOptions
    #: What the file should be, for error messages.
    expect: ClassVar[str]
    #: Top-level keys the file must have.
    required_keys: ClassVar[tuple[str, ...]] = ("images", "annotations")

    def load(self) -> dict[str, Any]:
        """Read the file and check that it is the right kind of COCO file (SourceError otherwise)."""
        path = self.options.path
        data = load_json(path, self.kind, self.expect)
        require_keys(data, self.required_keys, self.kind, path, self.expect, self.wrong_kind_hint(data))
        self.check_kind(data)
        for key in ("images", "annotations"):
            if not isinstance(data[key], list):
                raise SourceError(f"{self.kind}: {path}: {key!r} is a JSON {type(data[key]).__name__}, expected "
                                  f"a list; expected {self.expect}")
        return data

    def wrong_kind_hint(self, data: Any) -> str:
        """A hint added to a missing-key error when the file looks like another dataset's."""
        if isinstance(data, dict) and "questions" in data:
            return "; this looks like a VQA questions file: use kind vqav2 with `questions:`"
        return ""

    def check_kind(self, data: dict[str, Any]) -> None:
        """Raise SourceError when the file has the keys but is the other COCO kind."""

    def setup_file(self, data: dict[str, Any]) -> None:
        """Per-file state a subclass needs (the categories table)."""

    def image_size(self, image: dict[str, Any]) -> tuple[int | None, int | None]:
        """The image's size from its `images` entry; raises BadField when unusable."""
        return optional_size(image, "width", "height")

    def parse(self, ann: dict[str, Any], width: int | None, height: int | None) -> Any:
        """One annotation to its record item (Caption, ObjectAnn), None to leave it out; BadField if bad."""
        raise NotImplementedError

    def category_of(self, ann: dict[str, Any]) -> str | None:
        """The category of an annotation, for files that have categories (instances)."""
        return None

    def extra_for(self, image_id: Any) -> Any:
        """Data joined from another file for this image (instances: its captions), found in the scan."""
        return None

    def make_record(self, image_id: str, image: Any, split: str | None, items: list[Any],
                    incomplete: list[str] | None = None, extra: Any = None) -> AnnotationRecord:
        raise NotImplementedError

    # ---- the shared read loop ---------------------------------------------------------------

    def scan(self) -> Iterator[Item | RawUnit]:
        path = self.options.path
        data = self.load()
        split = self.options.split or split_from_name(path)
        if not self.split_ok(split):
            return
        self.setup_file(data)
        self.split = split

        late: list[Reject] = []
        groups: dict[int | str, list[tuple[int, dict[str, Any]]]] = {}
        for i, ann in enumerate(data["annotations"]):
            if not isinstance(ann, dict):
                late.append(self._bad(BadField("bad_value", f"is a JSON {type(ann).__name__}, expected an object"),
                                      f"annotations[{i}]"))
                continue
            try:
                iid = get_id(ann, "image_id")
            except BadField as e:
                late.append(self._bad(e, _ann_name(ann, i)))
                continue
            g = groups.get(iid)
            if g is None:
                groups[iid] = [(i, ann)]
            else:
                g.append((i, ann))

        n = 0
        for j, image in enumerate(data["images"]):
            if self.limited(n):
                return
            if not isinstance(image, dict):
                yield self._bad(BadField("bad_value", f"is a JSON {type(image).__name__}, expected an object"),
                                f"images[{j}]", what="image entry")
                continue
            try:
                iid = get_id(image, "id")
            except BadField as e:
                yield self._bad(e, f"images[{j}]", what="image entry")
                continue
            anns = groups.pop(iid, None)
            if not anns:
                continue
            yield RawUnit(self.name, (iid, image, anns, self.extra_for(iid)))
            n += 1

        yield from late
        for iid, anns in groups.items():
            for i, ann in anns:
                name = _ann_name(ann, i)
                yield self.reject("unknown_image",
                                  f"{self.kind}: annotation {name} in {path} is on image id {iid!r}, which the "
                                  "file's 'images' list does not have; it is skipped (add the image entry to keep "
                                  "it, or check that the file is not cut short)",
                                  file=path, record=name)

    def parse_unit(self, payload: Any) -> list[Item]:
        """One image and its annotations: check the image file, parse each annotation, build the record."""
        iid, image, anns, extra = payload
        path = self.options.path
        ann_ids = [_ann_name(a, i) for i, a in anns]
        try:
            file_name = get_text(image, "file_name", "bad_value")
            width, height = self.image_size(image)
        except BadField as e:
            return [self._bad(e, iid, what="image", ann_ids=ann_ids)]
        ref, reason = self.image_ref(file_name, width, height)
        if ref is None:
            r = self.image_reject(reason or "image_missing", file_name, file=path, record=iid)
            r.lineage.ann_ids = ann_ids  # type: ignore[union-attr]
            return [r]
        out: list[Item] = []
        items = []
        incomplete: set[str] = set()
        for i, ann in anns:
            try:
                item = self.parse(ann, width, height)
            except BadField as e:
                out.append(self._bad(e, _ann_name(ann, i), image_id=iid))
                cat = self.category_of(ann)
                if cat:
                    incomplete.add(cat)
                continue
            if item is not None:
                items.append(item)
        if any(not isinstance(x, Dropped) for x in items):
            out.append(self.make_record(str(iid), ref, self.split, items, sorted(incomplete), extra))
        return out

    def _bad(self, err: BadField, record: Any, *, what: str = "annotation", image_id: Any = None,
             ann_ids: list[str] | None = None) -> Reject:
        label = f"{what} {record}" if image_id is None else f"{what} {record} (image {image_id})"
        return self.reject(err.reason, field_message(self.kind, label, self.options.path, err),
                           file=self.options.path, record=record, ann_ids=ann_ids)


class Dropped:
    """An annotation left out on purpose (e.g. a crowd region with `include_crowd: false`): not an error and
    not part of the record, but its category can no longer be counted on that image."""

    def __init__(self, category: str | None) -> None:
        self.category = category


def _ann_name(ann: dict[str, Any], index: int) -> str:
    """How a reject names an annotation: its id, else its position in the file."""
    aid = ann.get("id")
    return str(aid) if aid is not None else f"annotations[{index}]"


class CocoCaptionsSource(CocoReader):
    """COCO captions: `images[]` plus `annotations[]` of (id, image_id, caption)."""

    kind = "coco_captions"
    expect = "a COCO captions file (captions_*.json) with 'images' and 'annotations'"

    def check_kind(self, data: dict[str, Any]) -> None:
        if "categories" in data:
            raise SourceError(f"{self.kind}: {self.options.path} has 'categories': it is a COCO instances file, "
                              "not a captions file; use kind coco_instances for it")

    def parse(self, ann: dict[str, Any], width: int | None, height: int | None) -> Caption:
        text = get_text(ann, "caption", "empty_caption")
        aid = ann.get("id")
        return Caption(text=text, ann_id=None if aid is None else str(aid))

    def make_record(self, image_id: str, image: Any, split: str | None, items: list[Any],
                    incomplete: list[str] | None = None, extra: Any = None) -> AnnotationRecord:
        return AnnotationRecord(id=image_id, source=self.name, source_kind=self.kind, file=self.options.path,
                                image=image, split=split, captions=items)
