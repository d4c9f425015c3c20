"""The decoded-frame cache used for training."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bkind_model.frames import cache as frame_cache
from bkind_model.frames.cache import FrameCache
from bkind_model.frames.letterbox import resize_frames
from bkind_model.io.video import open_video


def cache_files(tmp_path):
    return sorted((tmp_path / "cache" / "frames").glob("*.npy*"))


def test_build_stores_every_frame_resized(long_gop_video, tmp_path):
    calls = []
    with open_video(long_gop_video) as source:
        sequential = source.read(0, source.n_frames)
        cache = FrameCache.build(source, (48, 64), progress=lambda *args: calls.append(args))
    assert cache.shape == (300, 48, 64, 3) and len(cache) == 300
    expected = resize_frames(sequential, (48, 64))
    np.testing.assert_array_equal(cache[np.arange(300)], expected)
    pairs = np.array([17, 4, 299, 4])
    np.testing.assert_array_equal(cache[pairs], expected[pairs])
    np.testing.assert_array_equal(cache[5], expected[5])
    done = [done for done, total, _ in calls]
    assert done == sorted(done) and done[-1] == 300
    assert {total for _, total, _ in calls} == {300}
    assert "long_gop.mp4" in calls[-1][2]
    assert [path.suffix for path in cache_files(tmp_path)] == [".npy"]  # no temporary file


def test_existing_cache_is_reopened_without_decoding(long_gop_video, monkeypatch):
    with open_video(long_gop_video) as source:
        first = FrameCache.build(source, (48, 64))
        monkeypatch.setattr(frame_cache, "_write_frames", pytest.fail)
        again = FrameCache.build(source, (48, 64))
    assert again.path == first.path
    np.testing.assert_array_equal(again[np.arange(0, 300, 7)], first[np.arange(0, 300, 7)])


def test_cache_is_rebuilt_when_the_video_changes(video_copy, tmp_path):
    with open_video(video_copy) as source:
        old = FrameCache.build(source, (48, 64))
    stat = video_copy.stat()
    os.utime(video_copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with open_video(video_copy) as source:
        new = FrameCache.build(source, (48, 64))
    assert new.path != old.path
    assert cache_files(tmp_path) == [new.path]  # the stale cache is deleted


def test_different_sizes_are_cached_separately(long_gop_video, tmp_path):
    with open_video(long_gop_video) as source:
        small = FrameCache.build(source, (24, 32))
        large = FrameCache.build(source, (48, 64))
    assert small.shape[1:] == (24, 32, 3) and large.shape[1:] == (48, 64, 3)
    assert cache_files(tmp_path) == sorted([small.path, large.path])


def test_interrupted_build_leaves_nothing(long_gop_video, tmp_path):
    def cancel(done, total, message):
        raise KeyboardInterrupt

    with open_video(long_gop_video) as source, pytest.raises(KeyboardInterrupt):
        FrameCache.build(source, (48, 64), progress=cancel)
    assert cache_files(tmp_path) == []


def test_frames_are_resized_to_the_exact_size(long_gop_video):
    with open_video(long_gop_video) as source:
        cache = FrameCache.build(source, (30, 40))
        frame = source[10]
    assert cache.shape == (300, 30, 40, 3)
    np.testing.assert_allclose(cache[10].mean(), frame.mean(), atol=2)


def test_same_size_is_not_resized():
    frames = np.random.default_rng(0).integers(0, 255, (2, 8, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_frames(frames, (8, 6)), frames)


def test_image_folder_can_be_cached(tmp_path):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for number in range(4):
        Image.fromarray(np.full((20, 40, 3), 50 * number, np.uint8)).save(folder / f"{number}.png")
    with open_video(folder) as source:
        cache = FrameCache.build(source, (10, 20))
    assert cache.shape == (4, 10, 20, 3)
    np.testing.assert_array_equal(cache[np.arange(4)][:, 5, 5, 0], [0, 50, 100, 150])
