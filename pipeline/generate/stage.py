"""The generate stage: an LLM writes self-instruct conversations from a record's captions and boxes.

For every AnnotationRecord with an image and captions or objects, and every configured prompt kind
(conversation, detail, complex), the stage renders the prompt, asks the LLM through `LLMClient`
(cache, limits, retries, structured output), parses the reply into question-answer pairs, applies the
quality filters, and returns one Sample or one Reject per (record, prompt): nothing is dropped, and
`units = accepted + rejected`. Samples and Rejects that come in pass through untouched.

`process_batch` is synchronous but the client is async: each worker runs one event loop in a background
thread and a batch's requests run concurrently on it (up to `concurrency`). Each request's seed comes
from (seed, sample id), and replies are cached by request, so a rerun or a resumed run gives the same
samples without calling the endpoint again.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import tempfile
import uuid
import weakref
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pipeline.adapt.seeding import seeded_index, seeded_subset, stable_hash
from pipeline.generate.boxes import boxes_to_markers
from pipeline.generate.filters import Chair, record_facts, run_filters
from pipeline.generate.parse import ParsedReply, completion_parser
from pipeline.generate.prompts import Prompt, PromptBuilder, reply_schema
from pipeline.generate.stats import merge_stats
from pipeline.llm.cache import ResponseCache
from pipeline.llm.client import LLMClient, LLMReplyError, LLMRequestError, Sampling
from pipeline.llm.config import GenerateSection
from pipeline.llm.loop import LoopThread
from pipeline.stage import Item, Stage
from schemas.box import Box
from schemas.record import AnnotationRecord
from schemas.reject import Reject
from schemas.sample import IMAGE_TOKEN, Lineage, Sample, escape_source_text
from templates.library import TemplateLibrary


class GenerateConfigError(ValueError):
    """The generate section cannot run as configured (a missing API key variable, a broken template)."""


def task_name(kind: str) -> str:
    """The sample task of a prompt kind: `self_instruct_conversation`, ..."""
    return f"self_instruct_{kind}"


def sample_id(record: AnnotationRecord, kind: str) -> str:
    """Stable id of the sample made from `record` by prompt `kind` (same scheme as the adapt stage)."""
    return f"{record.source}/{record.id}/{task_name(kind)}/0"


def request_seed(seed: int, sid: str) -> int:
    """The sampling seed of one request: fixed by (seed, sample id), never by worker or order."""
    return stable_hash(seed, f"generate/{sid}") % (2**31 - 1)


@dataclass
class _Runtime:
    """Per-worker state built by setup(): never pickled."""

    loop: LoopThread
    client: LLMClient
    builder: PromptBuilder
    instructions: list[str]
    schemas: dict[str, dict[str, Any]]
    server: Any = None


def _shutdown(rt: _Runtime) -> None:
    try:
        rt.loop.run(rt.client.aclose())
    except Exception:  # noqa: BLE001 - best effort at teardown
        pass
    rt.loop.stop()
    if rt.server is not None:
        rt.server.stop()


@dataclass
class GenerateStage(Stage):
    """Self-instruct generation (see the module docstring). Options come from the recipe's `generate:`."""

    name: ClassVar[str] = "generate"

    config: GenerateSection = field(default_factory=GenerateSection)
    #: The recipe seed; used when `config.seed` is None.
    seed: int = 0
    #: An endpoint that is already running (e.g. a LocalServer the driver started for all workers);
    #: None = `config.endpoint` (for `local`, each worker then starts its own server).
    base_url: str | None = None
    #: Also pass each record on after its samples (for a later stage that reads records, e.g. adapt).
    keep_records: bool = False
    #: Folder where each worker writes its stats() after every batch (`collect_stats` merges them).
    stats_dir: str | None = None

    _rt: _Runtime | None = field(default=None, init=False, repr=False, compare=False)
    _counts: Counter[str] = field(default_factory=Counter, init=False, repr=False, compare=False)
    _chair: Chair = field(default_factory=Chair, init=False, repr=False, compare=False)
    _stats_file: str | None = field(default=None, init=False, repr=False, compare=False)
    _last_llm: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Workers may start in another folder: fix relative folders to the driver's working directory.
        c = self.config
        if c.cache_dir is not None and not os.path.isabs(c.cache_dir):
            self.config = c.model_copy(update={"cache_dir": os.path.abspath(c.cache_dir)})
        if self.stats_dir is not None:
            self.stats_dir = os.path.abspath(self.stats_dir)

    @classmethod
    def from_section(cls, section: GenerateSection, seed: int, **kwargs: Any) -> "GenerateStage":
        return cls(config=section, seed=seed, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        # A copy is a new worker: threads, sockets, the server and the counts stay with this one.
        state = dict(self.__dict__)
        state.pop("_finalizer", None)
        state.update(_rt=None, _counts=Counter(), _chair=Chair(), _stats_file=None, _last_llm={})
        return state

    @property
    def effective_seed(self) -> int:
        return self.seed if self.config.seed is None else self.config.seed

    # ---- lifecycle -------------------------------------------------------------------------------------

    def setup(self) -> None:
        if self._rt is not None:
            return
        c = self.config
        builder = PromptBuilder(TemplateLibrary(c.templates), c.max_pairs, c.max_objects, c.language)
        for kind in c.prompts:
            builder.build(_PROBE, kind)  # fail early on a missing or broken template
        instructions = builder.instructions() if "detail" in c.prompts else []
        api_key = None
        if c.api_key_env:
            api_key = os.environ.get(c.api_key_env)
            if not api_key:
                raise GenerateConfigError(f"generate.api_key_env: the environment variable {c.api_key_env} is not "
                                          f"set (or empty); export it with the endpoint's API key before the run")
        server = None
        base_url = self.base_url
        if base_url is None and c.endpoint != "local":
            base_url = c.endpoint
        if base_url is None:
            from pipeline.llm.server import LocalServer

            server = LocalServer(c.local, c.model_name).start()
            base_url = server.base_url
        share = c.actors
        loop = LoopThread()

        async def make_client() -> LLMClient:
            return LLMClient(
                base_url, c.model_name, api_key, concurrency=max(1, math.ceil(c.concurrency / share)),
                rpm=c.rpm / share if c.rpm else None, tpm=c.tpm / share if c.tpm else None,
                timeout_s=c.timeout_s, max_retries=c.max_retries, backoff_base_s=c.backoff_base_s,
                backoff_max_s=c.backoff_max_s, cache=ResponseCache(c.cache_dir) if c.cache_dir else None,
                structured_output=c.structured_output, seed=self.effective_seed)

        try:
            client = loop.run(make_client())
        except BaseException:
            loop.stop()
            if server is not None:
                server.stop()
            raise
        schemas = {k: reply_schema(k, c.max_pairs) for k in c.prompts}
        self._rt = _Runtime(loop, client, builder, instructions, schemas, server)
        self.__dict__["_finalizer"] = weakref.finalize(self, _shutdown, self._rt)

    def close(self) -> None:
        """Close the client, stop the event loop and any server this worker started."""
        if self._rt is not None:
            self._last_llm = self._rt.client.stats.as_dict()
        fin = self.__dict__.pop("_finalizer", None)
        if fin is not None:
            fin()
        self._rt = None

    # ---- processing ------------------------------------------------------------------------------------

    def process_batch(self, items: list[Item]) -> list[Item]:
        self.setup()
        rt = self._rt
        assert rt is not None
        jobs: list[tuple[int, AnnotationRecord, str]] = []
        slots: list[list[Item]] = []
        for item in items:
            if not isinstance(item, AnnotationRecord) or (
                    self.config.sources is not None and item.source not in self.config.sources):
                slots.append([item])
                continue
            self._counts["records"] += 1
            problem = self._unusable(item)
            if problem is not None:
                slots.append([self._no_context(item, problem)])
                self._counts["units"] += 1
                self._counts["rejected"] += 1
                self._counts["reject:no_context"] += 1
            else:
                slots.append([])
                for kind in self._kinds(item):
                    jobs.append((len(slots) - 1, item, kind))
            if self.keep_records:
                slots[-1].append(item)
        results = rt.loop.run(self._run_all(rt, jobs)) if jobs else []
        for (slot, record, _), result in zip(jobs, results):
            # Samples go before the kept record, in prompt order.
            pos = len(slots[slot]) - (1 if self.keep_records else 0)
            slots[slot].insert(pos, result)
        self._write_stats()
        return [x for group in slots for x in group]

    def _kinds(self, record: AnnotationRecord) -> list[str]:
        kinds = list(self.config.prompts)
        k = self.config.prompts_per_record
        if k is not None and k < len(kinds):
            kinds = seeded_subset(self.effective_seed, f"generate/{record.source}/{record.id}", kinds, k)
        return kinds

    @staticmethod
    def _unusable(record: AnnotationRecord) -> str | None:
        if record.image is None:
            return "it has no image"
        if not record.captions and not record.objects:
            return "it has neither captions nor objects for the LLM to read"
        return None

    async def _run_all(self, rt: _Runtime, jobs: list[tuple[int, AnnotationRecord, str]]) -> list[Item]:
        facts_cache: dict[int, Any] = {}

        async def one(record: AnnotationRecord, kind: str) -> Item:
            key = id(record)
            if key not in facts_cache:
                facts_cache[key] = record_facts(record, self.config.filters.negation_window)
            return await self._unit(rt, record, kind, facts_cache[key])

        return list(await asyncio.gather(*(one(r, k) for _, r, k in jobs)))

    async def _unit(self, rt: _Runtime, record: AnnotationRecord, kind: str, facts: Any) -> Item:
        c = self.config
        sid = sample_id(record, kind)
        prompt = rt.builder.build(record, kind)
        sampling = Sampling(c.temperature, c.top_p, c.max_tokens, request_seed(self.effective_seed, sid))
        self._counts["units"] += 1
        try:
            parsed = await rt.client.chat_json(prompt.messages, sampling, rt.schemas[kind],
                                               completion_parser(kind, c.max_pairs),
                                               schema_name=task_name(kind), max_repairs=c.max_repairs)
        except LLMRequestError as e:
            return self._reject(record, kind, prompt, sampling, "llm_request_failed",
                                f"the LLM request failed: {e} [{e.kind}]", raw=None, structured=None)
        except LLMReplyError as e:
            last = e.replies[-1]
            return self._reject(record, kind, prompt, sampling, "llm_unparseable",
                                f"the reply is not the JSON the prompt asks for: {e}", raw=last.content,
                                structured=last.structured)
        reply: ParsedReply = parsed.value
        final = parsed.completions[-1]
        if reply.partial:
            self._counts["partial_replies"] += 1
            self._counts["pairs_dropped"] += reply.dropped
        pairs = reply.pairs
        if kind == "detail":
            q = rt.instructions[seeded_index(self.effective_seed, f"{sid}/instruction", len(rt.instructions))]
            pairs = [(q, pairs[0][1])]
        examples = [m["content"] for m in prompt.messages[:-1] if m["role"] == "assistant"]
        result = run_filters(kind, pairs, facts, c.filters, c.language, examples)
        self._chair.add(result.chair)
        if result.verdict is not None:
            return self._reject(record, kind, prompt, sampling, result.verdict.reason, result.verdict.message,
                                raw=final.content, structured=final.structured, passed=result.passed)
        flags = list(result.passed) + (["parse:partial"] if reply.partial else [])
        return self._sample(record, kind, prompt, sampling, pairs, final.content, final.structured, flags)

    # ---- building outputs ------------------------------------------------------------------------------

    def _lineage(self, record: AnnotationRecord, prompt: Prompt, sampling: Sampling, raw: str | None,
                 structured: bool | None, filters: list[str]) -> Lineage:
        ann_ids = [x.ann_id for x in (*record.captions, *record.objects) if x.ann_id is not None]
        params = sampling.as_dict()
        if structured is not None:
            params["json_schema"] = structured
        return Lineage(source=record.source, source_kind=record.source_kind, file=record.file,
                       ann_ids=list(dict.fromkeys(ann_ids)), template_id=prompt.template_id,
                       template_version=prompt.template_version, model=self.config.model_name,
                       sampling=params, prompt_hash=prompt.prompt_hash, raw_output=raw, filters=filters)

    def _sample(self, record: AnnotationRecord, kind: str, prompt: Prompt, sampling: Sampling,
                pairs: list[tuple[str | None, str]], raw: str, structured: bool, filters: list[str]) -> Sample:
        boxes: list[Box] = []
        size = _image_size(record)
        turns: list[dict[str, str]] = []
        for i, (q, a) in enumerate(pairs):
            user = boxes_to_markers(escape_source_text(q or ""), size, boxes)
            if i == 0:
                user = f"{IMAGE_TOKEN}\n{user}"
            turns.append({"role": "user", "text": user})
            turns.append({"role": "assistant", "text": boxes_to_markers(escape_source_text(a), size, boxes)})
        self._counts["accepted"] += 1
        self._counts[f"accepted:{kind}"] += 1
        assert record.image is not None
        return Sample(id=sample_id(record, kind), images=[record.image], turns=turns, boxes=boxes,
                      task=task_name(kind), source=record.source,
                      lineage=self._lineage(record, prompt, sampling, raw, structured, filters))

    def _reject(self, record: AnnotationRecord, kind: str, prompt: Prompt, sampling: Sampling, reason: str,
                problem: str, *, raw: str | None, structured: bool | None, passed: list[str] | None = None) -> Reject:
        self._counts["rejected"] += 1
        self._counts[f"reject:{reason}"] += 1
        where = f" ({record.file})" if record.file else ""
        return Reject(
            reason=reason,
            message=(f"generate/{kind}: record {record.id} of source {record.source}{where}: {problem}. "
                     f"{_FIXES.get(reason, _FIX_FILTER)}"),
            stage=self.name, source=record.source, file=record.file, record=record.id,
            sample_id=sample_id(record, kind), task=task_name(kind), template_id=prompt.template_id,
            lineage=self._lineage(record, prompt, sampling, raw, structured, passed or []),
        )

    def _no_context(self, record: AnnotationRecord, problem: str) -> Reject:
        where = f" ({record.file})" if record.file else ""
        return Reject(
            reason="no_context",
            message=(f"generate: record {record.id} of source {record.source}{where} cannot be used: {problem}. "
                     "Fix: give the generate stage records with an image and captions or boxes (add a "
                     "captions or instances source for these images)"),
            stage=self.name, source=record.source, file=record.file, record=record.id,
            lineage=Lineage(source=record.source, source_kind=record.source_kind, file=record.file),
        )

    # ---- figures -----------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """This worker's counts (plain numbers; `pipeline.generate.stats.merge_stats` adds workers up)."""
        c = self._counts
        rejects = {k.split(":", 1)[1]: v for k, v in sorted(c.items()) if k.startswith("reject:")}
        accepted_by = {k.split(":", 1)[1]: v for k, v in sorted(c.items()) if k.startswith("accepted:")}
        llm = self._rt.client.stats.as_dict() if self._rt is not None else self._last_llm
        h = self._chair
        return {
            "records": c["records"], "units": c["units"], "accepted": c["accepted"], "rejected": c["rejected"],
            "accepted_by_prompt": accepted_by, "rejects": rejects,
            "partial_replies": c["partial_replies"], "pairs_dropped": c["pairs_dropped"],
            "llm": llm,
            "hallucination": {"answers": h.answers, "answers_hallucinated": h.answers_hallucinated,
                              "mentions": h.mentions, "mentions_hallucinated": h.mentions_hallucinated,
                              "categories": {k: h.categories[k] for k in sorted(h.categories)}},
        }

    def _write_stats(self) -> None:
        if self.stats_dir is None:
            return
        d = Path(self.stats_dir)
        d.mkdir(parents=True, exist_ok=True)
        if self._stats_file is None:
            self._stats_file = str(d / f"generate-{os.getpid()}-{uuid.uuid4().hex[:8]}.json")
        fd, tmp = tempfile.mkstemp(prefix=".generate.", suffix=".tmp", dir=d)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.stats(), f, sort_keys=True)
        os.replace(tmp, self._stats_file)


def collect_stats(stats_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Merge the stats files the workers wrote into `stats_dir`."""
    parts = []
    for p in sorted(Path(stats_dir).glob("generate-*.json")):
        with open(p, encoding="utf-8") as f:
            parts.append(json.load(f))
    return merge_stats(parts)


#: A record every template must render for (checked in setup, so a broken template fails before any call).
_PROBE = AnnotationRecord.model_validate({
    "id": "probe", "source": "probe", "source_kind": "probe", "image": {"path": "probe.jpg", "width": 4, "height": 4},
    "captions": [{"text": "A cat on a mat."}],
    "objects": [{"category": "cat", "box": {"x1": 0, "y1": 0, "x2": 2, "y2": 2, "width": 4, "height": 4}}]})

_FIX_FILTER = ("The sample was filtered out; tune generate.filters, or use a stronger model "
               "(generate.endpoint and generate.model)")
_FIXES: dict[str, str] = {
    "llm_request_failed": ("Check that the endpoint is up and generate.endpoint / generate.model are right; "
                           "raise generate.max_retries or generate.timeout_s, or lower generate.concurrency / "
                           "generate.rpm if the server is overloaded; rerun (finished requests are cached)"),
    "llm_unparseable": ("Raise generate.max_tokens if the reply was cut off, or generate.max_repairs; a stronger "
                        "model follows the JSON format more reliably"),
}


def _image_size(record: AnnotationRecord) -> tuple[int, int] | None:
    if record.image is not None and record.image.width and record.image.height:
        return record.image.width, record.image.height
    if record.objects:
        return record.objects[0].box.width, record.objects[0].box.height
    return None
