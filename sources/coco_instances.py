"""COCO instances (`instances_*.json`): one record per image with its labelled boxes.

Reads like `coco_captions` (same record order, limit, splits and reject rules; see that module) and adds
the `categories` table. Boxes are COCO `[x, y, w, h]` in absolute pixels, converted to the canonical
`Box`; the image's `width`/`height` are therefore required.

Per-object rejects: `missing_key`, `bad_value` (bbox not four finite numbers), `box_invalid` (w or h
not positive), `box_outside_image` (more than 1 px outside the image), `unknown_category`.

Crowd regions (`iscrowd: 1`) are kept on the record with `iscrowd=True` by default, so nothing is
dropped unseen; tasks that count or refer to single objects must skip them. `include_crowd: false`
leaves them off the record (a choice the recipe states, not a data problem, so no reject).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from schemas.box import Box
from schemas.record import AnnotationRecord, Caption, ObjectAnn
from sources.base import SourceError, load_json, require_keys
from sources.coco_captions import CocoOptions, CocoReader, Dropped
from sources.fields import BadField, clean_text, get_id, required_size


class CocoInstancesOptions(CocoOptions):
    """A COCO instances file."""

    #: Keep crowd regions (flagged `iscrowd`) on the record.
    include_crowd: bool = True
    #: Optional COCO captions file of the same images: its captions join the records, so tasks that need
    #: captions and boxes together (grounded_caption) can use them.
    captions: str | None = None

    path_keys: ClassVar[tuple[str, ...]] = ("path", "captions")


class CocoInstancesSource(CocoReader):
    """COCO instances: `images[]`, `annotations[]` with `bbox`, and `categories[]`."""

    kind = "coco_instances"
    Options = CocoInstancesOptions
    expect = "a COCO instances file (instances_*.json) with 'images', 'annotations' and 'categories'"
    required_keys: ClassVar[tuple[str, ...]] = ("images", "annotations", "categories")

    def wrong_kind_hint(self, data: Any) -> str:
        if isinstance(data, dict) and "categories" not in data and "annotations" in data:
            return "; it has no 'categories': is this a captions file? Use kind coco_captions for it"
        return super().wrong_kind_hint(data)

    driver_only = ("captions_by_image",)

    def setup_file(self, data: dict[str, Any]) -> None:
        self.captions_by_image = self._load_captions()
        path = self.options.path
        cats = data["categories"]
        if not isinstance(cats, list):
            raise SourceError(f"{self.kind}: {path}: 'categories' is a JSON {type(cats).__name__}, expected a list "
                              "of {id, name}")
        self.categories: dict[int | str, str] = {}
        for i, c in enumerate(cats):
            try:
                if not isinstance(c, dict):
                    raise BadField("bad_value", "is not an object")
                cid = get_id(c, "id")
                name = c.get("name")
                if not isinstance(name, str) or not name.strip():
                    raise BadField("bad_value", "has no usable 'name'")
            except BadField as e:
                raise SourceError(f"{self.kind}: {path}: categories[{i}] {e.detail}; every category needs an "
                                  "integer 'id' and a non-empty 'name' (fix the file's categories list)") from None
            self.categories[cid] = clean_text(name)
        self.include_crowd = bool(getattr(self.options, "include_crowd", True))

    def image_size(self, image: dict[str, Any]) -> tuple[int, int]:
        return required_size(image, "width", "height", "boxes need the image size")

    def parse(self, ann: dict[str, Any], width: int | None, height: int | None) -> ObjectAnn | None:
        assert width is not None and height is not None
        crowd = bool(ann.get("iscrowd", 0))
        if crowd and not self.include_crowd:
            return Dropped(self.category_of(ann))
        cid = get_id(ann, "category_id")
        category = self.categories.get(cid)
        if category is None:
            raise BadField("unknown_category", f"has category_id {cid!r}, which the file's 'categories' does "
                                               "not list")
        if "bbox" not in ann:
            raise BadField("missing_key", "has no 'bbox' key")
        bbox = ann["bbox"]
        if (not isinstance(bbox, list) or len(bbox) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
            raise BadField("bad_value", f"has bbox {bbox!r:.80}, expected [x, y, w, h] (four numbers)")
        x, y, w, h = (float(v) for v in bbox)
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            raise BadField("bad_value", f"has bbox {bbox!r}, which is not finite")
        if w <= 0 or h <= 0 or x + w <= x or y + h <= y:
            raise BadField("box_invalid", f"has bbox {bbox!r} with no area (COCO boxes are [x, y, w, h], "
                                          "w and h > 0)")
        box = Box.from_xywh((x, y, w, h), width, height)
        if not box.inside_image(1.0):
            raise BadField("box_outside_image", f"has bbox {bbox!r} that lies more than 1 px outside its "
                                                f"{width}x{height} image")
        aid = ann.get("id")
        return ObjectAnn(category=category, box=box, ann_id=None if aid is None else str(aid), iscrowd=crowd)

    def _load_captions(self) -> dict[Any, list[Caption]]:
        """The joined captions file, by image id (empty without one). A bad caption here is skipped: the
        file's own `coco_captions` source reports it; this join only adds context."""
        path = getattr(self.options, "captions", None)
        if not path:
            return {}
        expect = "a COCO captions file (captions_*.json) with 'images' and 'annotations'"
        data = load_json(path, self.kind, expect)
        require_keys(data, ("annotations",), self.kind, path, expect, " (given as `captions:`)")
        out: dict[Any, list[Caption]] = {}
        for ann in data["annotations"] if isinstance(data["annotations"], list) else []:
            if not isinstance(ann, dict):
                continue
            text, iid, aid = ann.get("caption"), ann.get("image_id"), ann.get("id")
            if isinstance(text, str) and text.strip() and isinstance(iid, (int, str)):
                out.setdefault(iid, []).append(Caption(text=clean_text(text), ann_id=None if aid is None else str(aid)))
        return out

    def extra_for(self, image_id: Any) -> Any:
        return self.captions_by_image.get(image_id)

    def category_of(self, ann: dict[str, Any]) -> str | None:
        cid = ann.get("category_id")
        return self.categories.get(cid) if isinstance(cid, (int, str)) else None

    def make_record(self, image_id: str, image: Any, split: str | None, items: list[Any],
                    incomplete: list[str] | None = None, extra: Any = None) -> AnnotationRecord:
        objects = [o for o in items if not isinstance(o, Dropped)]
        dropped = {o.category for o in items if isinstance(o, Dropped) and o.category}
        dropped.update(incomplete or ())
        return AnnotationRecord(id=image_id, source=self.name, source_kind=self.kind, file=self.options.path,
                                image=image, split=split, objects=objects, incomplete_categories=sorted(dropped),
                                captions=list(extra or []))

