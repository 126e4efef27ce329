"""A scripted stand-in for an LLM, served by `pipeline.llm.testing.FakeEndpoint` in the generate tests.

It reads the self-instruct request like a model would (the prompt kind, the captions and objects of the
last user message) and writes a well-formed reply about exactly those objects, so its answers pass the
filters. Directives in a caption change its behaviour, to exercise one code path each:
  #hallucinate   answers also mention a giraffe (absent from every fixture record)
  #garbage       the first reply is prose without JSON; the repair request gets a good reply
  #garbage-always  every reply is prose without JSON
  #truncate      the conversation JSON is cut off after the first pair (a partial reply)
  #wrongcount    the counting answer is off by one
  #box           the first answer cites the first object's box as the prompt wrote it
The reply depends only on the request, so every run gets the same replies.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from pipeline.adapt.plural import plural

_OBJ_RE = re.compile(r"^- (.+?) (\[[0-9., ]+\])$")


def read_context(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(captions, [(category, box text)]) from a rendered context."""
    captions: list[str] = []
    objects: list[tuple[str, str]] = []
    section = None
    for line in text.splitlines():
        if line.startswith("Captions:"):
            section = "c"
        elif line.startswith("Objects"):
            section = "o"
        elif line.startswith("- ") and line != "- (none)":
            if section == "c":
                captions.append(line[2:])
            elif section == "o":
                m = _OBJ_RE.match(line)
                if m:
                    objects.append((m.group(1).replace(" (a crowd)", ""), m.group(2)))
    return captions, objects


def prompt_kind(body: dict[str, Any]) -> str:
    fmt = body.get("response_format")
    if fmt:
        return fmt["json_schema"]["name"].removeprefix("self_instruct_")
    system = body["messages"][0]["content"]
    if '"conversation"' in system:
        return "conversation"
    if '"description"' in system:
        return "detail"
    return "complex"


def _listing(counts: Counter[str]) -> str:
    parts = [f"{n} {plural(c) if n > 1 else c}" for c, n in counts.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def respond(body: dict[str, Any]) -> str:
    messages = body["messages"]
    # The request's own context is the last user message that lists captions (repairs append others).
    context = next(m["content"] for m in reversed(messages) if m["role"] == "user" and "Captions:" in m["content"])
    captions, objects = read_context(context)
    directives = " ".join(captions)
    repairing = messages[-1]["role"] == "user" and messages[-1]["content"].startswith("That reply cannot be used")
    if "#garbage-always" in directives or ("#garbage" in directives and not repairing):
        return "Sure! Here is a lovely conversation about the picture, I hope you like it."
    counts = Counter(c for c, _ in objects)
    extra = " A giraffe stands in the background." if "#hallucinate" in directives else ""
    kind = prompt_kind(body)
    first_cat, first_n = next(iter(counts.items()))
    said_n = first_n + 1 if "#wrongcount" in directives else first_n
    said = f"{'is' if said_n == 1 else 'are'} {said_n} {first_cat if said_n == 1 else plural(first_cat)}"
    where = f" It is at {objects[0][1]}." if "#box" in directives else ""
    if kind == "conversation":
        pairs = [
            {"question": "What can be seen in this image?",
             "answer": f"The image shows {_listing(counts)}.{where}{extra}"},
            {"question": f"How many {plural(first_cat)} are there?",
             "answer": f"There {said}."},
        ]
        text = json.dumps({"conversation": pairs})
        if "#truncate" in directives:
            return text[: text.index("{", text.index("}")) + 15]
        return text
    if kind == "detail":
        return json.dumps({"description": f"This picture shows {_listing(counts)}. {captions[0]} The scene is "
                                          f"calm and the objects are easy to make out in the frame.{extra}"})
    return json.dumps({"question": f"Why might the {first_cat} be here?",
                       "answer": f"The {first_cat} is likely here because of what the scene shows: "
                                 f"{captions[0].rstrip('.').lower()}.{extra}"})
