from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from aiornot.imageio import ImageDecodeError, describe_non_image, estimate_jpeg_quality, open_image
from conftest import bad_and_odd_files, encode, photo_like, png_declaring


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


def test_oversized_file_is_refused(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(encode(photo_like(3), "JPEG"))
    with pytest.raises(ImageDecodeError, match="limit"):
        open_image(path, max_bytes=100)
