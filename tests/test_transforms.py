"""Pixel transforms the detector and the evaluation rely on: crops, tiles, padding, laundering."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from aiornot.io import transforms
from conftest import pictures


def coordinates(height: int, width: int) -> np.ndarray:
    """An image whose pixel (r, c) holds r in red and c in green (each mod 256): a crop tells where it came from."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows % 256, cols % 256, np.zeros_like(rows)], axis=-1).astype(np.uint8)


def test_crop_grid_takes_distinct_crops_centred_on_an_even_grid() -> None:
    crops = transforms.crop_grid(coordinates(200, 240), 64, 4)
    assert crops.shape == (4, 64, 64, 3)
    corners = [(int(c[0, 0, 0]), int(c[0, 0, 1])) for c in crops]
    # Centres at 25 % and 75 % of each side: rows 50 and 150, columns 60 and 180, less half a crop.
    assert corners == [(18, 28), (18, 148), (118, 28), (118, 148)]
    assert len(set(corners)) == 4  # four different places, not one crop four times


def test_crop_grid_keeps_the_most_central_cells_and_never_resizes() -> None:
    image = coordinates(300, 300)
    (single,) = transforms.crop_grid(image, 64, 1)
    assert (int(single[0, 0, 0]), int(single[0, 0, 1])) == (118, 118)  # the centre crop
    three = transforms.crop_grid(image, 64, 3)  # a 2 × 2 grid: three of its cells
    assert len({(int(c[0, 0, 0]), int(c[0, 0, 1])) for c in three}) == 3
    assert np.array_equal(single, image[118:182, 118:182])  # native pixels, unchanged


def test_tile_grid_tiles_the_whole_picture_without_overlap() -> None:
    tiles = transforms.tile_grid(coordinates(130, 200), 64, 64)  # 2 rows × 3 columns fit, centred
    origins = [(int(t[0, 0, 0]), int(t[0, 0, 1])) for t in tiles]
    assert origins == [(1, 4), (1, 68), (1, 132), (65, 4), (65, 68), (65, 132)]


def test_pad_to_reflects_small_images_and_leaves_large_ones_alone() -> None:
    image = coordinates(10, 70)
    padded = transforms.pad_to(image, 64)
    assert padded.shape == (64, 70, 3)
    assert np.array_equal(padded[27:37], image)  # 27 rows above, 27 below: centred
    assert np.array_equal(padded[26], image[1]) and np.array_equal(padded[37], image[8])  # reflected, not repeated
    assert transforms.pad_to(image, 8) is image
    line = coordinates(1, 5)
    assert np.array_equal(transforms.pad_to(line, 3)[0], line[0]) and transforms.pad_to(line, 3).shape == (3, 5, 3)  # edge mode


def test_launder_is_a_metadata_free_png_of_the_centre_square() -> None:
    image = np.zeros((100, 300, 3), np.uint8)
    image[:, 100:200] = 255  # only the centre square is white
    data = transforms.launder(image, size=32)
    laundered = Image.open(io.BytesIO(data))
    assert laundered.format == "PNG" and laundered.size == (32, 32) and laundered.mode == "RGB"
    assert not laundered.info.get("exif") and "dpi" not in laundered.info
    assert np.asarray(laundered).min() >= 250  # the black sides were cut off, not squeezed in


def test_resized_images_is_the_seed_input_scaled_to_unit_range() -> None:
    batch = transforms.resized_images([np.full((10, 20, 3), 255, np.uint8), np.zeros((40, 30, 3), np.uint8)], 16)
    assert batch.shape == (2, 16, 16, 3) and batch.dtype == np.float32
    assert batch[0].min() == 1.0 and batch[1].max() == 0.0


def test_fit_within_shrinks_the_longest_side_and_keeps_the_ratio():
    wide = np.random.default_rng(0).integers(0, 255, (300, 1000, 3), dtype=np.uint8)
    assert transforms.fit_within(wide, 500).shape == (150, 500, 3)
    assert transforms.fit_within(wide.transpose(1, 0, 2), 500).shape == (500, 150, 3)
    assert transforms.fit_within(wide[:, :, 0], 250).shape == (75, 250)  # grey too
    assert transforms.fit_within(wide, 1000) is wide  # fits already: untouched, never enlarged
    assert transforms.fit_within(wide, 2000, enlarge=True).shape == (600, 2000, 3)
    # A flat colour stays that colour: a resize, not a crop or a pad.
    flat = np.full((90, 120, 3), 77, np.uint8)
    assert (transforms.fit_within(flat, 60) == 77).all()


def test_tile_grid_covers_the_image_up_to_the_cap():
    image = np.arange(640 * 320 * 3, dtype=np.uint32).reshape(320, 640, 3).astype(np.uint8)
    tiles = transforms.tile_grid(image, 64, 100)
    assert tiles.shape == (50, 64, 64, 3)  # 5 rows × 10 columns, every tile
    capped = transforms.tile_grid(np.zeros((2048, 2048, 3), np.uint8), 64, 64)
    assert len(capped) == 64
    small = transforms.tile_grid(np.zeros((20, 30, 3), np.uint8), 64, 64)
    assert small.shape == (1, 64, 64, 3)


def test_tile_grid_spreads_thinned_tiles_over_the_whole_picture():
    rows = np.repeat(np.arange(32, dtype=np.uint8), 64)[:, None, None] * np.ones((1, 64 * 32, 3), np.uint8)
    tiles = transforms.tile_grid(rows, 64, 16)  # 32 × 32 tiles thinned to 4 × 4
    row_ids = sorted({int(t[0, 0, 0]) for t in tiles})
    assert row_ids[0] == 0 and row_ids[-1] == 31 and len(row_ids) == 4


def test_reencode_like_upload_is_a_384_jpeg_copy():
    copy = transforms.reencode_like_upload(pictures(1, (300, 500, 3))[0])
    assert copy.shape == (384, 384, 3) and copy.dtype == np.uint8


def test_jpeg_bytes_is_the_file_jpeg_decodes_with_its_quality_and_no_metadata():
    from aiornot.io.decode import open_image

    photo = pictures(1, (120, 160, 3))[0]
    data = transforms.jpeg_bytes(photo, 70)
    decoded = open_image(data)
    assert decoded.format == "JPEG" and abs(decoded.jpeg_quality - 70) <= 3 and not decoded.has_exif
    np.testing.assert_array_equal(decoded.pixels, transforms.jpeg(photo, 70))
