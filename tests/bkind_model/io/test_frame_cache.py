"""The decoded-frame cache used for training."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bkind_model.io import frame_cache
from bkind_model.io.frame_cache import FrameCache, FrameGeometry, resize_frames
from bkind_model.io.video import open_video


def cache_files(tmp_path):
    return sorted((tmp_path / "cache" / "frames").glob("*.npy*"))


def test_build_stores_every_frame_resized(long_gop_video, tmp_path):
    calls = []
    with open_video(long_gop_video) as source:
        sequential = source.read(0, source.n_frames)
        cache = FrameCache.build(source, 64, progress=lambda *args: calls.append(args))
    assert cache.shape == (300, 48, 64, 3) and len(cache) == 300
    expected = resize_frames(sequential, cache.geometry)
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
        first = FrameCache.build(source, 64)
        monkeypatch.setattr(frame_cache, "_write_frames", pytest.fail)
        again = FrameCache.build(source, 64)
    assert again.path == first.path
    np.testing.assert_array_equal(again[np.arange(0, 300, 7)], first[np.arange(0, 300, 7)])


def test_cache_is_rebuilt_when_the_video_changes(video_copy, tmp_path):
    with open_video(video_copy) as source:
        old = FrameCache.build(source, 64)
    stat = video_copy.stat()
    os.utime(video_copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with open_video(video_copy) as source:
        new = FrameCache.build(source, 64)
    assert new.path != old.path
    assert cache_files(tmp_path) == [new.path]  # the stale cache is deleted


def test_different_sizes_are_cached_separately(long_gop_video, tmp_path):
    with open_video(long_gop_video) as source:
        small = FrameCache.build(source, 32)
        large = FrameCache.build(source, 64)
    assert small.shape[1:] == (24, 32, 3) and large.shape[1:] == (48, 64, 3)
    assert cache_files(tmp_path) == sorted([small.path, large.path])


def test_interrupted_build_leaves_nothing(long_gop_video, tmp_path):
    def cancel(done, total, message):
        raise KeyboardInterrupt

    with open_video(long_gop_video) as source, pytest.raises(KeyboardInterrupt):
        FrameCache.build(source, 64, progress=cancel)
    assert cache_files(tmp_path) == []


def test_letterbox_keeps_the_aspect_ratio(long_gop_video):
    with open_video(long_gop_video) as source:
        cache = FrameCache.build(source, (64, 64))
        frame = source[10]
    geometry = cache.geometry
    assert (geometry.size, geometry.content, geometry.pad) == ((64, 64), (48, 64), (8, 0))
    assert geometry.scale == (0.5, 0.5)
    assert not cache[10][:8].any() and not cache[10][-8:].any()  # black bars
    np.testing.assert_allclose(cache[10][8:-8].mean(), frame.mean(), atol=2)
    centre = np.array([[63.5, 47.5]])  # (x, y) of the source centre
    np.testing.assert_allclose(geometry.to_cache(centre), [[31.5, 31.5]])
    np.testing.assert_allclose(geometry.to_source(geometry.to_cache(centre)), centre)


@pytest.mark.parametrize(
    ("source_size", "size", "content", "pad"),
    [
        ((480, 640), 256, (192, 256), (0, 0)),
        ((481, 640), (192, 256), (192, 256), (0, 0)),  # within a pixel: no bars
        ((480, 640), (256, 256), (192, 256), (32, 0)),
        ((640, 480), (256, 256), (256, 192), (0, 32)),
        ((480, 640), 640, (480, 640), (0, 0)),
    ],
)
def test_geometry_fit(source_size, size, content, pad):
    geometry = FrameGeometry.fit(source_size, size)
    assert (geometry.content, geometry.pad) == (content, pad)


def test_image_folder_can_be_cached(tmp_path):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for number in range(4):
        Image.fromarray(np.full((20, 40, 3), 50 * number, np.uint8)).save(folder / f"{number}.png")
    with open_video(folder) as source:
        cache = FrameCache.build(source, 20)
    assert cache.shape == (4, 10, 20, 3)
    np.testing.assert_array_equal(cache[np.arange(4)][:, 5, 5, 0], [0, 50, 100, 150])
