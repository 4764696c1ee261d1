"""The ``aiornot`` command: ``scan`` files and folders, ``serve`` the web page and API.

``aiornot scan PATH... [--output FILE.jsonl]`` writes one JSON line per image with at least
``path``, ``score`` (P(AI), 0–1), ``verdict`` and ``model``; an unreadable file gets a line with
``error`` and the scan goes on. The exit code is 0 unless nothing at all could be scored. With
``--output``, a re-run skips the paths already in the file (resumable). This is a stable contract.

Resuming can neither lose nor duplicate a line:

* paths are compared as absolute paths (``scan dir`` then ``scan $(pwd)/dir`` skips everything);
* a torn last line (power loss mid-write) is cut off on resume, and its image scored again;
* the output is locked (``fcntl.flock``) for the whole scan: a second scan into it stops at once;
* the output is checked before the model loads, so a wrong ``-o`` costs no start-up time.

A file name that is not valid UTF-8 is kept exactly: Python's ``surrogateescape`` turns its bytes
into lone surrogates, which the line carries as JSON ``\\udcXX`` escapes (the only lines written
with ASCII escapes); ``os.fsencode(line["path"])`` gives the original bytes back.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence, TextIO

from aiornot.data import IMAGE_SUFFIXES

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
    """``os.walk`` following folder links, reporting unreadable folders and link loops instead of skipping them."""
    problems: list[PathProblem] = []

    def unreadable(error: OSError) -> None:
        problems.append(PathProblem(str(error.filename), "unreadable_folder",
                                    f"cannot read the folder {error.filename}: {error.strerror or error}"))

    seen: set[tuple[int, int]] = set()
    for root, folders, names in os.walk(folder, onerror=unreadable, followlinks=True):
        identity = _identity(root)
        if identity in seen:  # a link back to a folder already walked: walking it again would never end
            problems.append(PathProblem(root, "symlink_loop", f"{root} leads back to a folder already scanned (a symbolic link loop)"))
            folders[:] = []
            continue
        seen.add(identity)
        for name in names:
            if not name.startswith(".") and (all_files or Path(name).suffix.lower() in IMAGE_SUFFIXES):
                yield Path(root) / name
    yield from problems


def _identity(folder: str) -> tuple[int, int]:
    info = os.stat(folder)
    return info.st_dev, info.st_ino


def resume_key(path: str | Path) -> str:
    """What two spellings of one path have in common: the absolute, normalised path (links not resolved)."""
    return os.path.abspath(os.fsdecode(path))


class OutputError(Exception):
    """The ``--output`` file cannot be used; the message says why and what to do."""


class ResultFile:
    """The ``--output`` JSONL file, locked for the whole scan, its torn tail repaired, its paths known.

    Opening it checks everything that could go wrong with the path (a folder, a read-only folder,
    a parent that is a file, a pseudo-file) and takes an exclusive ``flock``, so that two scans
    never interleave their lines. The lock goes with the open file: a killed scan leaves none behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repaired = False
        self._raw = self._open_locked(path)
        self._repair_tail()
        self.done = self._paths_done()
        self.handle: TextIO = open(self._raw.fileno(), "a", encoding="utf-8", closefd=False)  # noqa: SIM115

    def close(self) -> None:
        self.handle.close()
        self._raw.close()  # closing the descriptor releases the lock

    # ------------------------------------------------------------------------------ internals
    @staticmethod
    def _open_locked(path: Path) -> IO[bytes]:
        import fcntl

        if path.exists() and not path.is_file():
            kind = "a folder" if path.is_dir() else "not a regular file"
            raise OutputError(f"cannot write the output {path}: it is {kind}; give a file name such as results.jsonl")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            raw = open(path, "a+b")  # noqa: SIM115 - kept open (and locked) for the whole scan
        except OSError as error:
            raise OutputError(f"cannot write the output {path}: {_os_reason(error)}") from None
        try:
            fcntl.flock(raw.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raw.close()
            raise OutputError(f"another aiornot scan is writing to {path}; wait for it to finish, "
                              "or choose another --output") from None
        except OSError as error:
            raw.close()
            raise OutputError(f"cannot lock the output {path}: {_os_reason(error)}") from None
        return raw

    def _repair_tail(self) -> None:
        """Cut a torn last line (no newline, not JSON); end a whole last line that only lacks its newline."""
        raw = self._raw
        size = raw.seek(0, os.SEEK_END)
        if not size:
            return
        raw.seek(max(0, size - 1))
        if raw.read(1) == b"\n":
            return
        cut = self._last_newline(size)
        raw.seek(cut)
        tail = raw.read()
        if _parse_line(tail) is not None:
            raw.write(b"\n")  # a whole line without its newline: keep it
        else:
            raw.truncate(cut)  # a torn line: drop it; its image is not in `done`, so it is scored again
            self.repaired = True
        raw.flush()

    def _last_newline(self, size: int, block: int = 64 * 1024) -> int:
        """Offset just after the last newline (0 when there is none)."""
        end = size
        while end > 0:
            start = max(0, end - block)
            self._raw.seek(start)
            found = self._raw.read(end - start).rfind(b"\n")
            if found >= 0:
                return start + found + 1
            end = start
        return 0

    def _paths_done(self) -> set[str]:
        self._raw.seek(0)
        return {resume_key(path) for path in (_parse_line(line) for line in self._raw) if path is not None}


def _parse_line(line: bytes) -> str | None:
    """The ``path`` of one JSONL line, or None for a broken line."""
    try:
        path = json.loads(line)["path"]
    except (ValueError, KeyError, TypeError):
        return None
    return path if isinstance(path, str) else None


def _os_reason(error: OSError) -> str:
    reasons = {errno.EISDIR: "it is a folder", errno.ENOTDIR: "a part of the path is a file, not a folder",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EROFS: "the file system is read-only",
               errno.EEXIST: "a part of the path is a file, not a folder", errno.EINVAL: "this file cannot be written to (a pseudo-file?)"}
    return reasons.get(error.errno or 0, error.strerror or str(error))


def already_scanned(output: Path) -> set[str]:
    """Paths present in an existing JSONL output, as given (for tools); broken lines are ignored."""
    if not output.exists():
        return set()
    with output.open("rb") as handle:
        return {path for path in map(_parse_line, handle) if path is not None}


def scan(args: argparse.Namespace) -> int:
    """Run ``aiornot scan``."""
    from aiornot.detector import Detector, ModelNotFoundError, Result, model_directory
    from aiornot.imageio import ImageDecodeError

    listed = list(iter_image_paths(args.paths, all_files=args.all_files))
    if not listed:
        print(f"error: no image files found in {', '.join(args.paths)} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})", file=sys.stderr)
        return EXIT_NOTHING_SCORED
    try:  # before the model: a wrong -o must not cost the model's start-up time
        sink = ResultFile(Path(args.output)) if args.output else None
    except OutputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    with contextlib.closing(sink) if sink else contextlib.nullcontext():
        todo, problems, skipped = _plan(listed, sink.done if sink else set())
        if sink and (sink.done or sink.repaired):
            torn = "; a torn last line was removed" if sink.repaired else ""
            print(f"resuming: {skipped} of {len(listed)} already in {sink.path}{torn}", file=sys.stderr)
        try:
            # The Ray workers load their own copy; the driver only checks the folder (no TensorFlow start-up).
            detector = Detector.load(args.model, runtime=args.runtime) if args.engine == "local" else model_directory(args.model)
        except ModelNotFoundError as error:
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


def _plan(listed: list[Path | PathProblem], done: set[str]) -> tuple[list[Path], list[PathProblem], int]:
    """What is left to do: paths and problems not in ``done`` (compared as absolute paths), each once."""
    todo: list[Path] = []
    problems: list[PathProblem] = []
    seen: set[str] = set()
    skipped = 0
    for entry in listed:
        key = resume_key(entry.path if isinstance(entry, PathProblem) else entry)
        if key in done:
            skipped += 1
        elif key not in seen:  # `scan dir dir/a.jpg` names a.jpg twice: one line
            (problems if isinstance(entry, PathProblem) else todo).append(entry)  # type: ignore[arg-type]
        seen.add(key)
    return todo, problems, skipped


def json_line(record: dict) -> str:
    """One JSON line, UTF-8 as is; ASCII escapes only when a non-UTF-8 file name (lone surrogates) needs them."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record)  # \udcXX escapes: valid JSON, and os.fsencode() restores the name's bytes
    return line + "\n"


def write_results(results: Iterable, sink: TextIO) -> tuple[int, int]:
    """Write results as JSON lines (flushed each line, so an interrupted scan resumes cleanly)."""
    scored = failed = 0
    for result in results:
        sink.write(json_line(result.to_dict()))
        sink.flush()
        if result.ok:
            scored += 1
        else:
            failed += 1
    return scored, failed


@contextlib.contextmanager
def open_jsonl_output(output: Path | None) -> Iterator[TextIO]:
    """Append to ``output`` (stdout if None): locked, its torn last line removed (see :class:`ResultFile`).

    Raises :class:`OutputError` when the file cannot be used or another scan holds it.
    """
    if output is None:
        yield sys.stdout
        return
    sink = ResultFile(output)
    try:
        yield sink.handle
    finally:
        sink.close()


def serve(args: argparse.Namespace) -> int:
    """Run ``aiornot serve`` (the web page and API), with the connection limits of :mod:`aiornot.server`."""
    from aiornot import server

    if args.model:
        os.environ["AIORNOT_MODEL_DIR"] = args.model
    try:
        server.run(host=args.host, port=args.port, log_level=args.log_level)
    except ValueError as error:  # a malformed AIORNOT_* setting
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:  # Ctrl-C: one line, no traceback; every finished line is already on disk
        hint = "; run the same command again to resume" if args.command == "scan" and getattr(args, "output", None) else ""
        print(f"\ninterrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
