"""Run the atheris fuzz harness (tests/fuzz_decode.py) for a bounded number of inputs."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from aiornot.imageio import ImageDecodeError, open_image
from aiornot.provenance import inspect

HARNESS = Path(__file__).with_name("fuzz_decode.py")
RUNS = 3000
TIME_CAP_S = 60


def seed_corpus(folder: Path) -> None:
    """A few tiny valid images, one per container and metadata path inspect() reads."""
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x010F], exif[0x0131] = "Canon", "Midjourney"
    text = PngImagePlugin.PngInfo()
    text.add_text("parameters", "face\nSteps: 20, Sampler: Euler a, CFG scale: 7")
    text.add_text("prompt", '{"3": {"class_type": "KSampler", "inputs": {}}}')
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:I="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" I:DigitalSourceType='
           b'"http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/></rdf:RDF></x:xmpmeta>')
    seeds = {
        "plain.png": ("PNG", {}),
        "text.png": ("PNG", {"pnginfo": text}),
        "exif.jpg": ("JPEG", {"quality": 80, "exif": exif.tobytes()}),
        "xmp.jpg": ("JPEG", {"quality": 80, "xmp": xmp}),
        "xmp.webp": ("WEBP", {"quality": 80, "xmp": xmp}),
        "plain.gif": ("GIF", {}),
        "plain.bmp": ("BMP", {}),
        "plain.tiff": ("TIFF", {}),
    }
    for name, (fmt, options) in seeds.items():
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        (folder / name).write_bytes(buffer.getvalue())


@pytest.mark.slow
def test_fuzzing_open_image_and_inspect_finds_no_crash(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    seed_corpus(corpus)
    command = [sys.executable, str(HARNESS), f"-runs={RUNS}", f"-max_total_time={TIME_CAP_S}", "-seed=20261125",
               "-timeout=20", "-rss_limit_mb=0", "-max_len=4096", f"-artifact_prefix={tmp_path}/", str(corpus)]
    # A fixed hash seed and -seed make the run repeatable: set iteration order feeds the coverage.
    # Memory is capped inside the harness (RLIMIT_AS, see fuzz_decode.limit_memory), not by -rss_limit_mb: the peak
    # RSS libFuzzer reads is inherited from this (large) pytest process.
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONWARNINGS": "ignore", "AIORNOT_FUZZ_MEMORY_MB": "4096"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIME_CAP_S + 120, cwd=tmp_path, env=env)
    log = result.stdout + result.stderr
    crash = log.find("Uncaught Python exception")  # show the traceback, not libFuzzer's statistics
    assert result.returncode == 0, (f"fuzzing found a crash (input saved under {tmp_path}):\n"
                                    f"{log[crash:crash + 4000] if crash >= 0 else log[-4000:]}")
    done = re.search(r"Done (\d+) runs", log)
    assert done and int(done.group(1)) > 0, log[-2000:]


# ------------------------------------------------------------------------------------------
# Inputs the fuzzer found (rebuilt here from valid files, so the cause is visible)
# ------------------------------------------------------------------------------------------


def tiff_with_empty_second_ifd() -> bytes:
    """A valid TIFF whose next-IFD pointer leads to an IFD with no tags (no dimensions)."""
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 200, 30)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    first = struct.unpack("<I", data[4:8])[0]
    next_pointer = first + 2 + 12 * struct.unpack("<H", data[first:first + 2])[0]
    data[next_pointer:next_pointer + 4] = struct.pack("<I", len(data))
    return bytes(data + struct.pack("<HI", 0, 0))


def gif_with_cut_second_frame() -> bytes:
    """A valid GIF, then a second image descriptor and nothing after it."""
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 200, 30)).save(buffer, "GIF")
    return buffer.getvalue()[:-1] + b"," + struct.pack("<HHHHB", 0, 0, 20, 20, 0)


FUZZ_FINDINGS = [pytest.param(tiff_with_empty_second_ifd, id="tiff-empty-second-ifd"),
                 pytest.param(gif_with_cut_second_frame, id="gif-cut-second-frame")]


@pytest.mark.parametrize("make", FUZZ_FINDINGS)
def test_inspect_reports_fuzz_findings_without_raising(make) -> None:
    report = inspect(make())
    assert report.strongest() == "none"
    assert {s.status for s in report.signals} <= {"not_found", "error"}


@pytest.mark.parametrize("make", FUZZ_FINDINGS)
def test_open_image_refuses_fuzz_findings_with_a_decode_error(make) -> None:
    with pytest.raises(ImageDecodeError):
        open_image(make())
