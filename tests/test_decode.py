"""The one safe decoder (aiornot.io.decode): odd and hostile files, bounded header parsing, faithful colour,
special files."""

from __future__ import annotations

import io
import os
import socket
import struct
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aiornot.io.decode import ALLOWED_FORMATS, ImageDecodeError, describe_non_image, from_pixels, estimate_jpeg_quality, open_image, read_bytes
from conftest import FUZZ_FINDINGS, bad_and_odd_files, encode, marker_flood_jpeg, photo_like, png_declaring, text_chunk_flood_png


@pytest.mark.parametrize("name", sorted(bad_and_odd_files()))
def test_every_odd_file_decodes_to_rgb_or_fails_clearly(name):
    data, readable = bad_and_odd_files()[name]
    if readable:
        decoded = open_image(data)
        assert decoded.pixels.dtype == np.uint8 and decoded.pixels.ndim == 3 and decoded.pixels.shape[2] == 3
    else:
        with pytest.raises(ImageDecodeError) as caught:
            open_image(data)
        assert caught.value.code in {"corrupt", "empty", "not_an_image", "too_many_pixels"}
        assert str(caught.value)


def test_bomb_is_rejected_before_decoding_with_the_declared_size():
    with pytest.raises(ImageDecodeError) as caught:
        open_image(png_declaring(30000, 30000))
    assert caught.value.code == "too_many_pixels"
    assert "900,000,000" in str(caught.value) or "bomb" in str(caught.value)


def test_pixel_limit_is_configurable():
    data = encode(photo_like(0, (200, 100)), "PNG")
    with pytest.raises(ImageDecodeError, match="over the limit"):
        open_image(data, max_pixels=10_000)
    assert open_image(data, max_pixels=20_000).width == 200


def test_text_and_pdf_are_named():
    assert "PDF" in describe_non_image(b"%PDF-1.7 ...")
    with pytest.raises(ImageDecodeError, match="text file"):
        open_image(b"hello, I am a text file named photo.jpg")
    korean = "# aiornot — AI 생성 사진 판별 (증명사진 중심)\n".encode()  # byte 32 falls inside a Hangul syllable
    assert len(korean) > 32 and "text file" in describe_non_image(korean)



def test_sixteen_bit_grey_keeps_its_tones():
    grey = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (32, 1))
    decoded = open_image(encode(Image.fromarray(grey), "PNG"))
    row = decoded.pixels[0, :, 0]
    assert row[0] < 10 and row[-1] > 245 and np.all(np.diff(row.astype(int)) >= 0)
    assert any("16-bit" in note for note in decoded.notes)


def test_cmyk_becomes_rgb_with_the_right_colour():
    data = encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)
    red, green, blue = open_image(data).pixels[16, 16].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_transparency_is_flattened_on_white():
    data = encode(Image.new("RGBA", (32, 32), (0, 0, 0, 0)), "PNG")
    assert open_image(data).pixels.min() == 255


def test_animation_uses_the_first_frame():
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    decoded = open_image(buffer.getvalue())
    assert decoded.n_frames == 2 and decoded.pixels[0, 0, 0] > 200 and decoded.pixels[0, 0, 2] < 50


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (80, 40), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    decoded = open_image(encode(image, "JPEG", exif=exif.tobytes()))
    assert (decoded.width, decoded.height) == (40, 80) and decoded.exif_orientation == 6 and decoded.has_exif


@pytest.mark.parametrize("quality", [30, 50, 75, 90])
def test_jpeg_quality_estimate_is_close(quality):
    image = Image.open(io.BytesIO(encode(photo_like(2), "JPEG", quality=quality)))
    assert abs(estimate_jpeg_quality(image) - quality) <= 3
    assert estimate_jpeg_quality(Image.open(io.BytesIO(encode(photo_like(2), "PNG")))) is None


def test_unsupported_format_and_missing_file(tmp_path):
    with pytest.raises(ImageDecodeError) as caught:
        open_image(encode(Image.new("RGB", (32, 32)), "ICO"))
    assert caught.value.code == "unsupported_format"
    with pytest.raises(ImageDecodeError) as caught:
        open_image(tmp_path / "missing.jpg")
    assert caught.value.code == "not_found"
    with pytest.raises(ImageDecodeError) as caught:
        open_image(tmp_path)
    assert caught.value.code == "not_a_file"


@pytest.mark.skipif("AVIF" not in ALLOWED_FORMATS, reason="this Pillow build cannot decode AVIF")
def test_avif_decodes_like_the_other_formats_orientation_and_first_frame_included():
    photo = photo_like(5, (120, 80))
    rotated = Image.Exif()
    rotated[0x0112] = 6  # "rotate 90° clockwise to display"
    decoded = open_image(encode(photo, "AVIF", exif=rotated, quality=95))
    assert decoded.format == "AVIF" and decoded.pixels.shape == (120, 80, 3)
    assert "EXIF orientation 6 applied" in decoded.notes
    upright = np.asarray(photo.transpose(Image.Transpose.ROTATE_270), dtype=float)
    assert np.abs(decoded.pixels - upright).mean() < 8  # lossy AVIF, but the photo the right way up
    animated = io.BytesIO()
    photo.save(animated, "AVIF", save_all=True, append_images=[photo.rotate(180)], duration=100)
    assert "first of 2 frames used" in open_image(animated.getvalue()).notes


@pytest.mark.parametrize("box_size", [0x18, 0x1C, 0x24])
def test_an_iphone_heic_photo_is_refused_with_what_to_do(box_size):
    heic = struct.pack(">I", box_size) + b"ftypheic" + b"\0" * 4 + b"mif1heic" + os.urandom(256)
    with pytest.raises(ImageDecodeError) as caught:
        open_image(heic)
    assert caught.value.code == "unsupported_format"
    assert "HEIC" in caught.value.message and "Most Compatible" in caught.value.message


def test_a_video_named_jpg_is_named_a_video():
    mp4 = struct.pack(">I", 0x20) + b"ftypisom" + b"\0\0\2\0isomiso2avc1mp41" + os.urandom(64)
    with pytest.raises(ImageDecodeError, match="video") as caught:
        open_image(mp4)
    assert caught.value.code == "not_an_image"


@pytest.mark.parametrize(("make", "code", "words"), [
    (lambda rgb: rgb.transpose(2, 0, 1), "invalid_pixels", "channels-first"),
    (lambda rgb: rgb.astype(float), "invalid_pixels", "0–1"),
    (lambda rgb: np.where(rgb > 0, np.nan, 0.5), "invalid_pixels", "NaN"),
    (lambda rgb: rgb > 0, "invalid_pixels", "not bool"),
    (lambda rgb: rgb[:8, :8], "too_small", "at least 16 px"),
    (lambda rgb: rgb[:, :, :2], "invalid_pixels", "H×W×3"),
])
def test_pixels_in_memory_that_are_not_a_picture_say_what_to_change(make, code, words):
    rgb = np.asarray(photo_like(1, (40, 30)))
    with pytest.raises(ImageDecodeError, match=words) as caught:
        from_pixels(make(rgb))
    assert caught.value.code == code


def test_pixels_in_memory_become_the_decoders_rgb():
    rgb = np.asarray(photo_like(1, (40, 30)))
    for same in (rgb, rgb / 255.0, (rgb.astype(np.uint16) * 257), Image.fromarray(rgb)):
        decoded = from_pixels(same)
        assert decoded.pixels.dtype == np.uint8 and np.array_equal(decoded.pixels, rgb) and decoded.format == "PIXELS"
    grey = from_pixels(rgb[:, :, 0])
    assert np.array_equal(grey.pixels, np.repeat(rgb[:, :, :1], 3, axis=2))
    clear = np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)])  # fully transparent: white, as a decoded PNG's would be
    assert (from_pixels(clear).pixels == 255).all() and "transparency flattened onto white" in from_pixels(clear).notes
    with pytest.raises(ImageDecodeError, match="over the limit"):
        from_pixels(rgb, max_pixels=100)


def test_oversized_file_is_refused(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(encode(photo_like(3), "JPEG"))
    with pytest.raises(ImageDecodeError, match="limit"):
        open_image(path, max_bytes=100)


@pytest.mark.parametrize("data", [b"Dear officer, my password is hunter2", b"%PDF-1.7 secret", b"\x13\x37\xbe\xef\xca\xfe\x00\x01x"])
def test_errors_name_the_kind_of_file_never_its_bytes(data):
    with pytest.raises(ImageDecodeError) as caught:
        open_image(data)
    message = str(caught.value)
    assert caught.value.code == "not_an_image"
    # Neither the text, nor the signature, nor a hex dump of the first bytes is quoted.
    assert "Dear" not in message and "%PDF" not in message and "13 37" not in message and "1337" not in message


# ----------------------------------------------------------- bounded header parsing (issue 18)
def _open_calls(monkeypatch) -> list:
    """Record every Image.open (Pillow's header parse) the decoder makes."""
    calls: list = []
    original = Image.open

    def recording(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(Image, "open", recording)
    return calls


def test_a_marker_flood_jpeg_is_refused_before_pillow_parses_it(monkeypatch):
    calls = _open_calls(monkeypatch)
    with pytest.raises(ImageDecodeError) as caught:
        open_image(marker_flood_jpeg(20_000))
    assert caught.value.code == "too_much_metadata" and "markers" in str(caught.value)
    assert calls == []  # the cap is met by the walk, before Pillow reads a single marker


def test_the_full_size_marker_flood_costs_bounded_memory():
    flood = marker_flood_jpeg()  # 19.6 MB, 4.9 million markers: Pillow alone took 13 s and 728 MB
    tracemalloc.start()
    try:
        with pytest.raises(ImageDecodeError) as caught:
            open_image(flood, max_bytes=len(flood))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == "too_much_metadata"
    assert peak < 5 * 1024 * 1024, peak  # the walk copies nothing: its own memory is a few objects


def test_a_png_of_many_text_chunks_is_refused(monkeypatch):
    calls = _open_calls(monkeypatch)
    with pytest.raises(ImageDecodeError) as caught:
        open_image(text_chunk_flood_png(5_000))
    assert caught.value.code == "too_much_metadata" and "chunks" in str(caught.value) and calls == []


def test_stray_bytes_between_jpeg_markers_are_capped():
    jpeg = encode(photo_like(1, (64, 64)), "JPEG")
    padded = lambda count: jpeg[:2] + b"\xff" * count + jpeg[2:]  # fill bytes: Pillow reads them one at a time
    assert open_image(padded(100)).width == 64
    with pytest.raises(ImageDecodeError) as caught:
        open_image(padded(100_000))
    assert caught.value.code == "too_much_metadata"


def test_ordinary_metadata_is_well_inside_the_caps():
    jpeg = encode(photo_like(1, (64, 64)), "JPEG")
    comments = b"".join(b"\xff\xfe" + struct.pack(">H", 2 + 60) + bytes([65 + n % 26]) * 60 for n in range(300))
    assert open_image(jpeg[:2] + comments + jpeg[2:]).width == 64  # 300 COM segments
    many_idat = io.BytesIO()
    Image.fromarray(np.asarray(photo_like(2, (400, 300)))).save(many_idat, format="PNG", compress_level=0)
    data = many_idat.getvalue()
    assert open_image(data).width == 400  # ~360 KB: Pillow writes 64 KB IDAT chunks …
    text = encode(photo_like(1, (64, 64)), "PNG", pnginfo=_text_info(200))
    assert open_image(text).width == 64  # … and 200 text chunks are still an ordinary file


def _text_info(count: int):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for n in range(count):
        info.add_text(f"key{n}", "value")
    return info


def test_structure_caps_are_checked_by_the_one_header_reader():
    # Every header parse goes through open_header, so provenance and the service's pixel check meet the cap too.
    from aiornot.evidence import provenance
    from aiornot.io.decode import read_header

    with pytest.raises(ImageDecodeError, match="markers"):
        read_header(marker_flood_jpeg(5_000))
    report = provenance.inspect(marker_flood_jpeg(5_000))
    assert all(signal.details.get("code") == "too_much_metadata" for signal in report.signals)


# ------------------------------------------------------------------- faithful colour (issue 18)
def _cmyk_without_adobe_marker(image: Image.Image, quality: int = 95) -> bytes:
    """A CMYK JPEG with plain (not inverted) ink values and no Adobe APP14 marker, as non-Adobe writers make."""
    # Pillow writes Adobe's inverted polarity: inverting first stores the plain values.
    data = encode(image.convert("CMYK").point(lambda value: 255 - value), "JPEG", quality=quality)
    out, position = bytearray(data[:2]), 2
    while data[position + 1] != 0xDA:  # copy every segment before the scan except APP14 (0xEE)
        length = struct.unpack(">H", data[position + 2:position + 4])[0]
        if data[position + 1] != 0xEE:
            out += data[position:position + 2 + length]
        position += 2 + length
    return bytes(out + data[position:])


def _swapped_primaries_profile() -> bytes:
    """An RGB ICC profile whose red and blue primaries trade places: stored R means blue."""
    from PIL import ImageCms

    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = struct.unpack_from(">I", profile, 128)[0]
    entries = {struct.unpack_from(">4s", profile, 132 + 12 * n)[0]: 132 + 12 * n for n in range(count)}
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    profile[red + 4:red + 12], profile[blue + 4:blue + 12] = profile[blue + 4:blue + 12], profile[red + 4:red + 12]
    return bytes(profile)


def _mean_difference(pixels: np.ndarray, image: Image.Image) -> float:
    return float(np.abs(pixels.astype(np.int16) - np.asarray(image, np.int16)).mean())


def test_a_cmyk_jpeg_decodes_to_the_colours_of_the_rgb_photo():
    photo = photo_like(4, (128, 96))
    rgb = open_image(encode(photo, "JPEG", quality=95, subsampling=0)).pixels
    adobe = open_image(encode(photo.convert("CMYK"), "JPEG", quality=95))  # Pillow writes Adobe's inverted CMYK
    plain = open_image(_cmyk_without_adobe_marker(photo))
    for decoded in (rgb, adobe.pixels, plain.pixels):
        assert _mean_difference(decoded, photo) < 6.0  # JPEG noise; a negative image would be ~100 off
    assert _mean_difference(plain.pixels, Image.fromarray(rgb)) < 6.0 and any("Adobe marker" in note for note in plain.notes)


def test_an_embedded_icc_profile_is_converted_to_srgb():
    photo = photo_like(5, (96, 64))
    stored = Image.fromarray(np.ascontiguousarray(np.asarray(photo)[:, :, ::-1]))  # R and B swapped, as the profile says
    decoded = open_image(encode(stored, "PNG", icc_profile=_swapped_primaries_profile()))
    assert _mean_difference(decoded.pixels, photo) < 1.0
    assert any("ICC profile converted to sRGB" in note for note in decoded.notes)


def test_an_srgb_profile_leaves_the_pixels_exactly_as_stored():
    from PIL import ImageCms

    photo = photo_like(6, (96, 64))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = open_image(encode(photo, "PNG", icc_profile=srgb))
    assert np.array_equal(tagged.pixels, np.asarray(photo)) and tagged.notes == ()


def test_a_damaged_icc_profile_is_a_note_not_a_failure():
    decoded = open_image(encode(photo_like(7, (64, 64)), "PNG", icc_profile=b"not a profile at all" * 10))
    assert decoded.width == 64 and any("not applied" in note for note in decoded.notes)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["real_grace_hopper.jpg", "ai_flux_krea.webp"])
def test_rgb_cmyk_and_icc_forms_of_a_photo_score_alike(name):
    """On the committed model the plain CMYK form of the AI photo scored 0.0 (its negative) against
    1.0, and the ICC form of the real portrait 0.64 against 0.007: both verdicts flipped."""
    from aiornot.contract import paths
    from aiornot.detector import Detector

    detector = Detector.load(paths.DEFAULT_MODEL_DIR)
    photo = Image.open(Path(__file__).parent / "golden" / "images" / name).convert("RGB")
    stored = Image.fromarray(np.ascontiguousarray(np.asarray(photo)[:, :, ::-1]))
    forms = {"rgb": encode(photo, "JPEG", quality=95, subsampling=0), "adobe_cmyk": encode(photo.convert("CMYK"), "JPEG", quality=95),
             "plain_cmyk": _cmyk_without_adobe_marker(photo), "icc": encode(stored, "PNG", icc_profile=_swapped_primaries_profile())}
    scores = {form: detector.predict(open_image(data), data=data).score for form, data in forms.items()}
    assert max(scores.values()) - min(scores.values()) < 0.03, scores


# --------------------------------------------------------- special files and the fuzzer's findings
def test_special_files_are_refused_without_being_read(tmp_path):
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    unix = tmp_path / "socket.jpg"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(unix))
    outcome: dict = {}

    def read_them() -> None:  # in a thread: if a FIFO were opened for reading this would hang, not the suite
        for path in (fifo, "/dev/zero", unix):
            try:
                read_bytes(path)
            except ImageDecodeError as error:
                outcome[str(path)] = error.code

    reader = threading.Thread(target=read_them, daemon=True)
    reader.start()
    reader.join(timeout=30)
    listener.close()
    assert not reader.is_alive(), "reading a special file blocked"
    assert outcome == {str(fifo): "not_a_file", "/dev/zero": "not_a_file", str(unix): "not_a_file"}


@pytest.mark.parametrize("make", FUZZ_FINDINGS)
def test_open_image_refuses_fuzz_findings_with_a_decode_error(make) -> None:
    with pytest.raises(ImageDecodeError):
        open_image(make())
