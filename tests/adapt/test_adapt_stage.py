"""AdaptStage behaviour: grouping, seeded styles and determinism, user templates, escaping, rejects, pickling."""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import pytest

from pipeline.adapt import AdaptConfigError, AdaptStage
from schemas.box import Box
from schemas.image import ImageRef
from schemas.record import QA, AnnotationRecord, Caption, ObjectAnn, RefExpr
from schemas.reject import Reject
from schemas.sample import Lineage, Sample, Turn

SHORT = "Answer the question using a single word or phrase."
IMG = ImageRef(path="val/7.jpg", width=400, height=300)
B = [Box(x1=10 * i, y1=10, x2=10 * i + 50, y2=90, width=400, height=300) for i in range(6)]


def rec(rid: str = "7", **kw: Any) -> AnnotationRecord:
    base: dict[str, Any] = dict(id=rid, source="vqa", source_kind="vqav2", file="q.json", image=IMG)
    base.update(kw)
    return AnnotationRecord(**base)


def qas(n: int) -> list[QA]:
    return [QA(question=f"Question {i}?", answer=f"answer {i}", qid=f"q{i}") for i in range(n)]


def texts(s: Sample) -> list[str]:
    return [t.text for t in s.turns]


# ---- grouping ----------------------------------------------------------------------------------------------

def test_grouping_chunks_in_record_order_with_a_cap() -> None:
    st = AdaptStage(seed=0, tasks=["vqa_short"], styles={"vqa_short": ["plain"]}, group_max_turns=2)
    out = st.process_batch([rec(qas=qas(5))])
    assert [s.id for s in out] == ["vqa/7/vqa_short/0", "vqa/7/vqa_short/1", "vqa/7/vqa_short/2"]
    assert texts(out[0]) == [f"<image>\nQuestion 0?\n{SHORT}", "answer 0", f"Question 1?\n{SHORT}", "answer 1"]
    assert texts(out[1]) == [f"<image>\nQuestion 2?\n{SHORT}", "answer 2", f"Question 3?\n{SHORT}", "answer 3"]
    assert texts(out[2]) == [f"<image>\nQuestion 4?\n{SHORT}", "answer 4"]
    assert [s.lineage.ann_ids for s in out] == [["q0", "q1"], ["q2", "q3"], ["q4"]]
    assert all(sum(t.text.count("<image>") for t in s.turns) == 1 and s.images == [IMG] for s in out)


def test_grouped_box_markers_are_renumbered() -> None:
    refs = [RefExpr(ref_id=f"r{i}", sentences=[f"thing {i}"], box=B[i]) for i in range(3)]
    st = AdaptStage(seed=0, tasks=["rec", "reg"], styles={"rec": ["box_of"], "reg": ["refer"]}, group_max_turns=8)
    rec_s, reg_s = st.process_batch([rec(refs=refs)])
    ask = "Give the bounding box of the region this phrase describes: thing {}"
    assert texts(rec_s) == ["<image>\n" + ask.format(0), "<box:0>", ask.format(1), "<box:1>", ask.format(2), "<box:2>"]
    assert rec_s.boxes == B[:3]
    assert texts(reg_s)[::2] == ["<image>\nWrite a referring expression for the object at <box:0>.",
                                 "Write a referring expression for the object at <box:1>.",
                                 "Write a referring expression for the object at <box:2>."]
    assert (reg_s.id, reg_s.boxes, reg_s.lineage.ann_ids) == ("vqa/7/reg/0", B[:3], ["r0", "r1", "r2"])


def test_caption_tasks_are_not_grouped() -> None:
    caps = [Caption(text=f"Caption {i}.", ann_id=f"c{i}") for i in range(3)]
    out = AdaptStage(seed=0, tasks=["caption_short"], captions_per_image=3, group_max_turns=8
                     ).process_batch([rec(captions=caps)])
    assert [(s.id, len(s.turns)) for s in out] == [(f"vqa/7/caption_short/{i}", 2) for i in range(3)]


def test_grouped_sample_records_first_template_and_every_ann_id() -> None:
    out = AdaptStage(seed=3, tasks=["vqa_short"], group_max_turns=8).process_batch([rec(qas=qas(8))])
    assert len(out) == 1 and len(out[0].turns) == 16
    first_user = out[0].turns[0].text.removeprefix("<image>\n")
    expected_first = {"vqa_short/plain": f"Question 0?\n{SHORT}",
                      "vqa_short/labelled": f"Question: Question 0?\n{SHORT}",
                      "vqa_short/look": f"Look at the image. Question 0?\n{SHORT}"}
    assert first_user == expected_first[out[0].lineage.template_id]
    assert out[0].lineage.ann_ids == [f"q{i}" for i in range(8)]
    # Each turn draws its own style: eight turns of three styles use more than one.
    starts = {t.text.removeprefix("<image>\n").split(" ")[0] for t in out[0].turns[::2]}
    assert len(starts) > 1


# ---- determinism -------------------------------------------------------------------------------------------

def _corpus() -> list[AnnotationRecord]:
    out = []
    for i in range(40):
        caps = [Caption(text=f"Picture {i} caption {k}.", ann_id=f"{i}c{k}") for k in range(5)]
        out.append(rec(str(i), captions=caps,
                       objects=[ObjectAnn(category=["cat", "dog", "person"][k % 3], box=B[k], ann_id=f"{i}o{k}")
                                for k in range(i % 4)],
                       qas=qas(i % 5), refs=[RefExpr(ref_id=f"{i}r", sentences=["the left one"], box=B[1])]))
    return out


def _dump(items: list[Any]) -> dict[str, str]:
    return {x.id: x.model_dump_json() for x in items}


def test_same_output_across_instances_orders_and_batch_splits() -> None:
    kw: dict[str, Any] = dict(seed=11, captions_per_image=2, group_max_turns=3)
    records = _corpus()
    one = AdaptStage(**kw).process_batch(records)
    shuffled = records[:]
    random.Random(5).shuffle(shuffled)
    other = AdaptStage(**kw)
    pieces: list[Any] = []
    for start, size in [(0, 1), (1, 7), (8, 13), (21, 19)]:
        pieces += other.process_batch(shuffled[start:start + size])
    assert len(one) == len(pieces) > 100
    assert _dump(one) == _dump(pieces)
    # A stage shipped to a worker by pickle (compiled templates left behind) gives the same samples.
    shipped = pickle.loads(pickle.dumps(other))
    assert shipped._compiled is None
    assert _dump(shipped.process_batch(records)) == _dump(one)


def test_styles_spread_and_follow_the_seed() -> None:
    records = _corpus()
    a = [s.lineage.template_id for s in AdaptStage(seed=0, tasks=["rec"]).process_batch(records)]
    b = [s.lineage.template_id for s in AdaptStage(seed=1, tasks=["rec"]).process_batch(records)]
    assert set(a) == {"rec/box_of", "rec/find", "rec/locate"}
    assert a != b


# ---- templates ---------------------------------------------------------------------------------------------

def test_user_template_overrides_bundled_by_id(tmp_path: Path) -> None:
    (tmp_path / "vqa_short").mkdir()
    (tmp_path / "vqa_short" / "plain.jinja2").write_text(
        "{# version: 3 #}\n{% block user %}Q: {{ question }}\n" + SHORT + "{% endblock %}\n"
        "{% block assistant %}{{ answer | upper }}{% endblock %}\n", encoding="utf-8")
    (tmp_path / "vqa_short" / "mine.jinja2").write_text(
        "{% block user %}Mine: {{ question }}{% endblock %}{% block assistant %}{{ answer }}{% endblock %}",
        encoding="utf-8")
    st = AdaptStage(seed=0, tasks=["vqa_short"], styles={"vqa_short": ["plain"]}, template_dirs=[str(tmp_path)])
    [s] = st.process_batch([rec(qas=qas(1))])
    assert texts(s) == [f"<image>\nQ: Question 0?\n{SHORT}", "ANSWER 0"]
    assert (s.lineage.template_id, s.lineage.template_version) == ("vqa_short/plain", 3)
    # A new user style joins the rotation of the bundled ones.
    ids = {x.lineage.template_id for x in AdaptStage(seed=0, tasks=["vqa_short"], template_dirs=[str(tmp_path)])
           .process_batch([rec(str(i), qas=qas(3)) for i in range(20)])}
    assert ids == {"vqa_short/plain", "vqa_short/labelled", "vqa_short/look", "vqa_short/mine"}


def test_compiled_templates_are_shared_by_copies_and_renewed_when_a_file_changes(tmp_path: Path) -> None:
    """Ray unpickles a fresh stage per task: copies compile once per process, until a template file changes."""
    import os

    (tmp_path / "vqa_short").mkdir()
    f = tmp_path / "vqa_short" / "plain.jinja2"
    f.write_text("{% block user %}A: {{ question }}{% endblock %}{% block assistant %}{{ answer }}{% endblock %}",
                 encoding="utf-8")
    st = AdaptStage(seed=0, tasks=["vqa_short"], styles={"vqa_short": ["plain"]}, template_dirs=[str(tmp_path)])
    copy = pickle.loads(pickle.dumps(st))
    assert copy._compiled is None and copy._state() is st._state()
    f.write_text("{% block user %}Changed: {{ question }}{% endblock %}{% block assistant %}{{ answer }}"
                 "{% endblock %}", encoding="utf-8")
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    fresh = pickle.loads(pickle.dumps(st))
    [s] = fresh.process_batch([rec(qas=qas(1))])
    assert texts(s)[0] == "<image>\nChanged: Question 0?"
    assert fresh._state() is not st._state()


def test_user_template_with_unknown_variable_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "rec").mkdir()
    bad = tmp_path / "rec" / "oops.jinja2"
    bad.write_text("{% block user %}{{ phrase }}{% endblock %}{% block assistant %}{{ box }}{% endblock %}")
    with pytest.raises(AdaptConfigError, match=r"rec/oops .*oops\.jinja2.* phrase .*expression, box"):
        AdaptStage(seed=0, template_dirs=[str(tmp_path)])


def test_user_template_without_blocks_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "counting").mkdir()
    (tmp_path / "counting" / "flat.jinja2").write_text("How many {{ plural }}?")
    with pytest.raises(AdaptConfigError, match=r"counting/flat .*no block user or assistant"):
        AdaptStage(seed=0, tasks=["counting"], template_dirs=[str(tmp_path)])


def test_unknown_task_and_style_are_errors() -> None:
    with pytest.raises(AdaptConfigError, match=r"unknown task\(s\) 'captions'.*caption_short"):
        AdaptStage(seed=0, tasks=["captions"])
    with pytest.raises(AdaptConfigError, match=r"adapt.styles.mc: no template for style\(s\) 'fancy'.*"
                                               r"available styles: labelled, plain"):
        AdaptStage(seed=0, styles={"mc": ["fancy"]})


# ---- escaping, pass-through, rejects -------------------------------------------------------------------------

def test_literal_image_token_in_source_text_is_escaped() -> None:
    r = rec(qas=[QA(question="What does <image> mean here?", answer="the <image> tag <box:0>", qid="q1")])
    [s] = AdaptStage(seed=0, tasks=["vqa_short"], styles={"vqa_short": ["plain"]}).process_batch([r])
    assert sum(t.text.count("<image>") for t in s.turns) == 1
    assert texts(s) == [f"<image>\nWhat does &lt;image&gt; mean here?\n{SHORT}", "the &lt;image&gt; tag &lt;box:0>"]
    assert s.boxes == []


def test_samples_and_rejects_pass_through_unchanged() -> None:
    smp = Sample(id="alpaca/0", turns=[Turn(role="user", text="hi"), Turn(role="assistant", text="hello")],
                 task="text", source="alpaca", lineage=Lineage(source="alpaca"))
    rej = Reject(reason="image_missing", message="m", stage="source", source="vqa")
    out = AdaptStage(seed=0).process_batch([smp, rej])
    assert out[0] is smp and out[1] is rej


def test_record_no_task_can_use_becomes_no_task_reject() -> None:
    r = rec(objects=[ObjectAnn(category="cat", box=B[0], ann_id="o1")])
    [x] = AdaptStage(seed=0, tasks=["vqa_short", "caption_short"]).process_batch([r])
    assert isinstance(x, Reject)
    assert (x.reason, x.stage, x.source, x.file, x.record) == ("no_task", "adapt", "vqa", "q.json", "7")
    assert "(vqa_short, caption_short)" in x.message and "1 object(s)" in x.message
    assert "adapt.tasks (counting)" in x.message


def test_captions_without_image_are_no_task() -> None:
    r = rec(image=None, captions=[Caption(text="A cat.", ann_id="c1")])
    [x] = AdaptStage(seed=0).process_batch([r])
    assert isinstance(x, Reject) and x.reason == "no_task" and "no image" in x.message
    assert "no task can use such a record" in x.message
