"""The `vlforge` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.recipe import Recipe

REPO = Path(__file__).resolve().parent.parent
DEMO_RECIPE = REPO / "examples" / "demo" / "recipe.yaml"


def _load(path: str | None) -> Recipe:
    from schemas.recipe import load_recipe

    recipe_path = Path(path) if path else DEMO_RECIPE
    if path is None:
        print(f"no recipe given: using the demo recipe {recipe_path}", file=sys.stderr)
    return load_recipe(recipe_path)


def cmd_build(args: argparse.Namespace) -> int:
    return _build(_load(args.recipe), args)


def _build(recipe: Recipe, args: argparse.Namespace) -> int:
    from pipeline.build import build, echo_stderr, summary
    from pipeline.ray_runner import gc_paused

    # A build holds millions of small, acyclic objects (parsed JSON, rows): the cyclic collector would
    # rescan them all again and again for nothing, so it stays off for the run.
    with gc_paused():
        result = build(recipe, out_dir=args.out, workers=args.workers, echo=echo_stderr)
    print(summary(result))
    return 0


def _tune_data(recipe: Recipe) -> str:
    """The build output that tuning reads: the LLaVA JSON (or else the HF datasets folder) of the recipe."""
    out = Path(recipe.outputs.dir)
    for f in recipe.outputs.formats:
        if f.kind == "llava":
            return str(out / "llava" / f"{f.name or recipe.name}.json")
    for f in recipe.outputs.formats:
        if f.kind == "hf":
            return str(out / "hf" / "arrow" / (f.name or recipe.name))
    raise SystemExit("error: tuning reads the build's llava or hf output; add {kind: llava} to outputs.formats")


def _tune(recipe: Recipe, data: str | None, out: str | None) -> int:
    from pipeline.tune.run import run_tune

    if recipe.tune is None:
        print("error: the recipe has no `tune` section. Add one, e.g.\n"
              "tune:\n  stages: [{method: projector, lr: 1.0e-3, steps: 20}, {method: iaa, lr: 2.0e-5, steps: 40}]",
              file=sys.stderr)
        return 2
    data_path = data or _tune_data(recipe)
    out_dir = out or recipe.tune.output_dir or str(Path(recipe.outputs.dir) / "tune")
    print(f"vlforge tune: {data_path} -> {out_dir}", file=sys.stderr, flush=True)
    report = run_tune(recipe.tune, data_path, recipe.images, out_dir)
    md = Path(out_dir) / "report.md"
    print(md.read_text() if md.exists() else report)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    return _tune(_load(args.recipe), args.data, args.out)


def cmd_run(args: argparse.Namespace) -> int:
    """Build, then tune on what was built."""
    recipe = _load(args.recipe)
    if args.out:
        recipe.outputs.dir = args.out
    rc = _build(recipe, args)
    if rc != 0:
        return rc
    if recipe.tune is None:
        print("the recipe has no `tune` section: built only", file=sys.stderr)
        return 0
    return _tune(recipe, None, None)


def cmd_serve(args: argparse.Namespace) -> int:
    from pipeline.llm.config import LocalServerOptions
    from pipeline.llm.server import serve

    opts = LocalServerOptions(**({"port": args.port} if args.port else {}))
    serve(opts)
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

    r = sub.add_parser("run", help="build a recipe, then tune on it (its `tune` section)")
    r.add_argument("recipe", nargs="?", help="recipe YAML file (default: the demo recipe)")
    r.add_argument("--out", help="output folder (default: the recipe's outputs.dir)")
    r.add_argument("--workers", type=int, help="Ray worker processes for the CPU stages (default: all CPUs)")
    r.set_defaults(fn=cmd_run)

    t = sub.add_parser("tune", help="fine-tune on what `build` wrote (the recipe's `tune` section)")
    t.add_argument("recipe", nargs="?", help="recipe YAML file (default: the demo recipe)")
    t.add_argument("--data", help="LLaVA JSON or HF datasets folder (default: the recipe's build output)")
    t.add_argument("--out", help="where adapters, checkpoints and the report go (default: <outputs.dir>/tune)")
    t.set_defaults(fn=cmd_tune)

    sv = sub.add_parser("serve", help="run the embedded llama.cpp server (SmolLM2-135M-Instruct) and print its URL")
    sv.add_argument("--port", type=int, help="loopback port (default: a free one)")
    sv.set_defaults(fn=cmd_serve)

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
