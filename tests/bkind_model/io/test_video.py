"""Frame-exact, lazy video access: random access must equal sequential decoding."""

from __future__ import annotations

import gc
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from bkind_model.io import frame_index, video
from bkind_model.io.frame_index import load_frame_index
from bkind_model.io.video import VideoSource, open_video

HEIGHT, WIDTH, N_FRAMES, FPS = 96, 128, 300, 30.0  # of the long_gop_video fixture


def decode_all(source: VideoSource) -> np.ndarray:
    """Every frame from one sequential decoder pass."""
    return np.concatenate([frames for _, frames in source.iter_chunks(chunk=50)])


def assert_frames_equal(source: VideoSource, indices, sequential: np.ndarray, workers=1):
    """Random access to ``indices`` (from ``workers`` threads) equals ``sequential``."""
    indices = [int(i) for i in indices]
    with ThreadPoolExecutor(workers) as pool:
        frames = list(pool.map(source.__getitem__, indices))
    wrong = [i for i, frame in zip(indices, frames, strict=True) if (frame != sequential[i]).any()]
    assert not wrong, f"frames differing from sequential decoding: {wrong}"


def test_metadata(long_gop_video):
    with open_video(long_gop_video) as source:
        assert len(source) == source.n_frames == N_FRAMES
        assert source.shape == (N_FRAMES, HEIGHT, WIDTH, 3)
        assert (source.height, source.width) == (HEIGHT, WIDTH)
        assert source.fps == FPS and not source.fps_assumed
        assert source.path == long_gop_video
        np.testing.assert_allclose(source.timestamps, np.arange(N_FRAMES) / FPS, atol=1e-3)
        assert source.frames.shape == source.shape
        assert source.frames.dtype == np.uint8
        assert source.frames.chunksize == (source.chunk_frames, HEIGHT, WIDTH, 3)
        assert "n_frames=300" in repr(source)


def test_sequential_decoding_gives_every_frame_in_order(
    long_gop_video, reference_frames, frame_numbers
):
    with open_video(long_gop_video) as source:
        starts, chunks = zip(*source.iter_chunks(chunk=64), strict=True)
        assert [len(chunk) for _, chunk in source.iter_chunks(chunk=64, start=290)] == [10]
    assert starts == tuple(range(0, N_FRAMES, 64))
    frames = np.concatenate(chunks)
    np.testing.assert_array_equal(frame_numbers(frames), np.arange(N_FRAMES))
    assert np.abs(frames.astype(int) - reference_frames).mean() < 4  # lossy H.264


def test_random_access_equals_sequential_on_every_frame(long_gop_video):
    """Long GOP (keyframe every 120 frames) with 3 B-frames, every frame in random order,
    read by 4 threads sharing one source."""
    with open_video(long_gop_video) as source:
        sequential = decode_all(source)
        order = np.random.default_rng(0).permutation(N_FRAMES)
        assert_frames_equal(source, order, sequential, workers=4)


def test_dask_chunks_equal_sequential_at_chunk_boundaries(long_gop_video):
    with open_video(long_gop_video, chunk_frames=16) as source:
        sequential = decode_all(source)
        for i in [0, 1, 15, 16, 17, 31, 32, 119, 120, 121, 239, 240, 287, 288, 299]:
            np.testing.assert_array_equal(source.frames[i].compute(), sequential[i])
        np.testing.assert_array_equal(source.frames[10:50].compute(), sequential[10:50])
        np.testing.assert_array_equal(
            source.frames[::37, :8, 5].compute(), sequential[::37, :8, 5]
        )
        np.testing.assert_array_equal(source.frames.compute(), sequential)


def test_indexing_and_read(long_gop_video):
    with open_video(long_gop_video) as source:
        sequential = decode_all(source)
        np.testing.assert_array_equal(source.read(110, 130), sequential[110:130])
        np.testing.assert_array_equal(source[-1], sequential[-1])
        np.testing.assert_array_equal(source[[299, 3, 3, 150]], sequential[[299, 3, 3, 150]])
        np.testing.assert_array_equal(source[250:260:3], sequential[250:260:3])
        assert source.read(5, 5).shape == (0, HEIGHT, WIDTH, 3)
        with pytest.raises(IndexError):
            source[N_FRAMES]
        with pytest.raises(IndexError):
            source.read(10, N_FRAMES + 1)


def test_stepping_forward_continues_one_decoder(long_gop_video, monkeypatch):
    """A slider stepping frame by frame must not start a decoder per frame."""
    starts = []
    original = video._Decoder.__init__

    def counting_init(self, path, index, start, stop=None, **kwargs):
        starts.append(start)
        original(self, path, index, start, stop, **kwargs)

    monkeypatch.setattr(video._Decoder, "__init__", counting_init)
    with open_video(long_gop_video, chunk_frames=16) as source:
        for i in range(100, 164):  # dask chunks 6 to 10
            source.frames[i].compute()
        assert starts == [96]
        for i in range(200, 230):  # direct reads continue the same decoder
            source[i]
        assert starts == [96]
        source[20]  # far behind: a new decoder
        assert starts == [96, 20]


def test_decoders_stop_when_nothing_refers_to_the_source(long_gop_video, frame_numbers):
    source = open_video(long_gop_video)
    source[100]
    processes = [decoder._process._proc for decoder in source._reader._idle]
    assert processes and all(process.poll() is None for process in processes)
    frames = source.frames
    del source
    np.testing.assert_array_equal(frame_numbers(frames[7:8].compute()), [7])
    assert all(process.poll() is None for process in processes)  # kept by the dask array
    del frames
    gc.collect()
    assert all(process.poll() is not None for process in processes)


def test_chunk_cache_is_bounded(long_gop_video):
    chunk_bytes = 16 * HEIGHT * WIDTH * 3
    with open_video(long_gop_video, chunk_frames=16, cache_bytes=3 * chunk_bytes) as source:
        source.frames[::16].compute()
        assert len(source._chunks._chunks) == 3


@pytest.mark.parametrize(
    ("name", "codec_args"),
    [
        ("copy.mkv", ["-c", "copy"]),
        ("copy.mov", ["-c", "copy"]),
        ("copy.ts", ["-c", "copy"]),  # starts at 1.4 s, not 0
        ("h264.avi", ["-c", "copy"]),  # AVI: no pts, the index decodes once
        ("mpeg4.avi", ["-c:v", "mpeg4", "-q:v", "3", "-bf", "2", "-g", "100"]),
    ],
)
def test_other_containers_are_frame_exact(
    long_gop_video, tmp_path, name, codec_args, ffmpeg, frame_numbers
):
    path = tmp_path / name
    ffmpeg("-i", str(long_gop_video), *codec_args, str(path))
    with open_video(path) as source:
        assert source.n_frames == N_FRAMES
        sequential = decode_all(source)
        np.testing.assert_array_equal(frame_numbers(sequential), np.arange(N_FRAMES))
        sample = np.random.default_rng(1).choice(N_FRAMES, 25, replace=False)
        sample = sorted({*sample.tolist(), 1, 99, 100, 101, 119, 120, 121, 299})
        assert_frames_equal(source, sample, sequential, workers=2)


def test_grayscale_video_gives_three_equal_channels(tmp_path, ffmpeg):
    path = tmp_path / "gray.mkv"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "20"),
        *("-pix_fmt", "gray", "-c:v", "ffv1", str(path)),
    )
    with open_video(path) as source:
        frames = source.read(0, 20)
    assert frames.std() > 0
    assert (frames[..., 0] == frames[..., 1]).all()
    assert (frames[..., 1] == frames[..., 2]).all()


def test_rotation_metadata_is_applied(long_gop_video, tmp_path, ffmpeg):
    path = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(long_gop_video), "-c", "copy", str(path))
    with open_video(path) as source:
        assert (source.height, source.width) == (WIDTH, HEIGHT)
        assert source[5].shape == (WIDTH, HEIGHT, 3)


def test_index_is_cached_and_invalidated_when_the_file_changes(
    video_copy, long_gop_video, tmp_path, monkeypatch, ffmpeg
):
    builds = []
    original = frame_index.build_frame_index
    monkeypatch.setattr(
        frame_index, "build_frame_index", lambda p: builds.append(p) or original(p)
    )
    index_dir = tmp_path / "cache" / "index"

    open_video(video_copy).close()
    open_video(video_copy).close()
    assert len(builds) == 1
    assert len(list(index_dir.glob("*.npz"))) == 1

    stat = video_copy.stat()  # same content, new modification time
    os.utime(video_copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    open_video(video_copy).close()
    assert len(builds) == 2

    shorter = tmp_path / "shorter.mp4"  # new content under the same name
    ffmpeg("-i", str(long_gop_video), "-frames:v", "50", "-c", "copy", str(shorter))
    os.replace(shorter, video_copy)
    with open_video(video_copy) as source:
        assert source.n_frames == 50
    assert len(builds) == 3
    assert len(list(index_dir.glob("*.npz"))) == 1  # stale entries are removed


@pytest.mark.shared_data
def test_shared_openfield_video_random_access_is_exact(shared_video):
    """The DeepLabCut open-field video (H.264 4:4:4 by an old x264, keyframes every 6 s)
    returns corrupted frames on naive seeking; check a random sample and every keyframe's
    neighbours against one sequential pass."""
    keyframes = load_frame_index(shared_video).keyframes
    with open_video(shared_video) as source:
        assert (source.n_frames, source.width, source.height, source.fps) == (2330, 640, 480, 30)
        rng = np.random.default_rng(2)
        sample = set(rng.choice(source.n_frames, 100, replace=False).tolist())
        sample |= {int(k) + d for k in keyframes[1:] for d in (-1, 0, 1, 2)}
        expected = {}
        for start, frames in source.iter_chunks(chunk=64):
            for i in sample & set(range(start, start + len(frames))):
                expected[i] = hashlib.sha1(frames[i - start].tobytes()).hexdigest()

        def digest(i):
            return hashlib.sha1(source[i].tobytes()).hexdigest()

        with ThreadPoolExecutor(2) as pool:
            got = dict(zip(sorted(sample), pool.map(digest, sorted(sample)), strict=True))
    wrong = sorted(i for i in sample if got[i] != expected[i])
    assert not wrong, f"frames differing from sequential decoding: {wrong}"


def test_single_threaded_decoders_give_the_same_frames(long_gop_video):
    with open_video(long_gop_video) as usual, open_video(long_gop_video, decoder_threads=1) as one:
        np.testing.assert_array_equal(usual[100:140], one[100:140])
        first = [frames for _, frames in one.iter_chunks(16, 30, 62)]
        np.testing.assert_array_equal(np.concatenate(first), usual[30:62])
