"""COCO's 80 object categories with synonyms and plurals, and finding their mentions in text.

Used by the hallucination filter and the CHAIR figures: an answer "mentions" a category when it contains
one of the category's words or phrases (singular or plural). Phrases are matched longest first, so
"hot dog" is a hot dog and not a dog, and "teddy bear" is not a bear. A mention preceded closely by a
negation ("there is no cat", "without a dog") says the object is absent and is not counted.
The synonym lists were written for this project and are kept conservative: a word that often means
something else ("glass", "plant", "glove") is left out rather than risk false alarms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pipeline.adapt.plural import plural

#: Category name -> its other names. Every name is also matched in the plural.
COCO80: dict[str, tuple[str, ...]] = {
    "person": ("people", "man", "woman", "boy", "girl", "child", "kid", "baby", "toddler", "guy", "lady",
               "gentleman", "adult", "teenager", "player", "skier", "snowboarder", "surfer", "skateboarder",
               "rider", "pedestrian", "passenger", "policeman", "police officer"),
    "bicycle": ("bike",),
    "car": ("automobile", "sedan", "taxi", "suv"),
    "motorcycle": ("motorbike", "motor bike", "moped"),
    "airplane": ("aeroplane", "plane", "jet", "airliner", "aircraft"),
    "bus": (),
    "train": ("locomotive", "tram"),
    "truck": ("lorry", "pickup truck"),
    "boat": ("ship", "sailboat", "yacht", "canoe", "kayak", "ferry"),
    "traffic light": ("traffic signal", "stoplight", "stop light"),
    "fire hydrant": ("hydrant",),
    "stop sign": (),
    "parking meter": (),
    "bench": (),
    "bird": ("pigeon", "seagull", "gull", "duck", "goose", "parrot", "swan", "crow", "sparrow", "eagle", "owl"),
    "cat": ("kitten", "kitty"),
    "dog": ("puppy", "pup"),
    "horse": ("pony", "foal"),
    "sheep": ("lamb",),
    "cow": ("cattle", "bull", "calf", "ox"),
    "elephant": (),
    "bear": (),
    "zebra": (),
    "giraffe": (),
    "backpack": ("rucksack",),
    "umbrella": ("parasol",),
    "handbag": ("purse", "hand bag"),
    "tie": ("necktie", "bow tie"),
    "suitcase": ("luggage",),
    "frisbee": ("flying disc",),
    "skis": ("ski",),
    "snowboard": (),
    "sports ball": ("ball", "soccer ball", "tennis ball"),
    "kite": (),
    "baseball bat": ("bat",),
    "baseball glove": ("baseball mitt", "mitt"),
    "skateboard": ("skate board",),
    "surfboard": ("surf board",),
    "tennis racket": ("racket", "racquet", "tennis racquet"),
    "bottle": (),
    "wine glass": ("wineglass",),
    "cup": ("mug", "teacup", "coffee cup"),
    "fork": (),
    "knife": (),
    "spoon": (),
    "bowl": (),
    "banana": (),
    "apple": (),
    "sandwich": ("burger", "hamburger"),
    "orange": (),
    "broccoli": (),
    "carrot": (),
    "hot dog": ("hotdog",),
    "pizza": (),
    "donut": ("doughnut",),
    "cake": ("cupcake",),
    "chair": (),
    "couch": ("sofa",),
    "potted plant": ("houseplant", "house plant"),
    "bed": (),
    "dining table": ("table", "kitchen table"),
    "toilet": (),
    "tv": ("television", "tv set", "television set"),
    "laptop": ("notebook computer",),
    "mouse": ("computer mouse",),
    "remote": ("remote control",),
    "keyboard": (),
    "cell phone": ("cellphone", "mobile phone", "phone", "smartphone"),
    "microwave": (),
    "oven": ("stove",),
    "toaster": (),
    "sink": (),
    "refrigerator": ("fridge",),
    "book": (),
    "clock": (),
    "vase": (),
    "scissors": (),
    "teddy bear": ("teddy", "stuffed animal"),
    "hair drier": ("hair dryer", "hairdryer", "blow dryer"),
    "toothbrush": ("tooth brush",),
}

#: Phrases that contain a category word but name something else ("bus stop" is not a bus). They are
#: matched like names (longest first) and then ignored.
NOT_OBJECTS: tuple[str, ...] = (
    "bus stop", "bus station", "train station", "train track", "train platform", "railroad track",
    "ski slope", "ski resort", "ski lift", "ski pole", "ski lodge", "ski run", "ski trail", "ski jacket",
    "car park", "parking lot", "hot day", "dog tag", "flower bed", "river bed", "apple logo",
    "tie dye", "cake stand", "couch potato", "table cloth", "tablecloth", "table top", "tabletop",
    "phone number", "book shelf", "bookshelf", "baseball field", "baseball game", "tennis court",
    "tennis match", "tennis game", "pizza box", "pizza cutter",
)

#: Words that are also colours: they name the category only when no noun follows ("an orange on the
#: table", "three oranges"), not as adjectives ("an orange cat").
_COLOUR_WORDS = frozenset({"orange"})

NEGATIONS = frozenset({"no", "not", "without", "nor", "neither", "never", "none", "isn't", "aren't", "wasn't",
                       "weren't", "don't", "doesn't", "didn't", "cannot", "can't", "nothing"})

#: Words after which a colour word still names the fruit (function words and punctuation-like words).
_FUNCTION_WORDS = frozenset(
    "a an the and or but is are was were on in at of with by to from for near next beside behind under "
    "over above below into onto sits sit lies lie rests rest slices slice halves half".split())

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class Mention:
    category: str
    #: Index of the first token of the mention, and its length in tokens.
    start: int
    length: int
    negated: bool


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; hyphens split words ("hot-dog" -> "hot", "dog"), apostrophes stay inside."""
    return _TOKEN_RE.findall(text.lower().replace("\u2019", "'").replace("-", " "))


@lru_cache(maxsize=1)
def phrase_table() -> tuple[dict[tuple[str, ...], str], int]:
    """(token tuple -> category, longest phrase length) for every name, synonym and plural; phrases of
    NOT_OBJECTS map to ""."""
    table: dict[tuple[str, ...], str] = {}
    for phrase in NOT_OBJECTS:
        for form in (phrase, plural(phrase)):
            table[tuple(tokenize(form))] = ""
    for cat, syns in COCO80.items():
        for name in (cat, *syns):
            for form in (name, plural(name)):
                table.setdefault(tuple(tokenize(form)), cat)
    return table, max(len(k) for k in table)


def canonical_category(name: str) -> str | None:
    """The COCO category a label names ("man" -> "person", "dogs" -> "dog"), or None."""
    table, _ = phrase_table()
    return table.get(tuple(tokenize(name))) or None


def find_mentions(text: str, negation_window: int = 3) -> list[Mention]:
    """Every category mention in `text`, longest phrases first, left to right, without overlaps."""
    table, longest = phrase_table()
    tokens = tokenize(text)
    out: list[Mention] = []
    i = 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 0, -1):
            cat = table.get(tuple(tokens[i:i + n]))
            if cat is None:
                continue
            if n == 1 and tokens[i] in _COLOUR_WORDS and i + 1 < len(tokens) and tokens[i + 1] not in _FUNCTION_WORDS:
                continue  # a colour adjective ("orange cat")
            if not cat:  # a phrase that names no object ("bus stop"): skip its words
                i += n
                break
            window = tokens[max(0, i - negation_window):i]
            out.append(Mention(cat, i, n, any(w in NEGATIONS for w in window)))
            i += n
            break
        else:
            i += 1
    return out


def mentioned_categories(text: str, negation_window: int = 3) -> set[str]:
    """Categories named (not negated) in `text`."""
    return {m.category for m in find_mentions(text, negation_window) if not m.negated}
