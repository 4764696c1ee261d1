"""Bounded coverage-guided fuzzing of the decoder and the provenance reader (atheris / libFuzzer).

Every upload reaches :func:`aiornot.io.decode.open_image` and :func:`aiornot.evidence.provenance.inspect`
first, so both must survive arbitrary bytes: ``open_image`` may only raise ``ImageDecodeError``,
``inspect`` may not raise at all, and its report must serialise to JSON (the service returns it).
Any other outcome is a crash: libFuzzer saves the input (``-artifact_prefix``) and exits non-zero.

Run it directly, bounded, with a seed corpus folder (``tests/test_fuzz.py`` does this)::

    python tests/fuzz_decode.py -runs=3000 -max_total_time=60 -seed=1 CORPUS_DIR

``-runs``, ``-max_total_time``, ``-timeout`` and ``-rss_limit_mb`` are libFuzzer's own flags.
"""

from __future__ import annotations

import json
import sys

import atheris

# Instrument our code and Pillow's parsers, so that coverage feedback steers mutations into the
# container formats (Pillow is where hostile bytes are parsed); numpy, OpenCV and c2pa's native
# library are not Python and are exercised but not instrumented.
with atheris.instrument_imports(include=["aiornot", "PIL"]):
    from aiornot.io.decode import ImageDecodeError, open_image
    from aiornot.evidence.provenance import inspect


def test_one_input(data: bytes) -> None:
    """One fuzz case: the decoder raises only ImageDecodeError; inspect never raises."""
    try:
        open_image(data)
    except ImageDecodeError:
        pass  # the documented way to refuse bad input
    report = inspect(data)
    json.dumps(report.to_dict(), allow_nan=False)


def limit_memory() -> None:
    """Cap this process's address space (``AIORNOT_FUZZ_MEMORY_MB``, default 4096): an input that makes the
    decoder allocate past it raises MemoryError, which libFuzzer reports as a crash with its traceback.

    Why not libFuzzer's ``-rss_limit_mb``: it reads the peak RSS, which Linux carries over from the
    parent across fork and exec, so a harness started by a large pytest process looked out of memory
    before its first input.
    """
    import os
    import resource

    limit = int(os.environ.get("AIORNOT_FUZZ_MEMORY_MB", "4096")) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> None:
    """Hand the command line to libFuzzer and fuzz until -runs or -max_total_time is reached."""
    limit_memory()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
