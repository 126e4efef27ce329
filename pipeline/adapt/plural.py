"""English plurals of object category names, for counting questions ("how many people ...").

Category names are nouns or noun phrases ("person", "traffic light", "hair drier"); the last word is
pluralised. A small table covers the irregular and unchanging nouns found in common detection label
sets (COCO's 80 names among them); regular rules cover the rest.
"""

from __future__ import annotations

from functools import lru_cache

#: Words whose plural does not follow the regular rules (or that do not change at all).
IRREGULAR: dict[str, str] = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "mouse": "mice",
    "goose": "geese",
    "tooth": "teeth",
    "foot": "feet",
    "ox": "oxen",
    "knife": "knives",
    "wife": "wives",
    "life": "lives",
    "leaf": "leaves",
    "loaf": "loaves",
    "shelf": "shelves",
    "wolf": "wolves",
    "calf": "calves",
    "half": "halves",
    "thief": "thieves",
    "potato": "potatoes",
    "tomato": "tomatoes",
    "mango": "mangoes",
    "hero": "heroes",
    "cactus": "cacti",
    "fungus": "fungi",
    # Nouns that stay the same, or that are already plural as category names.
    "sheep": "sheep",
    "deer": "deer",
    "fish": "fish",
    "moose": "moose",
    "bison": "bison",
    "aircraft": "aircraft",
    "series": "series",
    "species": "species",
    "broccoli": "broccoli",
    "skis": "skis",
    "scissors": "scissors",
    "glasses": "glasses",
    "sunglasses": "sunglasses",
    "jeans": "jeans",
    "pants": "pants",
    "shorts": "shorts",
    "people": "people",
}

_VOWELS = frozenset("aeiou")


def _plural_word(word: str) -> str:
    low = word.lower()
    irregular = IRREGULAR.get(low)
    if irregular is not None:
        # Keep an initial capital ("Person" -> "People").
        return irregular[0].upper() + irregular[1:] if word[:1].isupper() else irregular
    if low.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if low.endswith("y") and len(low) > 1 and low[-2] not in _VOWELS:
        return word[:-1] + "ies"
    return word + "s"


@lru_cache(maxsize=4096)
def plural(name: str) -> str:
    """Plural of a category name: the last word is pluralised ("wine glass" -> "wine glasses")."""
    name = name.strip()
    if not name:
        return name
    head, sep, last = name.rpartition(" ")
    return f"{head}{sep}{_plural_word(last)}"
