"""A folder of images read as a video."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bkind_model.errors import EmptyVideoError, InconsistentFramesError, NotAVideoError
from bkind_model.io.video import open_video


def write_image(path, value: int, size=(24, 32), mode="RGB") -> None:
    """Save an image of ``size`` (height, width) filled with gray level ``value``."""
    gray = np.full(size, value, np.uint8)
    if mode == "I;16":
        image = Image.fromarray(gray.astype(np.uint16) * 256)
    elif mode == "P":
        image = Image.fromarray(gray).convert("P", palette=Image.Palette.ADAPTIVE)
    else:
        image = Image.fromarray(gray).convert(mode)
    image.save(path)


def test_images_are_read_in_natural_order(tmp_path):
    for number in [10, 2, 1, 33, 3]:
        write_image(tmp_path / f"img{number}.png", number)
    (tmp_path / "notes.txt").write_text("not an image")
    with open_video(tmp_path) as source:
        assert source.n_frames == 5
        assert source.shape == (5, 24, 32, 3)
        np.testing.assert_array_equal(source.read(0, 5)[:, 0, 0, 0], [1, 2, 3, 10, 33])
        np.testing.assert_array_equal(source.frames[:, 5, 5, 1].compute(), [1, 2, 3, 10, 33])
        assert source[3][0, 0, 0] == 10
        assert [start for start, _ in source.iter_chunks(chunk=2)] == [0, 2, 4]


def test_frame_rate_is_assumed_unless_given(tmp_path):
    for number in range(3):
        write_image(tmp_path / f"{number}.png", number)
    with open_video(tmp_path) as source:
        assert source.fps == 30.0 and source.fps_assumed
        assert "assumed" in repr(source)
    with open_video(tmp_path, fps=10) as source:
        assert source.fps == 10.0 and not source.fps_assumed
        np.testing.assert_allclose(source.timestamps, [0.0, 0.1, 0.2])


def test_gray_palette_alpha_and_16_bit_images_give_rgb(tmp_path):
    write_image(tmp_path / "a1.png", 50, mode="L")
    write_image(tmp_path / "a2.png", 60, mode="RGBA")
    write_image(tmp_path / "a3.png", 70, mode="P")
    write_image(tmp_path / "a4.tif", 80, mode="I;16")
    write_image(tmp_path / "a5.jpg", 90, mode="L")
    with open_video(tmp_path) as source:
        frames = source.read(0, 5)
    assert frames.shape == (5, 24, 32, 3)
    assert (frames == frames[..., :1]).all(), "channels must be equal for gray content"
    np.testing.assert_allclose(frames[:, 0, 0, 0], [50, 60, 70, 80, 90], atol=2)


def test_images_of_different_sizes_name_the_first_odd_one(tmp_path):
    write_image(tmp_path / "img1.png", 1)
    write_image(tmp_path / "img2.png", 2)
    write_image(tmp_path / "img3.png", 3, size=(20, 32))
    write_image(tmp_path / "img10.png", 10, size=(20, 32))
    with pytest.raises(InconsistentFramesError, match=r"img3\.png") as caught:
        open_video(tmp_path)
    assert caught.value.path == tmp_path / "img3.png"
    assert "32x20" in str(caught.value) and "img1.png" in str(caught.value)


def test_folder_without_images_is_empty(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(EmptyVideoError, match="no images"):
        open_video(tmp_path)


def test_broken_image_is_named(tmp_path):
    write_image(tmp_path / "img1.png", 1)
    (tmp_path / "img2.png").write_text("not really a png")
    with pytest.raises(NotAVideoError, match=r"img2\.png"):
        open_video(tmp_path)


def test_signature_changes_when_an_image_changes(tmp_path):
    for number in range(3):
        write_image(tmp_path / f"{number}.png", number)
    with open_video(tmp_path) as source:
        before = source.signature
    write_image(tmp_path / "1.png", 200)
    with open_video(tmp_path) as source:
        assert source.signature != before
        assert source[1][0, 0, 0] == 200
