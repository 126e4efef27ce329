"""The `vlforge` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO_RECIPE = REPO / "examples" / "demo" / "recipe.yaml"


def _load(path: str | None):
    from schemas.recipe import load_recipe

    recipe_path = Path(path) if path else DEMO_RECIPE
    if path is None:
        print(f"no recipe given: using the demo recipe {recipe_path}", file=sys.stderr)
    return load_recipe(recipe_path)


def cmd_build(args: argparse.Namespace) -> int:
    from pipeline.build import build, echo_stderr, summary
    from pipeline.ray_runner import gc_paused

    recipe = _load(args.recipe)
    # A build holds millions of small, acyclic objects (parsed JSON, rows): the cyclic collector would
    # rescan them all again and again for nothing, so it stays off for the run.
    with gc_paused():
        result = build(recipe, out_dir=args.out, workers=args.workers, echo=echo_stderr)
    print(summary(result))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from outputs.validators import validate_file

    violations = validate_file(args.path, args.format, image_root=args.images)
    for v in violations:
        print(f"row {v.row}: [{v.rule}] {v.message}" if v.row is not None else f"[{v.rule}] {v.message}")
    print(f"{args.path}: {len(violations)} violation(s) of the {args.format} loader rules")
    return 1 if violations else 0


def main(argv: list[str] | None = None) -> int:
    from schemas.recipe import RecipeError
    from sources.base import SourceError

    p = argparse.ArgumentParser(prog="vlforge", description="Build vision-language instruction data and tune on it.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("build", help="build a dataset from a recipe (default: the bundled demo recipe)")
    b.add_argument("recipe", nargs="?", help="recipe YAML file")
    b.add_argument("--out", help="output folder (default: the recipe's outputs.dir)")
    b.add_argument("--workers", type=int, help="Ray worker processes for the CPU stages (default: all CPUs)")
    b.set_defaults(fn=cmd_build)

    v = sub.add_parser("validate", help="check an existing dataset file against a trainer's loading rules")
    v.add_argument("path", help="the dataset file (JSON or JSONL); for hf and trl also a .parquet file, a folder "
                                "of them or a save_to_disk folder")
    v.add_argument("--format", required=True, help="llava, llamafactory, hf, trl or openai_chat")
    v.add_argument("--images", help="image folder to check that image files exist")
    v.set_defaults(fn=cmd_validate)

    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.fn(args))
    except (RecipeError, SourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
