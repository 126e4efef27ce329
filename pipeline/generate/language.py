"""Is a text written in the requested language? A dependency-free check for generated answers.

Two signals: the writing system (share of the letters that belong to the language's script) and, for
languages written in Latin letters, which language's common function words occur most often. Short
texts (under `MIN_WORDS` words) are judged on the script alone, which cannot tell English from French:
the check is meant to catch a model that drifts into another language, not to grade style.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MIN_WORDS = 6
_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    #: Unicode script names (prefixes of the letters' Unicode names) that count as this language's.
    scripts: tuple[str, ...]
    #: Share of the letters that must be in those scripts.
    min_script_share: float
    #: Frequent function words (Latin-script languages), to tell them apart.
    stopwords: frozenset[str] = frozenset()


def _sw(words: str) -> frozenset[str]:
    return frozenset(words.split())


LANGUAGES: dict[str, Language] = {
    "en": Language("en", "English", ("LATIN",), 0.9, _sw(
        "the a an and is are of to in on with it this that there for as was be at by they their from has "
        "have its which or can not but")),
    "de": Language("de", "German", ("LATIN",), 0.9, _sw(
        "der die das und ist sind ein eine mit auf im den dem des nicht zu von es sich auch wie bei aus "
        "einem einer")),
    "fr": Language("fr", "French", ("LATIN",), 0.9, _sw(
        "le la les et est sont un une des du de avec sur dans pour il elle ce cette qui que pas au aux en")),
    "es": Language("es", "Spanish", ("LATIN",), 0.9, _sw(
        "el la los las y es son un una de del con en por para que se su al lo como está hay")),
    "it": Language("it", "Italian", ("LATIN",), 0.9, _sw(
        "il lo la i gli le e è sono un una di del della con su per che non nel nella si")),
    "pt": Language("pt", "Portuguese", ("LATIN",), 0.9, _sw(
        "o a os as e é são um uma de do da com em no na para que não se por ao")),
    "nl": Language("nl", "Dutch", ("LATIN",), 0.9, _sw(
        "de het een en is zijn van met op in te dat die niet voor er ook aan bij")),
    "ru": Language("ru", "Russian", ("CYRILLIC",), 0.6),
    "zh": Language("zh", "Chinese", ("CJK",), 0.5),
    "ja": Language("ja", "Japanese", ("CJK", "HIRAGANA", "KATAKANA"), 0.5),
    "ko": Language("ko", "Korean", ("HANGUL",), 0.5),
    "ar": Language("ar", "Arabic", ("ARABIC",), 0.6),
}


def _script_share(text: str, scripts: tuple[str, ...]) -> tuple[float, int]:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 1.0, 0
    hits = sum(1 for c in letters if unicodedata.name(c, "").startswith(scripts))
    return hits / len(letters), len(letters)


def language_problem(text: str, code: str) -> str | None:
    """None when `text` may be in language `code`, else a short reason (used in reject messages)."""
    lang = LANGUAGES[code]
    share, n_letters = _script_share(text, lang.scripts)
    if n_letters < 3:
        return None
    if share < lang.min_script_share:
        return f"only {share:.0%} of its letters are in the {lang.name} script"
    if not lang.stopwords:
        return None
    words = [w.lower() for w in _WORD_RE.findall(text)]
    if len(words) < MIN_WORDS:
        return None
    counts = {c: sum(1 for w in words if w in lg.stopwords) for c, lg in LANGUAGES.items() if lg.stopwords}
    best = max(counts.values())
    if counts[code] == 0 or counts[code] < best:
        other = max(counts, key=lambda c: counts[c])
        return (f"it reads as {LANGUAGES[other].name} ({counts[other]} of its {len(words)} words are common "
                f"{LANGUAGES[other].name} words, {counts[code]} are {lang.name})")
    return None
