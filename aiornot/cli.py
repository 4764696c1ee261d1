"""The ``aiornot`` command: ``scan`` files and folders, ``serve`` the web page and API.

``aiornot scan PATH... [--output FILE.jsonl]`` writes one JSON line per image with at least
``path``, ``score`` (P(AI), 0–1), ``verdict`` and ``model``; an unreadable file gets a line with
``error`` and the scan goes on. The exit code is 0 unless nothing at all could be scored. With
``--output``, a re-run skips the paths already in the file (resumable). This is a stable contract.

Resuming is safe (no lost or duplicated line): see :mod:`aiornot.jsonl`. The output is checked
before the model loads, so a wrong ``-o`` costs no start-up time.

The other subcommands cover the project's tools: ``describe`` a dataset, print the ``model-card``,
refresh the ``readme`` results, ``build-sample`` (from a checkout). Every heavy import (pandas,
Keras, TensorFlow) happens inside a subcommand, so ``aiornot --help`` starts at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from aiornot.jsonl import OutputError, ResultFile, resume_key, write_results

EXIT_OK, EXIT_NOTHING_SCORED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass(frozen=True)
class PathProblem:
    """Something met while listing the inputs that deserves an error line (an unreadable folder …)."""

    path: str
    code: str
    message: str


def iter_image_paths(inputs: Sequence[str], *, all_files: bool = False) -> Iterator[Path | PathProblem]:
    """Files named directly, and files under folders (recursive, sorted), plus the problems met.

    Inside folders only image suffixes are taken unless ``all_files`` is set; a file named
    directly is always taken, so a mislabelled file gets a clear error rather than a silent skip.
    Broken and looping symbolic links with an image suffix are taken too (the reader reports
    them), and a folder that cannot be read is a :class:`PathProblem`: nothing is skipped silently.
    """
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from sorted(_walk(path, all_files), key=lambda entry: str(entry.path if isinstance(entry, PathProblem) else entry))
        else:
            yield path


def _walk(folder: Path, all_files: bool) -> Iterator[Path | PathProblem]:
    """The image files under ``folder`` (any depth: :func:`aiornot.walk.walk_files` keeps no recursion),
    following folder links, with unreadable folders and link loops as problems instead of skips."""
    from aiornot.data import IMAGE_SUFFIXES  # here, not at the top: pandas would slow every `aiornot --help`
    from aiornot.walk import WalkProblem, walk_files

    for entry in walk_files(folder):
        if isinstance(entry, WalkProblem):
            yield PathProblem(entry.path, entry.code, entry.message)
            continue
        name = os.path.basename(entry)
        if not name.startswith(".") and (all_files or Path(name).suffix.lower() in IMAGE_SUFFIXES):
            yield Path(entry)


def scan(args: argparse.Namespace) -> int:
    """Run ``aiornot scan``."""
    from aiornot.data import IMAGE_SUFFIXES
    from aiornot.detector import Detector, ModelConfigError, ModelNotFoundError, Result, model_directory
    from aiornot.imageio import ImageDecodeError

    from aiornot.batch import is_parquet_dataset

    parquet = [path for path in args.paths if is_parquet_dataset(path)]
    if parquet and args.engine == "ray":
        return scan_parquet(args, parquet)
    listed = list(iter_image_paths(args.paths, all_files=args.all_files))
    if not listed:
        hint = "; Parquet datasets are scanned with --engine ray" if parquet else ""
        print(f"error: no image files found in {', '.join(args.paths)} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}){hint}",
              file=sys.stderr)
        return EXIT_NOTHING_SCORED
    try:  # before the model: a wrong -o must not cost the model's start-up time
        sink = ResultFile(Path(args.output)) if args.output else None
    except OutputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    with contextlib.closing(sink) if sink else contextlib.nullcontext():
        plan = _plan(listed, sink.done if sink else set())
        todo, problems, skipped = plan.todo, plan.problems, plan.skipped
        if sink and (sink.done or sink.repaired):
            torn = "; a torn last line was removed" if sink.repaired else ""
            print(f"resuming: {skipped} of {plan.total} already in {sink.path}{torn}", file=sys.stderr)
        try:
            # The Ray workers load their own copy; the driver only checks the folder (no TensorFlow start-up).
            detector = Detector.load(args.model, runtime=args.runtime) if args.engine == "local" else model_directory(args.model)
        except (ModelNotFoundError, ModelConfigError) as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USAGE
        out = sink.handle if sink else sys.stdout
        model_name = detector.name if args.engine == "local" else None
        failures = [Result.failure(p.path, ImageDecodeError(p.code, p.message), model_name) for p in problems]
        scored, failed = write_results(failures, out)
        if args.engine == "ray":
            from aiornot import batch

            try:
                counts = batch.scan_with_ray(todo, output=None, sink=out, model_dir=args.model, id_photo=args.id_photo,
                                             batch_size=args.batch_size, num_workers=args.workers,
                                             address=args.ray_address, progress=not args.quiet)
            except batch.BatchError as error:
                print(f"error: {error}", file=sys.stderr)
                return EXIT_USAGE
        else:
            counts = write_results(detector.predict_many(todo, batch_size=args.batch_size, id_photo=args.id_photo,
                                                         progress=not args.quiet, total=len(todo),
                                                         max_batch_pixels=int(args.batch_megapixels * 1e6)), out)
    scored, failed = scored + counts[0], failed + counts[1]
    print(f"scored {scored}, failed {failed}" + (f", skipped {skipped} already done" if skipped else ""), file=sys.stderr)
    return EXIT_OK if scored or (skipped and not failed) else EXIT_NOTHING_SCORED


def scan_parquet(args: argparse.Namespace, parquet: list[str]) -> int:
    """``aiornot scan --engine ray DATA`` for Parquet shards: one line per row, its ``path`` the row's ``id``.

    A re-run with the same ``--output`` skips the ids already in it.
    """
    from aiornot import batch
    from aiornot.data import DatasetError
    from aiornot.detector import ModelNotFoundError

    if len(args.paths) > 1:
        print(f"error: {parquet[0]} is a Parquet dataset; scan it on its own (got {len(args.paths)} inputs)", file=sys.stderr)
        return EXIT_USAGE
    try:
        sink = ResultFile(Path(args.output)) if args.output else None
    except OutputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    with contextlib.closing(sink) if sink else contextlib.nullcontext():
        try:
            scored, failed, skipped = batch.scan_parquet_with_ray(
                parquet[0], output=None, sink=sink.handle if sink else sys.stdout, done=sink.keys if sink else (),
                model_dir=args.model, id_photo=args.id_photo, batch_size=args.batch_size, num_workers=args.workers,
                address=args.ray_address, progress=not args.quiet)
        except (batch.BatchError, DatasetError, ModelNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USAGE
    print(f"scored {scored}, failed {failed}" + (f", skipped {skipped} already done" if skipped else ""), file=sys.stderr)
    return EXIT_OK if scored or (skipped and not failed) else EXIT_NOTHING_SCORED


@dataclass
class _Plan:
    """What a scan has left to do, and what it found already done (each path counted once)."""

    todo: list[Path]
    problems: list[PathProblem]
    skipped: int
    total: int


def _plan(listed: list[Path | PathProblem], done: set[str]) -> _Plan:
    """What is left to do: paths and problems not in ``done``, each once.

    Paths are compared by :func:`aiornot.jsonl.resume_key` (absolute and normalised), so one file
    named twice, or one folder under two spellings (``dir`` and ``./dir/../dir``), is one path:
    scored once, and counted once in "resuming: N of M".
    """
    plan = _Plan([], [], 0, 0)
    seen: set[str] = set()
    for entry in listed:
        key = resume_key(entry.path if isinstance(entry, PathProblem) else entry)
        if key in seen:
            continue
        seen.add(key)
        plan.total += 1
        if key in done:
            plan.skipped += 1
        else:
            (plan.problems if isinstance(entry, PathProblem) else plan.todo).append(entry)  # type: ignore[arg-type]
    return plan


def serve(args: argparse.Namespace) -> int:
    """Run ``aiornot serve`` (the web page and API), with the connection limits of :mod:`aiornot.server`."""
    try:
        from aiornot import server
    except ModuleNotFoundError as error:  # the service's dependencies are the `serve` extra
        print(f"error: aiornot serve needs {error.name}: pip install 'aiornot[serve]'", file=sys.stderr)
        return EXIT_USAGE

    if args.model:
        os.environ["AIORNOT_MODEL_DIR"] = args.model
    try:
        server.run(host=args.host, port=args.port, log_level=args.log_level)
    except ValueError as error:  # a malformed AIORNOT_* setting
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def build_encoders(args: argparse.Namespace) -> int:
    """Derive the float CLIP tower from the pinned INT8 package and check its sha256 (``make encoders``)."""
    from aiornot import encoders

    try:
        path = encoders.portable_clip_file(rebuild=args.rebuild)
        encoders.verify_weights(encoders.default_clip_spec())
    except encoders.EncoderUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{path}: sha256 {encoders.CLIP_SHA256[:12]}… as pinned")
    return EXIT_OK


#: Subcommands that hand their arguments to a module's own ``main``: name → (module, help).
TOOLS: dict[str, tuple[str, str]] = {
    "describe": ("aiornot.data", "load a dataset and print its size, classes and split"),
    "model-card": ("aiornot.detector", "print a model directory's model card (Markdown)"),
    "readme": ("aiornot.model_card", "refresh README.md's results block: readme README.md MODEL_DIR [BENCHMARK_JSON]"),
    "build-sample": ("tools.sample", "build data/sample/ from images shipped in public packages (from a checkout)"),
}


def run_tool(args: argparse.Namespace) -> int:
    """Run one of :data:`TOOLS`; the sample builder ships with the repository, not with the wheel."""
    import importlib

    module_name = TOOLS[args.command][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name not in ("tools", module_name):
            raise
        print(f"error: {args.command} needs {module_name}, which lives in the aiornot repository, not in the installed "
              "package; run it from a checkout (`make data`)", file=sys.stderr)
        return EXIT_USAGE
    return int(module.main([args.command, *args.rest]))


def build_parser() -> argparse.ArgumentParser:
    """The ``aiornot`` argument parser: ``scan``, ``serve`` and the tools of :data:`TOOLS`."""
    parser = argparse.ArgumentParser(prog="aiornot", description="Tell AI-generated photos from camera photos (ID photos first).")
    commands = parser.add_subparsers(dest="command", required=True)
    scan_parser = commands.add_parser("scan", help="score image files and folders; one JSON line per image")
    scan_parser.add_argument("paths", nargs="+", help="image files and/or folders (searched recursively); "
                             "with --engine ray also Parquet shards in the Hugging Face layout (id, image, label)")
    scan_parser.add_argument("--output", "-o", help="append JSON lines to this file (re-runs skip paths already in it)")
    scan_parser.add_argument("--model", help="model directory (default: models/default)")
    scan_parser.add_argument("--id-photo", action="store_true", help="ID-photo mode: add face box, face-crop score and ID checks")
    scan_parser.add_argument("--engine", choices=("local", "ray"), default="local", help="local (default) or Ray Data for clusters")
    scan_parser.add_argument("--batch-size", type=int, default=32)
    scan_parser.add_argument("--batch-megapixels", type=float, default=64.0,
                             help="a batch also ends once its decoded images reach this many megapixels (bounds memory)")
    scan_parser.add_argument("--runtime", choices=("auto", "keras", "tflite"), default="auto",
                             help="network runtime: TFLite where model.tflite exists (faster on CPU, see make bench), else Keras")
    scan_parser.add_argument("--ray-address", help="with --engine ray: 'auto', HOST:PORT or ray://HOST:PORT (default: RAY_ADDRESS, else a local Ray)")
    scan_parser.add_argument("--workers", type=int, help="with --engine ray: model-loading workers (default: one per CPU)")
    scan_parser.add_argument("--all-files", action="store_true", help="inside folders, try every file, not only image suffixes")
    scan_parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    scan_parser.set_defaults(handler=scan)
    serve_parser = commands.add_parser("serve", help="the web page and REST API")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--model", help="model directory (default: models/default)")
    serve_parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve_parser.set_defaults(handler=serve)
    encoders_parser = commands.add_parser("build-encoders", help="derive the float CLIP tower (the same features on every CPU) from its pinned package")
    encoders_parser.add_argument("--rebuild", action="store_true", help="derive it again even if the file exists")
    encoders_parser.set_defaults(handler=build_encoders)
    for name, (_, text) in TOOLS.items():
        # The tool's own parser reads the rest of the line (see main), --help included.
        commands.add_parser(name, help=text, add_help=False).set_defaults(handler=run_tool)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``aiornot`` command; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args, args.rest = parser.parse_known_args(argv)
    if args.rest and args.handler is not run_tool:
        parser.error(f"unrecognized arguments: {' '.join(args.rest)}")
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:  # Ctrl-C: one line, no traceback; every finished line is already on disk
        hint = "; run the same command again to resume" if args.command == "scan" and getattr(args, "output", None) else ""
        print(f"\ninterrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
