"""The JSONL results file that ``aiornot scan`` and the Ray batch job append to, and its resume rules.

One JSON line per image (see :mod:`aiornot.apps.cli` for the contract). Resuming can neither lose
nor duplicate a line:

* paths are compared as absolute paths (``scan dir`` then ``scan $(pwd)/dir`` skips everything);
* a torn last line (power loss mid-write) is cut off on resume, and its image scored again;
* the output is locked (``fcntl.flock``) for the whole scan: a second scan into it stops at once.

A file name that is not valid UTF-8 is kept exactly: Python's ``surrogateescape`` turns its bytes
into lone surrogates, which the line carries as JSON ``\\udcXX`` escapes (the only lines written
with ASCII escapes); ``os.fsencode(line["path"])`` gives the original bytes back.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator, TextIO


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
        #: The ``path`` of every line, as written (a Parquet scan's row ids); ``done`` holds them as absolute paths.
        self.keys = self._paths_written()
        self.done = {resume_key(path) for path in self.keys}
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

    def _paths_written(self) -> set[str]:
        self._raw.seek(0)
        return {path for path in (_parse_line(line) for line in self._raw) if path is not None}


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


def json_line(record: dict) -> str:
    """One JSON line, UTF-8 as is; ASCII escapes only when a non-UTF-8 file name (lone surrogates) needs them."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record)  # \udcXX escapes: valid JSON, and os.fsencode() restores the name's bytes
    return line + "\n"


@dataclass
class ScanCounts:
    """What a scan wrote: the images scored (and their verdicts), the ones that failed, the ones already done."""

    scored: int = 0
    failed: int = 0
    skipped: int = 0
    verdicts: Counter = field(default_factory=Counter)

    def add(self, record: dict) -> None:
        """Count one written line (a Result's dict: ``error`` when it failed, else its ``verdict``)."""
        if "error" in record:
            self.failed += 1
        else:
            self.scored += 1
            self.verdicts[str(record.get("verdict"))] += 1

    def __add__(self, other: "ScanCounts") -> "ScanCounts":
        return ScanCounts(self.scored + other.scored, self.failed + other.failed, self.skipped + other.skipped,
                          self.verdicts + other.verdicts)

    def summary(self) -> str:
        """The scan's last line, e.g. ``scored 12, failed 1, skipped 3 already done; verdicts: ai 2, inconclusive 1, real 9``."""
        line = f"scored {self.scored}, failed {self.failed}" + (f", skipped {self.skipped} already done" if self.skipped else "")
        if self.scored:
            line += "; verdicts: " + ", ".join(f"{name} {self.verdicts[name]}" for name in sorted(self.verdicts))
        return line


def write_results(results: Iterable, sink: TextIO) -> ScanCounts:
    """Write results as JSON lines (flushed each line, so an interrupted scan resumes cleanly)."""
    counts = ScanCounts()
    for result in results:
        record = result.to_dict()
        sink.write(json_line(record))
        sink.flush()
        counts.add(record)
    return counts


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
