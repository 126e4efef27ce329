"""Plurals of category names for counting questions: every COCO name, and the rules on their own."""

from __future__ import annotations

import pytest

from pipeline.adapt.plural import plural

# COCO's 80 instance categories and the plural a counting question should use.
COCO_PLURALS = {
    "person": "people", "bicycle": "bicycles", "car": "cars", "motorcycle": "motorcycles",
    "airplane": "airplanes", "bus": "buses", "train": "trains", "truck": "trucks", "boat": "boats",
    "traffic light": "traffic lights", "fire hydrant": "fire hydrants", "stop sign": "stop signs",
    "parking meter": "parking meters", "bench": "benches", "bird": "birds", "cat": "cats", "dog": "dogs",
    "horse": "horses", "sheep": "sheep", "cow": "cows", "elephant": "elephants", "bear": "bears",
    "zebra": "zebras", "giraffe": "giraffes", "backpack": "backpacks", "umbrella": "umbrellas",
    "handbag": "handbags", "tie": "ties", "suitcase": "suitcases", "frisbee": "frisbees", "skis": "skis",
    "snowboard": "snowboards", "sports ball": "sports balls", "kite": "kites", "baseball bat": "baseball bats",
    "baseball glove": "baseball gloves", "skateboard": "skateboards", "surfboard": "surfboards",
    "tennis racket": "tennis rackets", "bottle": "bottles", "wine glass": "wine glasses", "cup": "cups",
    "fork": "forks", "knife": "knives", "spoon": "spoons", "bowl": "bowls", "banana": "bananas",
    "apple": "apples", "sandwich": "sandwiches", "orange": "oranges", "broccoli": "broccoli",
    "carrot": "carrots", "hot dog": "hot dogs", "pizza": "pizzas", "donut": "donuts", "cake": "cakes",
    "chair": "chairs", "couch": "couches", "potted plant": "potted plants", "bed": "beds",
    "dining table": "dining tables", "toilet": "toilets", "tv": "tvs", "laptop": "laptops", "mouse": "mice",
    "remote": "remotes", "keyboard": "keyboards", "cell phone": "cell phones", "microwave": "microwaves",
    "oven": "ovens", "toaster": "toasters", "sink": "sinks", "refrigerator": "refrigerators", "book": "books",
    "clock": "clocks", "vase": "vases", "scissors": "scissors", "teddy bear": "teddy bears",
    "hair drier": "hair driers", "toothbrush": "toothbrushes",
}


def test_all_eighty_coco_names() -> None:
    assert len(COCO_PLURALS) == 80
    assert {name: plural(name) for name in COCO_PLURALS} == COCO_PLURALS


@pytest.mark.parametrize("word, expected", [
    ("box", "boxes"), ("glass", "glasses"), ("dish", "dishes"), ("puppy", "puppies"), ("toy", "toys"),
    ("police woman", "police women"), ("Person", "People"), ("shelf", "shelves"), ("  fox ", "foxes"),
])
def test_rules(word: str, expected: str) -> None:
    assert plural(word) == expected
