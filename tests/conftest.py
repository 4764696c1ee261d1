"""Shared fixtures and builders: every test builds its own images; nothing is downloaded.

Builders used by tests of more than one module live here (odd and hostile files, Parquet shards in
the Hugging Face layout, a fake encoder, the fuzzer's findings); a builder used by one test file
stays in that file.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo_like(seed: int = 0, size: tuple[int, int] = (120, 90)) -> Image.Image:
    """A smooth, noisy RGB picture (size = width, height)."""
    rng = np.random.default_rng(seed)
    width, height = size
    gradient = np.linspace(0, 200, width)[None, :, None] + np.linspace(0, 50, height)[:, None, None]
    pixels = np.clip(gradient + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def pictures(count: int, shape=(96, 128, 3), seed: int = 0) -> list[np.ndarray]:
    """``count`` noise images as uint8 arrays (height, width, 3)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width``×``height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def marker_flood_jpeg(markers: int = 4_900_000, base: bytes | None = None) -> bytes:
    """Issue 18's freezing upload: empty APP15 markers in front of a small JPEG (19 MB at the default count)."""
    jpeg = base or encode(photo_like(1, (64, 64)), "JPEG", quality=90)
    return jpeg[:2] + b"\xff\xef\x00\x02" * markers + jpeg[2:]


def text_chunk_flood_png(chunks: int = 1_300_000) -> bytes:
    """A small PNG with ``chunks`` tiny tEXt chunks before its image data (issue 18's second case)."""
    png = encode(photo_like(1, (64, 64)), "PNG")
    body = b"k\x00v"
    text = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return png[:33] + text * chunks + png[33:]  # after the signature (8) and IHDR (25)


def deep_tree(base: Path, levels: int, name: str = "d") -> Path:
    """``levels`` nested folders under ``base``, made relative to an open folder at each step, so
    the tree may be deeper than the longest path the OS accepts; returns the (nominal) deepest path."""
    fd = os.open(base, os.O_RDONLY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    return Path(base, *([name] * levels))


def remove_deep_tree(top: Path) -> None:
    """Remove a tree made by :func:`deep_tree` (and files in it) without recursion or long paths
    (shutil.rmtree recurses once per level: the tests' cleanup would fail as scan did)."""
    fds = [os.open(top, os.O_RDONLY)]
    while True:  # down to the bottom, one open folder per level
        folders = [entry for entry in os.scandir(fds[-1]) if entry.is_dir(follow_symlinks=False)]
        if not folders:
            break
        fds.append(os.open(folders[0].name, os.O_RDONLY, dir_fd=fds[-1]))
    while fds:  # and back up, emptying each level
        fd = fds.pop()
        for entry in os.scandir(fd):
            (os.rmdir if entry.is_dir(follow_symlinks=False) else os.unlink)(entry.name, dir_fd=fd)
        os.close(fd)
    os.rmdir(top)


def bad_and_odd_files() -> dict[str, tuple[bytes, bool]]:
    """name → (bytes, readable?) for the cases the issue names."""
    base = photo_like(1)
    good_jpeg = encode(base, "JPEG", quality=90)
    frames = [photo_like(i, (64, 64)) for i in range(3)]
    animated = io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return {
        "ok.jpg": (good_jpeg, True),
        "corrupt.jpg": (good_jpeg[: len(good_jpeg) // 3], False),
        "empty.jpg": (b"", False),
        "text.jpg": (b"this is not an image, just text\n" * 4, False),
        "bomb.png": (png_declaring(30000, 30000), False),
        "grey.jpg": (encode(base.convert("L"), "JPEG"), True),
        "cmyk.jpg": (encode(base.convert("CMYK"), "JPEG"), True),
        "sixteen.png": (encode(Image.fromarray((np.asarray(base.convert("L"), np.uint16) * 257)), "PNG"), True),
        "rgba.png": (encode(base.convert("RGBA"), "PNG"), True),
        "animated.gif": (animated.getvalue(), True),
    }


# --- the command line ------------------------------------------------------------------------


def scan(*args: str) -> int:
    """``aiornot scan ARGS --quiet``; its exit code."""
    from aiornot.apps import cli

    return cli.main(["scan", *args, "--quiet"])


# --- Parquet shards in the Hugging Face layout (id, image{bytes, path}, label) --------------


IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def write_shard(path, ids, images, labels=None, *, row_group_size=None, extra=None):
    """One Parquet shard in the Hugging Face ``competitions/aiornot`` layout."""
    columns = {"id": ids, "image": pa.array([{"bytes": b, "path": i} for i, b in zip(ids, images)], type=IMAGE_TYPE)}
    if labels is not None:
        columns["label"] = labels
    columns.update(extra or {})
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def image_shard(tmp_path, count=24, *, corrupt=(5,), row_group_size=4, labels=True):
    """``count`` small JPEGs in ``tmp_path/hf/train-00000-of-00001.parquet``, ids ``img000.jpg`` …, label = row % 2;
    the rows in ``corrupt`` truncated."""
    images = [encode(photo_like(i, (96, 80)), "JPEG", quality=90) for i in range(count)]
    for index in corrupt:
        images[index] = images[index][:200]  # truncated: the decoder must say so
    ids = [f"img{i:03d}.jpg" for i in range(count)]
    folder = tmp_path / "hf"
    folder.mkdir(exist_ok=True)
    return write_shard(folder / "train-00000-of-00001.parquet", ids, images, [i % 2 for i in range(count)] if labels else None,
                       row_group_size=row_group_size)


def noise_png(seed, size=(186, 184)):
    """A PNG of random noise (incompressible): about 100 KB at the default size."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


def write_shards(folder, images, *, shards=3, row_group_size=4):
    """Hugging Face shards of ``images`` (``None`` = a row without bytes); label = row number % 2."""
    folder.mkdir(parents=True, exist_ok=True)
    per_shard = -(-len(images) // shards)
    for index in range(shards):
        part = range(index * per_shard, min(len(images), (index + 1) * per_shard))
        table = pa.table({
            "id": [f"{i}.png" for i in part],
            "image": pa.array([{"bytes": images[i], "path": f"{i}.png"} for i in part], type=IMAGE_TYPE),
            "label": [i % 2 for i in part],
            "source": [f"s{i}" for i in part],
        })
        pq.write_table(table, folder / f"train-{index:05d}-of-{shards:05d}.parquet", row_group_size=row_group_size)
    return folder


# --- a stand-in encoder, for tests of what is built on features ------------------------------


class FakeEncoder:
    """Deterministic 'features' (per-channel means and a counter of calls), for store tests."""

    id = "fake-encoder"

    def __init__(self) -> None:
        self.seen = 0

    def embed(self, images):
        self.seen += len(images)
        means = np.array([p.reshape(-1, 3).mean(axis=0) for p in images], np.float32)
        return {"embeds": means, "cls": means[:, ::-1].copy()}


# --- inputs the fuzzer found (tests/fuzz_decode.py), rebuilt from valid files ------------------


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


@pytest.fixture
def odd_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "odd"
    folder.mkdir()
    for name, (data, _) in bad_and_odd_files().items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def predict_options(monkeypatch) -> list:
    """The PredictOptions each scored batch was given (CLI scan, service route or Python call alike)."""
    import aiornot.predict

    seen: list = []
    original = aiornot.predict.score_batch

    def recording(detector, batch, options):
        seen.append(options)
        return original(detector, batch, options)

    monkeypatch.setattr(aiornot.predict, "score_batch", recording)
    return seen


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """An untrained detector saved like a real one: tests the contract, not the accuracy."""
    from aiornot.model import networks
    from aiornot.detector import Detector, Thresholds

    directory = tmp_path_factory.mktemp("model")
    detector = Detector(networks.forensic_detector(widths=(8, 16)), {"name": "tiny-test", "crop_size": 32, "crops_per_image": 4})
    detector.thresholds = Thresholds(ai=0.6, real=0.4)
    detector.save(directory)
    return directory


# --- the real server, for tests/test_browser.py and tests/test_load.py ------------------------


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server binds it a moment later)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """A function that starts ``uvicorn aiornot.apps.service:create_app`` on 127.0.0.1 (loopback only)
    with a model directory and extra environment, waits until ``/healthz`` answers, and returns the
    base URL. Every server it started is stopped when the module's tests are done."""
    import subprocess
    import sys
    import time
    import urllib.request

    started: list[subprocess.Popen] = []
    logs = tmp_path_factory.mktemp("server-logs")

    def start(model_dir: Path | str, timeout_s: float = 120.0, **env: str) -> str:
        port = free_loopback_port()
        log = logs / f"server-{port}.log"
        environment = {**os.environ, "AIORNOT_MODEL_DIR": str(model_dir), "TF_CPP_MIN_LOG_LEVEL": "3", **env}
        # `aiornot serve` itself, so the tests meet the same connection limits (aiornot.apps.server) as users.
        command = [sys.executable, "-m", "aiornot.apps.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        with log.open("wb") as sink:
            process = subprocess.Popen(command, env=environment, stdout=sink, stderr=subprocess.STDOUT,
                                       cwd=Path(__file__).resolve().parents[1])
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                with direct.open(f"{url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        start.logs[url] = log
                        return url
            except OSError:
                time.sleep(0.3)
        pytest.fail(f"the server did not answer /healthz within {timeout_s:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")

    start.logs = {}  # url → the server's log file, for tests that read what it logged
    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
