"""ScienceQA: multiple-choice science questions, some with an image, some text-only.

`problems.json` is a dict keyed by problem id (pid). Each problem becomes one record with one
multiple-choice QA: the hint (when not empty) is the context before the question. A problem without an
image is still a valid record (`image` is None): a text-only science question. The lecture and the
solution are not read: the data model has no field for them and the bundled templates do not use them.
Splits come from each problem's `split` field, or, when `pid_splits` is given, from that file's lists
(which also name the derived splits such as minival). Images live at `{split}/{pid}/image.png` under
`image_prefix` (usually `images`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Generator, Iterator

from schemas.record import QA, AnnotationRecord
from schemas.sample import escape_source_text
from sources.base import Item, Source, SourceError, SourceOptions, load_json

_PROBLEM_KEYS = ("question", "choices", "answer", "split")
_PROBLEMS_HINT = ("ScienceQA's problems.json: an object keyed by pid, each "
                  "{question, choices, answer, hint, image, split}")
_SPLITS_HINT = "ScienceQA's pid_splits.json: an object mapping split names to lists of pids"


class ScienceQAOptions(SourceOptions):
    """`path`: problems.json; `pid_splits`: optional pid_splits.json that `splits` select from."""

    path: str
    pid_splits: str | None = None

    path_keys: ClassVar[tuple[str, ...]] = ("path", "pid_splits")


class ScienceQASource(Source):
    """Reads ScienceQA problems into multiple-choice QA records, in file order."""

    kind: ClassVar[str] = "scienceqa"
    Options: ClassVar[type[SourceOptions]] = ScienceQAOptions

    def _selected_pids(self) -> set[str] | None:
        """The pids of the selected splits from `pid_splits`; None when every problem is kept by its own split."""
        opts = self.options
        assert isinstance(opts, ScienceQAOptions)
        if opts.pid_splits is None or opts.splits is None:
            return None
        data = load_json(opts.pid_splits, self.kind, _SPLITS_HINT)
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise SourceError(f"{self.kind}: {opts.pid_splits} is not a pid_splits file; expected {_SPLITS_HINT}")
        unknown = [s for s in opts.splits if s not in data]
        if unknown:
            raise SourceError(f"{self.kind}: {opts.pid_splits} has no split(s) {', '.join(map(repr, unknown))}; "
                              f"it lists {', '.join(sorted(data))}. Fix `splits` in the recipe")
        return {str(pid) for s in opts.splits for pid in data[s]}

    def read(self) -> Iterator[Item]:
        opts = self.options
        assert isinstance(opts, ScienceQAOptions)
        path = opts.path
        problems = load_json(path, self.kind, _PROBLEMS_HINT)
        if not isinstance(problems, dict):
            raise SourceError(f"{self.kind}: {path} holds a JSON {type(problems).__name__}; expected {_PROBLEMS_HINT}")
        first = next(iter(problems.values()), None)
        if isinstance(first, list):
            raise SourceError(f"{self.kind}: {path} maps names to lists, like pid_splits.json; `path` must be "
                              f"problems.json ({_PROBLEMS_HINT}) and pid_splits.json goes in `pid_splits`")
        selected = self._selected_pids()

        n = 0
        for pid, prob in problems.items():
            if self.limited(n):
                return
            pid = str(pid)
            if not isinstance(prob, dict):
                yield self.reject("bad_value", f"{self.kind}: problem {pid} in {path} is a {type(prob).__name__}, "
                                  f"expected an object with keys {', '.join(_PROBLEM_KEYS)}", file=path, record=pid)
                continue
            if selected is not None:
                if pid not in selected:
                    continue
            elif "split" in prob and not self.split_ok(str(prob["split"])):
                continue
            missing = [k for k in _PROBLEM_KEYS if k not in prob]
            if missing:
                yield self.reject("missing_key", f"{self.kind}: problem {pid} in {path} has no "
                                  f"{', '.join(map(repr, missing))} key; a problem needs {', '.join(_PROBLEM_KEYS)}",
                                  file=path, record=pid)
                continue
            split = str(prob["split"])
            record = yield from self._record(pid, prob, split, path)
            if record is not None:
                n += 1
                yield record

    def _record(self, pid: str, prob: dict[str, Any], split: str, path: str
                ) -> Generator[Item, None, AnnotationRecord | None]:
        """Yield the rejects of one problem; return its record (None if it was rejected)."""
        question = prob["question"]
        if not isinstance(question, str) or not question.strip():
            yield self.reject("empty_question", f"{self.kind}: problem {pid} in {path} has an empty question "
                              f"(got {question!r})", file=path, record=pid)
            return None
        choices = prob["choices"]
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
            yield self.reject("bad_value", f"{self.kind}: problem {pid} in {path} has choices {choices!r}; "
                              "expected a non-empty list of strings", file=path, record=pid)
            return None
        answer = prob["answer"]
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
            yield self.reject("bad_value", f"{self.kind}: problem {pid} in {path} has answer {answer!r}, which "
                              f"is not an index into its {len(choices)} choices (0..{len(choices) - 1})",
                              file=path, record=pid)
            return None
        if not choices[answer].strip():
            yield self.reject("empty_answer", f"{self.kind}: problem {pid} in {path}: the right choice "
                              f"(index {answer}) is empty", file=path, record=pid)
            return None
        image = None
        file_name = prob.get("image")
        if file_name:
            rel = f"{split}/{pid}/{file_name}"
            image, reason = self.image_ref(rel)
            if image is None:
                assert reason is not None
                yield self.image_reject(reason, rel, file=path, record=pid)
                return None
        hint = prob.get("hint")
        context = escape_source_text(hint.strip()) if isinstance(hint, str) and hint.strip() else None
        texts = [escape_source_text(c.strip()) for c in choices]
        qa = QA(kind="mc", question=escape_source_text(question.strip()), choices=texts, answer_index=answer,
                answer=texts[answer], context=context, qid=pid)
        return AnnotationRecord(id=pid, source=self.name, source_kind=self.kind, file=path, image=image,
                                split=split, qas=[qa])
