"""Run the atheris fuzz harness (tests/fuzz_decode.py) for a bounded number of inputs (slow: a minute).

The inputs it found are rebuilt in conftest.py (FUZZ_FINDINGS) and tested where they belong: the
decoder in test_decode.py, provenance in test_provenance.py.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

pytestmark = pytest.mark.slow

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

