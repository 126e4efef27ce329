"""The dataset card: `README.md` in the output folder, with Hugging Face-style YAML front matter.

The front matter carries what the Hub indexes (license, task categories, size category); the body
shows the composition (per source, task and template; the text-only share against the mix target),
length distributions, reject reasons with counts and meanings, and a few example samples. Every figure
comes from the run's `stats.json` dict, so the card and the stats never disagree.

Keys read from `stats` (all optional but `samples`): `samples` {accepted, text_only, multimodal},
`per_source` {name: {records, samples_accepted, samples_rejected}}, `per_task` / `per_template`
{name: {accepted, rejected}}, `rejects` {total, by_reason}, `lengths` {name: distribution} with an
optional `tokens_histogram` {bucket: count} and `tokenizer`, and `mix` (the report of `pipeline/mix.py`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import yaml

from outputs.base import atomic_write_text
from schemas.reject import REASONS

#: Hub task category of each vlforge task (tasks not listed fall under image-text-to-text only).
TASK_CATEGORIES: dict[str, str] = {
    "caption_short": "image-to-text",
    "caption_detailed": "image-to-text",
    "grounded_caption": "image-to-text",
    "reg": "image-to-text",
    "ocr": "image-to-text",
    "vqa_short": "visual-question-answering",
    "mc": "visual-question-answering",
    "counting": "visual-question-answering",
    "classification": "visual-question-answering",
    "rec": "visual-question-answering",
}
_CATEGORY_ORDER = ("image-text-to-text", "visual-question-answering", "image-to-text", "text-generation")
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))
_DIST_COLUMNS = ("count", "min", "mean", "p50", "p90", "p99", "max")


def size_category(n: int) -> str:
    """The Hub's size category for n samples: `n<1K`, `1K<n<10K`, ..., `n>1B`."""
    for bound, label in _SIZES:
        if n < bound:
            return label
    return "n>1B"


def task_categories(stats: dict[str, Any]) -> list[str]:
    """Hub task categories from the tasks with accepted samples, and text-generation for text-only ones."""
    samples = stats.get("samples", {})
    found: set[str] = set()
    if samples.get("multimodal", 0):
        found.add("image-text-to-text")
    for task, counts in stats.get("per_task", {}).items():
        if counts.get("accepted", 0) and task in TASK_CATEGORIES:
            found.add(TASK_CATEGORIES[task])
    if samples.get("text_only", 0):
        found.add("text-generation")
    return [c for c in _CATEGORY_ORDER if c in found]


def _cell(v: Any) -> str:
    text = "-" if v is None else str(v)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> list[str]:
    """A Markdown table. `align` has one letter per column, `l` or `r` (numbers); by default the first
    column is left-aligned and the others right-aligned."""
    marks = ["---" if a == "l" else "---:" for a in (align or "l" + "r" * (len(header) - 1))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines.extend("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows)
    return lines


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks inside `text`."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _front_matter(recipe_name: str, stats: dict[str, Any], license: str, language: Sequence[str] | None,
                  categories: Sequence[str] | None, configs: list[dict[str, Any]] | None) -> dict[str, Any]:
    front: dict[str, Any] = {"license": license}
    if language:
        front["language"] = list(language)
    front["task_categories"] = list(categories) if categories is not None else task_categories(stats)
    front["size_categories"] = [size_category(int(stats.get("samples", {}).get("accepted", 0)))]
    front["pretty_name"] = recipe_name
    front["tags"] = ["vlforge", "instruction-tuning", "vision-language"]
    if configs:
        front["configs"] = configs
    return front


def _composition(stats: dict[str, Any]) -> list[str]:
    s = stats.get("samples", {})
    total = int(s.get("accepted", 0))
    text_only = int(s.get("text_only", 0))
    lines = ["## Composition", "",
             f"{total:,} samples: {int(s.get('multimodal', total - text_only)):,} multimodal and {text_only:,} "
             f"text-only (text-only share {_pct(text_only, total)})."]
    mix = stats.get("mix")
    if mix:
        lines[-1] += (f" Mix target: {100.0 * mix['target_share']:.1f}% text-only by {mix['by']}, achieved "
                      f"{100.0 * mix['achieved_share']:.1f}%")
        if mix["by"] == "tokens":
            lines[-1] += f" (tokens counted with {mix.get('tokenizer', 'whitespace')})"
        lines[-1] += "."
    per_source = stats.get("per_source", {})
    if per_source:
        lines += ["", "### Per source", ""]
        lines += _table(["source", "records", "samples", "rejected", "share"],
                        [(k, v.get("records", 0), v.get("samples_accepted", 0), v.get("samples_rejected", 0),
                          _pct(v.get("samples_accepted", 0), total)) for k, v in per_source.items()])
    for title, key, name in (("Per task", "per_task", "task"), ("Per template", "per_template", "template")):
        rows = stats.get(key, {})
        if rows:
            lines += ["", f"### {title}", ""]
            lines += _table([name, "samples", "rejected", "share"],
                            [(k, v.get("accepted", 0), v.get("rejected", 0), _pct(v.get("accepted", 0), total))
                             for k, v in rows.items()])
    if mix and mix.get("per_source"):
        lines += ["", "### Text-only mix", ""]
        lines += _table(["source", "weight", "cap", "upsample", "available", "picked", "repeats", "tokens"],
                        [(k, f"{v['weight']:g}", v.get("cap"), "yes" if v.get("upsample") else "no",
                          v["available"], v["picked"], v["repeats"], v["tokens"])
                         for k, v in mix["per_source"].items()], "lrrlrrrr")
    return lines


def _lengths(stats: dict[str, Any]) -> list[str]:
    lengths = {k: v for k, v in stats.get("lengths", {}).items() if isinstance(v, dict) and "count" in v}
    if not lengths:
        return []
    order = sorted(lengths, key=lambda k: (k != "tokens", k))
    lines = ["", "## Lengths", ""]
    if "tokens" in lengths:
        tok = stats.get("lengths", {}).get("tokenizer") or (stats.get("mix") or {}).get("tokenizer") or "whitespace"
        lines += [f"Tokens are counted with {tok} (text only; image placeholders are not counted).", ""]
    lines += _table(["per sample", *_DIST_COLUMNS], [(k, *(lengths[k].get(c, 0) for c in _DIST_COLUMNS))
                                                      for k in order])
    hist = stats.get("lengths", {}).get("tokens_histogram")
    if hist:
        lines += ["", "Token-length histogram:", ""]
        lines += _table(["tokens", "samples"], list(hist.items()))
    return lines


def _rejects(stats: dict[str, Any]) -> list[str]:
    rej = stats.get("rejects", {})
    by_reason = rej.get("by_reason", {})
    lines = ["", "## Rejects", ""]
    if not by_reason:
        return lines + ["No record or sample was rejected."]
    lines += [f"{int(rej.get('total', sum(by_reason.values()))):,} rejects in `rejects.jsonl`, each with its reason "
              "and lineage.", ""]
    rows = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    return lines + _table(["reason", "count", "meaning"], [(k, n, REASONS.get(k, "")) for k, n in rows], "lrl")


def _examples(examples: Sequence[dict[str, Any]]) -> list[str]:
    if not examples:
        return []
    lines = ["", "## Examples"]
    for ex in examples:
        title = f"`{ex['id']}`" if "id" in ex else "Sample"
        extra = [str(ex[k]) for k in ("task", "source") if isinstance(ex.get(k), str)]
        if extra:
            title += f" ({', '.join(extra)})"
        body = json.dumps(ex, indent=2, ensure_ascii=False)
        fence = _fence(body)
        lines += ["", f"### {title}", "", f"{fence}json", body, fence]
    return lines


def render_card(recipe_name: str, stats: dict[str, Any], examples: Sequence[dict[str, Any]], license: str,
                description: str | None = None, language: Sequence[str] | None = None,
                categories: Sequence[str] | None = None, configs: list[dict[str, Any]] | None = None) -> str:
    """The card's text. `categories` overrides the task categories derived from the tasks; `configs`
    (e.g. `[{"config_name": "default", "data_files": "hf/*.parquet"}]`) tells the Hub how to load the data."""
    front = _front_matter(recipe_name, stats, license, language, categories, configs)
    head = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=False)
    lines = ["---", head.rstrip("\n"), "---", "", f"# {recipe_name}", "",
             f"Vision-language instruction-tuning data built by vlforge from the recipe `{recipe_name}`."]
    if description:
        lines += ["", description.strip()]
    lines += ["", *_composition(stats), *_lengths(stats), *_rejects(stats), *_examples(examples)]
    return "\n".join(lines) + "\n"


def write_card(out_dir: str | os.PathLike[str], recipe_name: str, stats: dict[str, Any],
               examples: Sequence[dict[str, Any]], license: str, description: str | None = None,
               language: Sequence[str] | None = None, categories: Sequence[str] | None = None,
               configs: list[dict[str, Any]] | None = None) -> Path:
    """Write `README.md` (atomically) in `out_dir` and return its path; see `render_card`."""
    text = render_card(recipe_name, stats, examples, license, description, language, categories, configs)
    return atomic_write_text(Path(out_dir) / "README.md", text)
