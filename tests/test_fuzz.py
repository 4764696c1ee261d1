"""Run the atheris fuzz harness (tests/fuzz_decode.py) for a bounded number of inputs."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

pytest.importorskip("atheris")

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
    corpus = tmp_path / "corpus"
    seed_corpus(corpus)
    command = [sys.executable, str(HARNESS), f"-runs={RUNS}", f"-max_total_time={TIME_CAP_S}", "-seed=20261125",
               "-timeout=20", "-rss_limit_mb=4096", "-max_len=4096", f"-artifact_prefix={tmp_path}/", str(corpus)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIME_CAP_S + 120, cwd=tmp_path)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"fuzzing found a crash (input saved under {tmp_path}):\n{log[-6000:]}"
    done = re.search(r"Done (\d+) runs", log)
    assert done and int(done.group(1)) > 0, log[-2000:]
