"""The ``aiornot`` command: ``scan`` files and folders, ``serve`` the web page and API.

``aiornot scan PATH... [--output FILE.jsonl]`` writes one JSON line per image with at least
``path``, ``score`` (P(AI), 0–1), ``verdict`` and ``model``; an unreadable file gets a line with
``error`` and the scan goes on. The exit code is 0 unless nothing at all could be scored. With
``--output``, a re-run skips the paths already in the file (resumable). This is a stable contract.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Iterable, Iterator, Sequence, TextIO

from aiornot.data import IMAGE_SUFFIXES

EXIT_OK, EXIT_NOTHING_SCORED, EXIT_USAGE = 0, 1, 2


def iter_image_paths(inputs: Sequence[str], *, all_files: bool = False) -> Iterator[Path]:
    """Files named directly, and files under folders (recursive, sorted).

    Inside folders only image suffixes are taken unless ``all_files`` is set; a file named
    directly is always taken, so a mislabelled file gets a clear error rather than a silent skip.
    """
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not child.name.startswith(".") and (all_files or child.suffix.lower() in IMAGE_SUFFIXES):
                    yield child
        else:
            yield path


def already_scanned(output: Path) -> set[str]:
    """Paths present in an existing JSONL output (for resuming); broken lines are ignored."""
    if not output.exists():
        return set()
    done = set()
    with output.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                done.add(json.loads(line)["path"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return done


def scan(args: argparse.Namespace) -> int:
    """Run ``aiornot scan``."""
    from aiornot.detector import Detector, ModelNotFoundError, model_directory

    paths = list(iter_image_paths(args.paths, all_files=args.all_files))
    if not paths:
        print(f"error: no image files found in {', '.join(args.paths)} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})", file=sys.stderr)
        return EXIT_NOTHING_SCORED
    output = Path(args.output) if args.output else None
    done = already_scanned(output) if output else set()
    todo = [p for p in paths if str(p) not in done]
    if done:
        print(f"resuming: {len(paths) - len(todo)} of {len(paths)} already in {output}", file=sys.stderr)
    try:
        # The Ray workers load their own copy; the driver only checks the folder (no TensorFlow start-up).
        detector = Detector.load(args.model, runtime=args.runtime) if args.engine == "local" else model_directory(args.model)
    except ModelNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.engine == "ray":
        from aiornot import batch

        try:
            counts = batch.scan_with_ray(todo, output=output, model_dir=args.model, id_photo=args.id_photo,
                                         batch_size=args.batch_size, num_workers=args.workers,
                                         address=args.ray_address, progress=not args.quiet)
        except batch.BatchError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USAGE
    else:
        with open_jsonl_output(output) as sink:
            counts = write_results(detector.predict_many(todo, batch_size=args.batch_size, id_photo=args.id_photo,
                                                         progress=not args.quiet, total=len(todo)), sink)
    scored, failed = counts
    print(f"scored {scored}, failed {failed}" + (f", skipped {len(done)} already done" if done else ""), file=sys.stderr)
    return EXIT_OK if scored or (done and not failed) else EXIT_NOTHING_SCORED


def write_results(results: Iterable, sink: TextIO) -> tuple[int, int]:
    """Write results as JSON lines (flushed each line, so an interrupted scan resumes cleanly)."""
    scored = failed = 0
    for result in results:
        sink.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        sink.flush()
        if result.ok:
            scored += 1
        else:
            failed += 1
    return scored, failed


@contextlib.contextmanager
def open_jsonl_output(output: Path | None) -> Iterator[TextIO]:
    """Append to ``output`` (stdout if None), first ending a line a killed run may have cut short.

    Without that newline the first new line would be glued to the broken one and lost on
    resume. Both engines (local and Ray) write through this one function.
    """
    if output is None:
        yield sys.stdout
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists() and output.stat().st_size:
        with output.open("rb+") as probe:
            probe.seek(-1, os.SEEK_END)
            if probe.read(1) != b"\n":
                probe.write(b"\n")
    with output.open("a", encoding="utf-8") as handle:
        yield handle


def serve(args: argparse.Namespace) -> int:
    """Run ``aiornot serve`` (the web page and API)."""
    import uvicorn

    if args.model:
        os.environ["AIORNOT_MODEL_DIR"] = args.model
    uvicorn.run("aiornot.service:create_app", factory=True, host=args.host, port=args.port, log_level="info",
                access_log=False)  # access logs would record clients; uploads are never logged either
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiornot", description="Tell AI-generated photos from camera photos (ID photos first).")
    commands = parser.add_subparsers(dest="command", required=True)
    scan_parser = commands.add_parser("scan", help="score image files and folders; one JSON line per image")
    scan_parser.add_argument("paths", nargs="+", help="image files and/or folders (searched recursively)")
    scan_parser.add_argument("--output", "-o", help="append JSON lines to this file (re-runs skip paths already in it)")
    scan_parser.add_argument("--model", help="model directory (default: models/default)")
    scan_parser.add_argument("--id-photo", action="store_true", help="ID-photo mode: add face box, face-crop score and ID checks")
    scan_parser.add_argument("--engine", choices=("local", "ray"), default="local", help="local (default) or Ray Data for clusters")
    scan_parser.add_argument("--batch-size", type=int, default=32)
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
    serve_parser.set_defaults(handler=serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
