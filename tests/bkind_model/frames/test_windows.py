"""Following the animal: foreground centres, crop windows and their coordinates."""

import numpy as np
import pytest

from bkind_model.frames.background import median_background
from bkind_model.frames.letterbox import Letterbox
from bkind_model.frames.windows import (
    InputWindows,
    NoForegroundError,
    crop_windows,
    fill_missing,
    foreground_centres,
    on_foreground,
    suggest_crop_size,
)


def _frames_with_blob(centres, size=(60, 80), radius=5):
    frames = np.full((len(centres), *size, 3), 200, np.uint8)
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]]
    for frame, (cx, cy) in zip(frames, centres, strict=True):
        frame[(xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2] = 30
    return frames


def test_foreground_centres_find_the_blob_and_report_absence():
    frames = _frames_with_blob([(20, 30), (60, 10)])
    background = median_background(np.full((3, 60, 80, 3), 200, np.uint8)).gray
    centres = foreground_centres(np.concatenate([frames, frames[:1] * 0 + 200]), background)
    assert np.allclose(centres[:2], [[20, 30], [60, 10]], atol=0.3)
    assert np.isnan(centres[2]).all()


def test_points_on_the_blob_or_near_it_are_on_the_foreground():
    frames = _frames_with_blob([(20, 30), (60, 10)])
    background = np.full((60, 80), 200 / 255, np.float32)
    points = np.array(
        [
            [[20, 30], [27, 30], [60, 10], [np.nan, np.nan]],  # centre, 2 px off its rim
            [[60, 10], [20, 30], [63, 12], [69, 10]],  # inside; 4 px off its rim
        ],
        dtype=np.float64,
    )
    on = on_foreground(frames, background, points, radius=2.5)
    assert on.tolist() == [[True, True, False, False], [True, False, True, False]]


def test_fill_missing_carries_the_last_centre():
    centres = np.array([[np.nan, np.nan], [1, 2], [np.nan, np.nan], [5, 6]])
    filled = fill_missing(centres, np.array([9.0, 9.0]))
    assert filled.tolist() == [[1, 2], [1, 2], [1, 2], [5, 6]]
    assert fill_missing(np.full((2, 2), np.nan), np.array([3.0, 4.0])).tolist() == [[3, 4]] * 2


def test_crop_windows_inside_and_across_the_border():
    frames = np.arange(2 * 10 * 12, dtype=np.float32).reshape(2, 10, 12, 1)
    crops, offsets = crop_windows(frames, np.array([[5.5, 4.5], [0.0, 0.0]]), side=4)
    assert offsets.tolist() == [[4, 3], [-2, -2]]  # centre (side - 1) / 2 from the corner
    assert np.array_equal(crops[0, :, :, 0], frames[0, 3:7, 4:8, 0])
    assert np.array_equal(crops[1, 2:, 2:, 0], frames[1, :2, :2, 0])
    assert np.array_equal(crops[1, 0, :, 0], crops[1, 2, :, 0])  # border repeated


def test_crop_coordinates_round_trip_through_windows():
    box = Letterbox.crop((480, 640), crop_px=200, input_side=64)
    offsets = np.array([[[10.0, 20.0]], [[100.0, 3.0]]])  # (B, 1, 2)
    scales = np.array([205 / 640, 154 / 480])  # resized px per source px, (x, y)
    # The window's top-left edge sits at its offset; its centre half a window further.
    edge = box.to_source(np.full((2, 1, 2), -1.0), offsets)
    assert np.allclose(edge, offsets / scales - 0.5)
    centre = box.to_source(np.zeros((2, 1, 2)), offsets)
    assert np.allclose(centre, (offsets + 32) / scales - 0.5)
    assert box.input_size == (64, 64) and box.is_crop
    assert box.resized_size == (154, 205)  # 0.32 resized px per source px


def test_input_windows_put_the_animal_in_the_middle():
    frames = _frames_with_blob([(20, 30), (70, 50)])
    background = median_background(np.full((3, 60, 80, 3), 200, np.uint8)).gray
    box = Letterbox((60, 80), (24, 24), 1.0, (0, 0))
    inputs, _ = InputWindows(box, background).inputs(frames)
    assert inputs.shape == (2, 3, 24, 24)
    dark = inputs[:, 0] < 0.5
    for mask in dark:
        ys, xs = np.nonzero(mask.numpy())
        assert abs(xs.mean() - 11.5) < 1 and abs(ys.mean() - 11.5) < 1


def test_suggest_crop_size_from_the_animal_extent():
    centres = [(20 + 5 * i, 30) for i in range(9)]
    frames = _frames_with_blob(centres, radius=6)
    crop = suggest_crop_size(frames, median_background(frames).gray)
    assert 1.3 * 10 < crop < 1.3 * 14  # a 13 px disc: 1st-99th percentile extent
    with pytest.raises(NoForegroundError, match="crop_size"):
        still = np.full((4, 60, 80, 3), 200, np.uint8)
        suggest_crop_size(still, median_background(still).gray)
