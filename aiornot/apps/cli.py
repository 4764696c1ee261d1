"""The ``aiornot`` command: ``scan`` files and folders, ``serve`` the web page and API.

``aiornot scan PATH... [--output FILE.jsonl]`` writes one JSON line per image with at least
``path``, ``score`` (P(AI), 0–1), ``verdict`` and ``model``; an unreadable file gets a line with
``error`` and the scan goes on. The exit code is 0 unless nothing at all could be scored. With
``--output``, a re-run skips the paths already in the file (resumable). This is a stable contract.

Resuming is safe (no lost or duplicated line): see :mod:`aiornot.io.jsonl`. The output is checked
before the model loads, so a wrong ``-o`` costs no start-up time.

Every tool of the project is a subcommand of this one parser (``python -m aiornot`` is the same
command; no other module has a ``main``): ``describe`` a dataset, print the ``model-card``, refresh
the ``readme`` results, ``build-sample`` (from a checkout), ``build-encoders``, the ``full-run`` and
``ray-embed``. Each has ``--help``. A user's mistake (a missing folder, a wrong file) is one
``error:`` line and exit code 2 (:class:`UsageError`), never a traceback. Every heavy import
(pandas, Keras, TensorFlow) happens inside a subcommand, so ``aiornot --help`` starts at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence, Union

from aiornot.io.jsonl import OutputError, ResultFile, ScanCounts, resume_key, write_results

EXIT_OK, EXIT_NOTHING_SCORED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass(frozen=True)
class PathProblem:
    """Something met while listing the inputs that deserves an error line (an unreadable folder …)."""

    path: str
    code: str
    message: str


@dataclass(frozen=True)
class LeftOut:
    """A file inside a folder that the scan does not try: a hidden file, or one not named as an image."""

    path: str
    hidden: bool


Listed = Union[Path, PathProblem, LeftOut]


def iter_image_paths(inputs: Sequence[str], *, all_files: bool = False) -> Iterator[Listed]:
    """Files named directly, and files under folders (recursive, sorted), plus the problems met.

    Inside folders only image suffixes are taken unless ``all_files`` is set; a file named
    directly is always taken, so a mislabelled file gets a clear error rather than a silent skip.
    Broken and looping symbolic links with an image suffix are taken too (the reader reports
    them), and a folder that cannot be read is a :class:`PathProblem`. What a folder holds but the
    scan does not try comes as :class:`LeftOut`, for the summary: nothing is skipped silently.
    """
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from sorted(_walk(path, all_files), key=lambda entry: str(entry if isinstance(entry, Path) else entry.path))
        else:
            yield path


def _walk(folder: Path, all_files: bool) -> Iterator[Listed]:
    """The files under ``folder`` (any depth: :func:`aiornot.io.walk.walk_files` keeps no recursion),
    following folder links, with unreadable folders and link loops as problems instead of skips."""
    from aiornot.io.reader import IMAGE_SUFFIXES  # here, not at the top: pandas would slow every `aiornot --help`
    from aiornot.io.walk import WalkProblem, walk_files

    for entry in walk_files(folder):
        if isinstance(entry, WalkProblem):
            yield PathProblem(entry.path, entry.code, entry.message)
            continue
        name = os.path.basename(entry)
        if name.startswith("."):
            yield LeftOut(str(entry), hidden=True)
        elif all_files or Path(name).suffix.lower() in IMAGE_SUFFIXES:
            yield Path(entry)
        else:
            yield LeftOut(str(entry), hidden=False)


def left_out_summary(left_out: Sequence[LeftOut], shown: int = 3) -> str:
    """One clause for the summary line: how many files the folders held that were not tried, with examples."""
    if not left_out:
        return ""
    parts = []
    for hidden, kind, hint in ((False, "not named as images", "; --all-files tries them"), (True, "hidden", "")):
        names = [os.path.basename(entry.path) for entry in left_out if entry.hidden is hidden]
        if names:
            examples = ", ".join(names[:shown]) + (" …" if len(names) > shown else "")
            parts.append(f"{len(names)} {kind} ({examples}{hint})")
    return f"; left out {len(left_out)} file{'s' if len(left_out) != 1 else ''} in the folders: " + ", ".join(parts)


def scan(args: argparse.Namespace) -> int:
    """Run ``aiornot scan``."""
    from aiornot.io.reader import IMAGE_SUFFIXES
    from aiornot.detector import Detector, ModelConfigError, ModelNotFoundError, Result, model_directory
    from aiornot.io.decode import ImageDecodeError

    from aiornot.io.reader import is_parquet_dataset

    _check_face_score(args)
    parquet = [path for path in args.paths if is_parquet_dataset(path)]
    if parquet and args.engine == "ray":
        return scan_parquet(args, parquet)
    entries = list(iter_image_paths(args.paths, all_files=args.all_files))
    left_out = [entry for entry in entries if isinstance(entry, LeftOut)]
    listed = [entry for entry in entries if not isinstance(entry, LeftOut)]
    if not listed:
        hint = "; Parquet datasets are scanned with --engine ray" if parquet else ""
        print(f"error: no image files found in {', '.join(args.paths)} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
              f"{hint}{left_out_summary(left_out)}", file=sys.stderr)
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
        problem_counts = write_results(failures, out)
        if args.engine == "ray":
            from aiornot.apps import batch

            try:
                counts = batch.scan_with_ray(todo, output=None, sink=out, model_dir=args.model, id_photo=args.id_photo,
                                             face_score=args.face_score, batch_size=args.batch_size, num_workers=args.workers,
                                             address=args.ray_address, progress=not args.quiet)
            except batch.BatchError as error:
                print(f"error: {error}", file=sys.stderr)
                return EXIT_USAGE
        else:
            counts = write_results(detector.predict_many(todo, batch_size=args.batch_size, id_photo=args.id_photo,
                                                         face_score=args.face_score, progress=not args.quiet, total=len(todo),
                                                         max_batch_pixels=int(args.batch_megapixels * 1e6)), out)
    total = problem_counts + counts
    total.skipped = skipped
    print(total.summary() + left_out_summary(left_out), file=sys.stderr)
    return _exit_code(total)


def _exit_code(counts: ScanCounts) -> int:
    """0 when something was scored, or everything asked for was already done; 1 when nothing could be scored."""
    return EXIT_OK if counts.scored or (counts.skipped and not counts.failed) else EXIT_NOTHING_SCORED


def _check_face_score(args: argparse.Namespace) -> None:
    """``--face-score`` scores the face crop that ``--id-photo`` finds: alone it would give nothing, so it is refused."""
    if args.face_score and not args.id_photo:
        raise UsageError("--face-score needs --id-photo: the face crop it scores is found in ID-photo mode only")


def scan_parquet(args: argparse.Namespace, parquet: list[str]) -> int:
    """``aiornot scan --engine ray DATA`` for Parquet shards: one line per row, its ``path`` the row's ``id``.

    A re-run with the same ``--output`` skips the ids already in it.
    """
    from aiornot.apps import batch
    from aiornot.io.datasets import DatasetError
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
            counts = batch.scan_parquet_with_ray(
                parquet[0], output=None, sink=sink.handle if sink else sys.stdout, done=sink.keys if sink else (),
                model_dir=args.model, id_photo=args.id_photo, face_score=args.face_score, batch_size=args.batch_size,
                num_workers=args.workers, address=args.ray_address, progress=not args.quiet)
        except (batch.BatchError, DatasetError, ModelNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USAGE
    print(counts.summary(), file=sys.stderr)
    return _exit_code(counts)


@dataclass
class _Plan:
    """What a scan has left to do, and what it found already done (each path counted once)."""

    todo: list[Path]
    problems: list[PathProblem]
    skipped: int
    total: int


def _plan(listed: list[Path | PathProblem], done: set[str]) -> _Plan:
    """What is left to do: paths and problems not in ``done``, each once.

    Paths are compared by :func:`aiornot.io.jsonl.resume_key` (absolute and normalised), so one file
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
    """Run ``aiornot serve`` (the web page and API), with the connection limits of :mod:`aiornot.apps.server`."""
    try:
        from aiornot.apps import server
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
    from aiornot.model import encoders

    try:
        path = encoders.portable_clip_file(rebuild=args.rebuild)
        encoders.verify_weights(encoders.default_clip_spec())
    except encoders.EncoderUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{path}: sha256 {encoders.CLIP_SHA256[:12]}… as pinned")
    return EXIT_OK


class UsageError(Exception):
    """A user's mistake (a missing folder, a wrong file): :func:`main` prints it as one ``error:`` line, exit code 2."""


def _existing(path: str, what: str, *, folder: bool = False) -> Path:
    """``path`` as a Path, or a :class:`UsageError` saying that the ``what`` is not there (or is not a folder)."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such {what}")
    if folder and not os.path.isdir(path):
        raise UsageError(f"{path} is a file; give the {what}")
    return Path(path)


def export(args: argparse.Namespace) -> int:
    """``aiornot export RESULTS.jsonl [-o RESULTS.csv]``: the scan's lines as a spreadsheet (UTF-8 with BOM, for Excel)."""
    from aiornot.io.export import ExportError, export_csv

    results = Path(args.results)
    target = Path(args.output) if args.output else results.with_suffix(".csv")
    if target.resolve() == results.resolve():
        raise UsageError(f"{target} is the results file itself; give another name with -o")
    if target.exists() and not args.force:
        raise UsageError(f"{target} already exists; pass --force to replace it, or another name with -o")
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8-sig", newline="") as sink:
            counts = export_csv(results, sink)
        partial.replace(target)  # an interrupted export never leaves a half table under the real name
    except ExportError as error:
        partial.unlink(missing_ok=True)
        raise UsageError(str(error)) from None
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise UsageError(f"cannot write {target}: {error.strerror or error}") from None
    unreadable = counts.unreadable
    note = (f"; {len(unreadable)} line{'s' if len(unreadable) != 1 else ''} not readable as a scan line, left out "
            f"(line {', '.join(map(str, unreadable[:5]))}{' …' if len(unreadable) > 5 else ''})") if unreadable else ""
    print(f"wrote {counts.rows} rows to {target}{note}", file=sys.stderr)
    return EXIT_OK


def describe(args: argparse.Namespace) -> int:
    """``aiornot describe DATA``: the dataset's size, classes and the notebooks' train/validation split."""
    from aiornot.io.datasets import DatasetError, class_balance, load, split

    try:
        frame = load(args.path)
        train, validation = split(frame).frames(frame)
    except DatasetError as error:
        raise UsageError(str(error)) from None
    print(class_balance({"all": frame, "train": train, "validation": validation}).to_string())
    return EXIT_OK


def model_card(args: argparse.Namespace) -> int:
    """``aiornot model-card MODEL_DIR``: the model card, generated from the folder's ``detector.json``."""
    from aiornot.reporting import model_card as card
    from aiornot.contract.config import ModelConfigError

    try:
        print(card.card(_existing(args.model_dir, "model folder", folder=True)))
    except (FileNotFoundError, ModelConfigError) as error:
        raise UsageError(str(error)) from None
    return EXIT_OK


def readme(args: argparse.Namespace) -> int:
    """``aiornot readme README.md MODEL_DIR [BENCHMARK_JSON]``: refresh README.md's results blocks in place."""
    import json

    from aiornot.reporting import readme as blocks
    from aiornot.reporting.model_card import read_config
    from aiornot.contract.config import ModelConfigError

    readme_path = _existing(args.readme, "README file")
    _existing(args.model_dir, "model folder", folder=True)
    benchmark = None
    if args.benchmark and os.path.isfile(args.benchmark):  # not measured yet (make bench writes it): no speed lines
        try:
            benchmark = json.loads(Path(args.benchmark).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise UsageError(f"{args.benchmark} is not valid JSON: {error}") from None
    try:
        text = blocks.update_readme(readme_path.read_text(encoding="utf-8"), read_config(args.model_dir), benchmark)
    except (FileNotFoundError, ModelConfigError) as error:
        raise UsageError(str(error)) from None
    except ValueError as error:  # no results markers
        raise UsageError(f"{readme_path}: {error}") from None
    readme_path.write_text(text, encoding="utf-8")
    return EXIT_OK


def run_sample_builder(args: argparse.Namespace) -> int:
    """``aiornot build-sample``: the sample builder, which ships with the repository (tools/sample), not with the wheel."""
    import importlib

    try:
        builder = importlib.import_module("tools.sample.builder")
    except ModuleNotFoundError as error:
        if error.name not in ("tools", "tools.sample", "tools.sample.builder"):
            raise
        raise UsageError("build-sample needs tools/sample, which lives in the aiornot repository, not in the installed "
                         "package; run it from a checkout (`make data`)") from None
    return int(builder.run(args.out, args.cache, args.sources, only=args.only, skip=args.skip))


def full_run(args: argparse.Namespace) -> int:
    """``aiornot full-run DATA [--test TEST]``: the seed study at full size, streamed (``make full-run``)."""
    import json

    _existing(args.data, "dataset")
    if args.test:  # checked now, not after hours of training
        _existing(args.test, "test dataset")
    from aiornot.apps import full_run as study
    from aiornot.contract.config import ModelConfigError
    from aiornot.detector import ModelNotFoundError
    from aiornot.io.datasets import DatasetError
    from aiornot.model.encoders import EncoderUnavailable

    try:
        summary = study.run(args)
    except (DatasetError, EncoderUnavailable, ModelNotFoundError, ModelConfigError) as error:
        raise UsageError(str(error)) from None
    print(json.dumps(summary, indent=2, default=str))
    return EXIT_OK


def ray_embed(args: argparse.Namespace) -> int:
    """``aiornot ray-embed DATA``: a dataset's CLIP embeddings on Ray Data, into the feature store (resumable)."""
    _existing(args.data, "dataset")
    from aiornot.apps import ray_embed as embed
    from aiornot.apps.batch import BatchError
    from aiornot.io.datasets import DatasetError
    from aiornot.model.encoders import FEATURE_STORE_DIR, EncoderUnavailable, default_clip_spec

    try:
        store = Path(args.store) if args.store else FEATURE_STORE_DIR / default_clip_spec().id
        summary = embed.embed_with_ray(args.data, store, address=args.ray_address, num_workers=args.workers,
                                       batch_size=args.batch_size, limit=args.limit, progress=not args.quiet)
    except (DatasetError, BatchError, EncoderUnavailable) as error:
        raise UsageError(str(error)) from None
    print(f"{summary.encoded} encoded, {summary.stored} already stored, {summary.failed} unreadable "
          f"in {summary.seconds:.1f} s → {summary.store}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The ``aiornot`` argument parser: every subcommand, each with its ``--help``."""
    parser = argparse.ArgumentParser(prog="aiornot", description="Tell AI-generated photos from camera photos (ID photos first).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _scan_parser(commands)
    serve_parser = commands.add_parser("serve", help="the web page and REST API", description="The web page and REST API "
                                       "(limits from the AIORNOT_* environment variables, see README).")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--model", help="model directory (default: models/default)")
    serve_parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve_parser.set_defaults(handler=serve)
    _tool_parsers(commands)
    return parser


def _scan_parser(commands: argparse._SubParsersAction) -> None:
    scan_parser = commands.add_parser("scan", help="score image files and folders; one JSON line per image",
                                      description="Score image files and folders: one JSON line per image (resumable with -o).")
    scan_parser.add_argument("paths", nargs="+", help="image files and/or folders (searched recursively); "
                             "with --engine ray also Parquet shards in the Hugging Face layout (id, image, label)")
    scan_parser.add_argument("--output", "-o", help="append JSON lines to this file (re-runs skip paths already in it)")
    scan_parser.add_argument("--model", help="model directory (default: models/default)")
    scan_parser.add_argument("--id-photo", action="store_true", help="ID-photo mode: add the face box and the ID checks")
    scan_parser.add_argument("--face-score", action="store_true",
                             help="also score the face crop alone (face_score): information only, never part of the verdict; "
                                  "costs a second pass of the semantic expert per photo; needs --id-photo")
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
    export_parser = commands.add_parser("export", help="a scan's JSON lines as a spreadsheet (CSV for Excel, Korean beside English)",
                                        description="Write the lines of `aiornot scan -o RESULTS.jsonl` as a CSV table that Excel "
                                                    "opens with Hangul intact: one row per image.")
    export_parser.add_argument("results", help="the JSON lines file `aiornot scan -o` wrote")
    export_parser.add_argument("--output", "-o", help="the CSV file (default: the results file's name with .csv)")
    export_parser.add_argument("--force", action="store_true", help="replace the CSV file if it exists")
    export_parser.set_defaults(handler=export)


def _tool_parsers(commands: argparse._SubParsersAction) -> None:
    """The project's tools: datasets, the model card and README, the sample, the encoders, the full-size run."""
    describe_parser = commands.add_parser("describe", help="load a dataset and print its size, classes and split",
                                          description="Load a dataset and print its size, classes and the notebooks' split.")
    describe_parser.add_argument("path", help="Parquet shards (Hugging Face layout), a real/ai folder or a CSV manifest")
    describe_parser.set_defaults(handler=describe)

    card_parser = commands.add_parser("model-card", help="print a model directory's model card (Markdown)",
                                      description="Print the model card generated from MODEL_DIR/detector.json (make reports "
                                                  "writes models/MODEL_CARD.md with it).")
    card_parser.add_argument("model_dir", metavar="MODEL_DIR", help="a trained model's folder, e.g. models/default")
    card_parser.set_defaults(handler=model_card)

    readme_parser = commands.add_parser("readme", help="refresh README.md's results blocks from a model's detector.json",
                                        description="Rewrite the text between README's results markers (English and Korean) "
                                                    "from MODEL_DIR/detector.json and, when it exists, the benchmark JSON.")
    readme_parser.add_argument("readme", metavar="README", help="the README to update in place, e.g. README.md")
    readme_parser.add_argument("model_dir", metavar="MODEL_DIR", help="a trained model's folder, e.g. models/default")
    readme_parser.add_argument("benchmark", metavar="BENCHMARK_JSON", nargs="?",
                               help="make bench's reports/benchmark.json (left out, or not there yet: no speed lines)")
    readme_parser.set_defaults(handler=readme)

    sample_parser = commands.add_parser("build-sample", help="build data/sample/ from images shipped in public packages (from a checkout)",
                                        description="Build data/sample/ from the pinned sources in data/sources.toml "
                                                    "(tools/sample: from a checkout, not the installed package). "
                                                    "Exit code 1: a source failed and the previous sample was left as it was.")
    sample_parser.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: data/sample)")
    sample_parser.add_argument("--cache", type=Path, metavar="DIR", help="download and model cache (default: data/cache)")
    sample_parser.add_argument("--sources", type=Path, metavar="TOML", help="source list (default: data/sources.toml)")
    # action="extend": `--only a --only b` builds both (with "store", the last flag would silently win).
    sample_parser.add_argument("--only", nargs="+", action="extend", metavar="NAME", help="build only these sources (repeatable)")
    sample_parser.add_argument("--skip", nargs="+", action="extend", metavar="NAME", help="leave these sources out (repeatable)")
    sample_parser.set_defaults(handler=run_sample_builder)

    encoders_parser = commands.add_parser("build-encoders", help="derive the float CLIP tower (the same features on every CPU) from its pinned package",
                                          description="Derive the float CLIP image tower from the pinned INT8 package and "
                                                      "check its sha256 (make env and make encoders run it).")
    encoders_parser.add_argument("--rebuild", action="store_true", help="derive it again even if the file exists")
    encoders_parser.set_defaults(handler=build_encoders)

    run_parser = commands.add_parser("full-run", help="the seed study at full size, streamed (make full-run)",
                                     description="The seed study at full size, streamed: both CNNs, the semantic head, "
                                                 "calibration and fusion, the seed's tables; everything lands in --out.")
    run_parser.add_argument("data", help="training data: Parquet shards (Hugging Face layout), a CSV manifest or a real/ai folder")
    run_parser.add_argument("--test", help="the test split (labelled or not) to score and report")
    run_parser.add_argument("--out", default="reports/full_run")
    run_parser.add_argument("--epochs", type=int, default=30, help="forensic CNN epochs (early stopping on the tuning rows' AUC)")
    run_parser.add_argument("--seed-epochs", type=int, default=10, help="seed CNN epochs (the seed trained 10)")
    run_parser.add_argument("--batch-size", type=int, default=32)
    run_parser.add_argument("--steps-per-epoch", type=int, help="cap training batches per epoch (smoke runs)")
    run_parser.add_argument("--validation-steps", type=int, help="cap the tuning batches scored per epoch for early stopping "
                                                                   "(smoke runs)")
    run_parser.add_argument("--tuning-fraction", type=float,
                            help="share of the seed's training rows held out for early stopping, calibration and thresholds "
                                 "(default: 0.15, aiornot.apps.full_run.TUNING_FRACTION; the seed's validation rows are only reported on)")
    run_parser.add_argument("--workers", type=int, help="decoding workers per feed (default: CPUs, at most 4)")
    run_parser.add_argument("--multiprocessing", action="store_true", help="decode in processes rather than threads")
    run_parser.add_argument("--mixed-precision", action="store_true", help="float16 compute, float32 weights (GPUs)")
    run_parser.add_argument("--target-fpr", type=float, help="share of the tuning rows' real photos the `ai` threshold "
                                                            "lets through (default: the shipped model's)")
    run_parser.add_argument("--semantic-feature", help="encoder output the semantic head reads (default: the shipped "
                                                       "model's, the class tokens of CLIP blocks 4-12)")
    run_parser.add_argument("--semantic-C", type=float, help="L2 strength of the semantic head (smaller: stronger; "
                                                             "default: the shipped model's)")
    run_parser.add_argument("--no-semantic", action="store_true", help="the forensic expert alone (no encoder needed)")
    run_parser.add_argument("--store", help="feature-store folder (default: data/cache/features/<encoder id>, "
                                            "where aiornot ray-embed writes)")
    run_parser.add_argument("--quiet", action="store_true")
    run_parser.set_defaults(handler=full_run)

    embed_parser = commands.add_parser("ray-embed", help="embed a dataset on Ray Data into the feature store (resumable)",
                                       description="Embed a dataset with the CLIP tower on Ray Data, into the feature store "
                                                   "that full-run and the notebooks read (keyed by pixel sha256: resumable).")
    embed_parser.add_argument("data", help="Parquet shards (Hugging Face layout), a CSV manifest or an image folder")
    embed_parser.add_argument("--store", help="feature-store folder (default: data/cache/features/<encoder id>)")
    embed_parser.add_argument("--ray-address", help="'auto', HOST:PORT or ray://HOST:PORT (default: RAY_ADDRESS, else a local Ray)")
    embed_parser.add_argument("--workers", type=int, help="encoder-loading actors (default: one per CPU)")
    embed_parser.add_argument("--batch-size", type=int, default=16)
    embed_parser.add_argument("--limit", type=int, help="embed only the first N images")
    embed_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    embed_parser.set_defaults(handler=ray_embed)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``aiornot`` command (also ``python -m aiornot``); returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C: one line, no traceback; every finished line is already on disk
        hint = "; run the same command again to resume" if args.command == "scan" and getattr(args, "output", None) else ""
        print(f"\ninterrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # `python -m aiornot.apps.cli` still works; `python -m aiornot` is the documented spelling
    sys.exit(main())
