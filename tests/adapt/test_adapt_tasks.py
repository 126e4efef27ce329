"""Each adapt task: a hand-built AnnotationRecord through AdaptStage gives exactly the expected Samples.

Styles are pinned to one per task (the `styles` option) so the rendered text is exact; seeded style
choice itself is covered in test_adapt_stage.py.
"""

from __future__ import annotations

from typing import Any

from pipeline.adapt import TASKS, AdaptStage
from schemas.box import Box
from schemas.image import ImageRef
from schemas.record import QA, AnnotationRecord, Caption, ObjectAnn, RefExpr
from schemas.reject import Reject
from schemas.sample import Lineage, Sample, Turn

SHORT = "Answer the question using a single word or phrase."
MC = "Answer with the option's letter from the given choices directly."
IMG = ImageRef(path="train/000001.jpg", width=640, height=480)
B1 = Box(x1=10, y1=20, x2=110, y2=220, width=640, height=480)
B2 = Box(x1=300, y1=40, x2=420, y2=200, width=640, height=480)
B3 = Box(x1=0, y1=0, x2=640, y2=240, width=640, height=480)


def rec(**kw: Any) -> AnnotationRecord:
    base: dict[str, Any] = dict(id="42", source="coco", source_kind="coco_instances", file="ann/instances.json",
                                image=IMG)
    base.update(kw)
    return AnnotationRecord(**base)


def stage(task: str, style: str | list[str], **kw: Any) -> AdaptStage:
    styles = [style] if isinstance(style, str) else style
    return AdaptStage(seed=0, tasks=[task], styles={task: styles}, **kw)


def sample(sid: str, task: str, turns: list[tuple[str, str]], template: str, ann_ids: list[str],
           boxes: list[Box] | None = None, r: AnnotationRecord | None = None, image: bool = True) -> Sample:
    r = r or rec()
    out: list[Turn] = []
    for u, a in turns:
        out += [Turn(role="user", text=u), Turn(role="assistant", text=a)]
    return Sample(id=sid, images=[IMG] if image else [], turns=out, boxes=boxes or [], task=task,
                  source=r.source,
                  lineage=Lineage(source=r.source, source_kind=r.source_kind, file=r.file, ann_ids=ann_ids,
                                  template_id=template, template_version=1))


def test_task_names_are_fixed() -> None:
    assert list(TASKS) == ["caption_short", "caption_detailed", "vqa_short", "mc", "rec", "reg",
                           "grounded_caption", "counting", "classification", "ocr"]


CAPS = [Caption(text="A dog runs on a beach.", ann_id="c1"),
        Caption(text="A long description of a dog running along a sandy beach at dusk.", ann_id="c2", detailed=True),
        Caption(text="  a dog runs on a BEACH. ", ann_id="c3"),  # the same caption as c1: not used twice
        Caption(text="A brown dog near the sea.", ann_id="c4")]


def test_caption_short_one_seeded_caption() -> None:
    out = stage("caption_short", "brief").process_batch([rec(captions=CAPS)])
    assert out == [sample("coco/42/caption_short/0", "caption_short",
                          [("<image>\nDescribe the image briefly.", "A dog runs on a beach.")],
                          "caption_short/brief", ["c1"])]
    # The choice follows the seed: seeds 0..5 pick c1, c1, c4, c4, c1, c4 (the detailed c2, duplicate c3 never).
    picks = [AdaptStage(seed=s, tasks=["caption_short"]).process_batch([rec(captions=CAPS)])[0].lineage.ann_ids
             for s in range(6)]
    assert picks == [["c1"], ["c1"], ["c4"], ["c4"], ["c1"], ["c4"]]


def test_caption_short_captions_per_image_takes_distinct_short_captions_in_record_order() -> None:
    out = stage("caption_short", "brief", captions_per_image=5).process_batch([rec(captions=CAPS)])
    assert [(s.id, s.turns[1].text, s.lineage.ann_ids) for s in out] == [
        ("coco/42/caption_short/0", "A dog runs on a beach.", ["c1"]),
        ("coco/42/caption_short/1", "A brown dog near the sea.", ["c4"]),
    ]


def test_caption_detailed_uses_detailed_captions_only() -> None:
    out = stage("caption_detailed", "detail").process_batch([rec(captions=CAPS)])
    assert out == [sample("coco/42/caption_detailed/0", "caption_detailed",
                          [("<image>\nDescribe this image in detail.",
                            "A long description of a dog running along a sandy beach at dusk.")],
                          "caption_detailed/detail", ["c2"])]


def test_vqa_short_one_sample_per_vqa_question() -> None:
    r = rec(qas=[QA(question="What animal is this?", answer="dog", qid="q1"),
                 QA(question="What does the sign say?", answer="stop", qid="q2", kind="ocr"),
                 QA(question=" Is it sunny? ", answer=" yes ", qid="q3")])
    out = stage("vqa_short", "plain").process_batch([r])
    assert out == [
        sample("coco/42/vqa_short/0", "vqa_short", [(f"<image>\nWhat animal is this?\n{SHORT}", "dog")],
               "vqa_short/plain", ["q1"]),
        sample("coco/42/vqa_short/1", "vqa_short", [(f"<image>\nIs it sunny?\n{SHORT}", "yes")],
               "vqa_short/plain", ["q3"]),
    ]


def test_mc_with_context_and_letters() -> None:
    r = rec(qas=[QA(question="Which animal is on the left?", answer="cat", qid="m1", kind="mc",
                    choices=["dog", "cat", "bird"], answer_index=1, context="The photo was taken in a park.")])
    out = stage("mc", "plain").process_batch([r])
    assert out == [sample("coco/42/mc/0", "mc", [(
        "<image>\nContext: The photo was taken in a park.\nWhich animal is on the left?\nA. dog\nB. cat\nC. bird\n"
        f"{MC}",
        "B")], "mc/plain", ["m1"])]


def test_mc_text_only_record_gives_a_sample_without_image() -> None:
    r = rec(id="sqa7", source="scienceqa", source_kind="scienceqa", file="problems.json", image=None,
            qas=[QA(question="Which is a solid?", answer="ice", qid="sqa7", kind="mc", choices=["steam", "ice"],
                    answer_index=1, context="")])
    out = stage("mc", "plain").process_batch([r])
    assert out == [sample("scienceqa/sqa7/mc/0", "mc", [(f"Which is a solid?\nA. steam\nB. ice\n{MC}", "B")],
                          "mc/plain", ["sqa7"], r=r, image=False)]
    assert "<image>" not in out[0].turns[0].text


def test_mc_bad_answer_index_is_rejected() -> None:
    r = rec(qas=[QA(question="Pick one", answer="x", qid="m9", kind="mc", choices=["x", "y"], answer_index=5)])
    out = stage("mc", "plain").process_batch([r])
    assert len(out) == 1 and isinstance(out[0], Reject)
    assert (out[0].reason, out[0].stage, out[0].task, out[0].record, out[0].lineage.ann_ids) == \
        ("bad_value", "adapt", "mc", "42", ["m9"])
    assert "answer_index 5" in out[0].message and "ann/instances.json" in out[0].message


REFS = [RefExpr(ref_id="r7", sentences=["woman in red", "woman in red", "left lady"], box=B1, ann_id="a1"),
        RefExpr(ref_id="r8", sentences=["the bus"], box=B2, ann_id="a2")]


def test_rec_expression_to_box_marker() -> None:
    out = stage("rec", "locate").process_batch([rec(refs=REFS)])
    ask = 'Where is "{}" in the image? Give its bounding box.'
    assert out == [
        sample("coco/42/rec/0", "rec", [("<image>\n" + ask.format("woman in red"), "<box:0>")], "rec/locate",
               ["r7"], [B1]),
        sample("coco/42/rec/1", "rec", [("<image>\n" + ask.format("left lady"), "<box:0>")], "rec/locate",
               ["r7"], [B1]),
        sample("coco/42/rec/2", "rec", [("<image>\n" + ask.format("the bus"), "<box:0>")], "rec/locate",
               ["r8"], [B2]),
    ]


def test_reg_box_marker_to_expression() -> None:
    out = stage("reg", "refer").process_batch([rec(refs=REFS[1:])])
    assert out == [sample("coco/42/reg/0", "reg",
                          [("<image>\nWrite a referring expression for the object at <box:0>.", "the bus")],
                          "reg/refer", ["r8"], [B2])]


OBJS = [ObjectAnn(category="person", box=B1, ann_id="o1"),
        ObjectAnn(category="dog", box=B2, ann_id="o2"),
        ObjectAnn(category="person", box=B3, ann_id="o3", iscrowd=True),
        ObjectAnn(category="mouse", box=B2, ann_id="o4"),
        ObjectAnn(category="mouse", box=B1, ann_id="o5"),
        ObjectAnn(category="sheep", box=B1, ann_id="o6")]


def test_grounded_caption_lists_non_crowd_objects_with_markers() -> None:
    r = rec(captions=CAPS[:1], objects=OBJS[:3])
    out = stage("grounded_caption", "list").process_batch([r])
    assert out == [sample("coco/42/grounded_caption/0", "grounded_caption", [(
        "<image>\nDescribe the image briefly, then list the objects in it with their bounding boxes.",
        "A dog runs on a beach.\nObjects:\n- person <box:0>\n- dog <box:1>")], "grounded_caption/list",
        ["c1", "o1", "o2"], [B1, B2])]


def test_counting_per_category_sorted_skipping_crowded_categories() -> None:
    out = stage("counting", "how_many").process_batch([rec(objects=OBJS)])
    # person has a crowd region, so its count is unknown: no question about people.
    assert out == [
        sample("coco/42/counting/0", "counting", [("<image>\nHow many dogs are there in the image?", "1")],
               "counting/how_many", ["o2"]),
        sample("coco/42/counting/1", "counting", [("<image>\nHow many mice are there in the image?", "2")],
               "counting/how_many", ["o4", "o5"]),
        sample("coco/42/counting/2", "counting", [("<image>\nHow many sheep are there in the image?", "1")],
               "counting/how_many", ["o6"]),
    ]


def test_classification_label() -> None:
    r = rec(source="pets", source_kind="image_folder", file=None, label="tabby cat")
    out = stage("classification", "category").process_batch([r])
    assert out == [sample("pets/42/classification/0", "classification", [(
        "<image>\nWhat is the main subject of this image? Answer with its category name.", "tabby cat")],
        "classification/category", ["label"], r=r)]


def test_ocr_questions_and_read_the_text() -> None:
    r = rec(source="textvqa", source_kind="textvqa", qas=[QA(question="What brand is it?", answer="nike", qid="t1",
                                                               kind="ocr")],
            ocr_tokens=["JUST", "", "DO", "IT"])
    out = stage("ocr", ["plain", "read_text"]).process_batch([r])
    assert out == [
        sample("textvqa/42/ocr/0", "ocr", [(f"<image>\nWhat brand is it?\n{SHORT}", "nike")], "ocr/plain", ["t1"],
               r=r),
        sample("textvqa/42/ocr/1", "ocr", [("<image>\nRead out the text that appears in this image.",
                                            "JUST DO IT")], "ocr/read_text", ["ocr_tokens"], r=r),
    ]


def test_ocr_styles_restricted_to_questions_switch_off_reading() -> None:
    r = rec(qas=[QA(question="What brand is it?", answer="nike", qid="t1", kind="ocr")], ocr_tokens=["JUST"])
    out = stage("ocr", "labelled").process_batch([r])
    assert [(s.id, s.lineage.template_id) for s in out] == [("coco/42/ocr/0", "ocr/labelled")]


def test_empty_answer_and_empty_caption_become_rejects_once() -> None:
    r = rec(captions=[Caption(text="  ", ann_id="c9"), Caption(text="A cat.", ann_id="c10")],
            objects=OBJS[:2], qas=[QA(question="Why?", answer="", qid="q5")])
    out = AdaptStage(seed=0, tasks=["caption_short", "grounded_caption", "vqa_short"]).process_batch([r])
    assert [s.id for s in out if isinstance(s, Sample)] == ["coco/42/caption_short/0", "coco/42/grounded_caption/0"]
    rejects = [(x.reason, x.task, x.lineage.ann_ids) for x in out if isinstance(x, Reject)]
    assert rejects == [("empty_caption", "caption_short", ["c9"]), ("empty_answer", "vqa_short", ["q5"])]


def test_all_tasks_by_default_in_task_order() -> None:
    out = AdaptStage(seed=0).process_batch([rec(captions=CAPS[:1], objects=OBJS[:2])])
    assert [s.id for s in out] == ["coco/42/caption_short/0", "coco/42/grounded_caption/0",
                                   "coco/42/counting/0", "coco/42/counting/1"]
