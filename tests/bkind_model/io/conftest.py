"""Fixtures for the video I/O tests: small real videos written with ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from bkind_model.io.ffmpeg import ffmpeg_exe
from bkind_model.io.video_writer import write_video

#: The shared open-field data set, in the ``shared`` folder beside the repository.
SHARED_VIDEO = (
    Path(__file__).resolve().parents[4]
    / "shared"
    / "data"
    / "dlc_openfield"
    / "videos"
    / "m3v1mp4.mp4"
)

HEIGHT, WIDTH = 96, 128
N_FRAMES = 300
FPS = 30.0
_BLOCK = 12
_BITS = 10


def numbered_frames(n: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """``(n, H, W, 3)`` uint8 frames that differ every frame and carry their number.

    The top row holds the frame number in binary as white/black 12-pixel blocks (see
    :func:`frame_numbers`); below it a gradient moves and a square travels.
    """
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((n, height, width, 3), np.uint8)
    for k in range(n):
        frame = frames[k]
        frame[..., 0] = (x * 2 + k * 5) % 256
        frame[..., 1] = (y * 3 + k * 3) % 256
        frame[..., 2] = 60
        top, left = 20 + (k * 2) % (height - 40), (k * 3) % (width - 16)
        frame[top : top + 16, left : left + 16] = 255
        bits = (k >> np.arange(_BITS)) & 1
        for bit, value in enumerate(bits):
            frame[:_BLOCK, bit * _BLOCK : (bit + 1) * _BLOCK] = 255 * value
    return frames


def _frame_numbers(frames: np.ndarray) -> np.ndarray:
    """Decode the numbers written by :func:`numbered_frames` from ``(n, H, W, 3)`` frames."""
    blocks = frames[:, 2 : _BLOCK - 2, : _BITS * _BLOCK].reshape(len(frames), -1, _BITS, _BLOCK, 3)
    bits = blocks.mean(axis=(1, 3, 4)) > 127
    return (bits * (1 << np.arange(_BITS))).sum(axis=1)


def _ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly, failing the test on error."""
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def frame_numbers():
    """``f(frames) -> (n,) int``: the numbers :func:`numbered_frames` drew on frames."""
    return _frame_numbers


@pytest.fixture(scope="session")
def ffmpeg():
    """``f(*args)``: run the ffmpeg command line quietly, failing the test on error."""
    return _ffmpeg


@pytest.fixture(scope="session")
def shared_video() -> Path:
    """The shared open-field video; the test is skipped when the data is absent."""
    if not SHARED_VIDEO.exists():
        pytest.skip(f"shared open-field data not present ({SHARED_VIDEO})")
    return SHARED_VIDEO


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Every test gets its own empty index and frame cache."""
    monkeypatch.setenv("BKIND_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def long_gop_video(tmp_path_factory) -> Path:
    """300-frame H.264 mp4, keyframe every 120 frames, 3 B-frames, numbered frames."""
    path = tmp_path_factory.mktemp("videos") / "long_gop.mp4"
    return write_video(path, numbered_frames(N_FRAMES), FPS, keyframe_interval=120, bframes=3)


@pytest.fixture(scope="session")
def reference_frames() -> np.ndarray:
    """The frames :func:`long_gop_video` was encoded from."""
    return numbered_frames(N_FRAMES)


@pytest.fixture
def video_copy(long_gop_video, tmp_path) -> Path:
    """A private copy of :func:`long_gop_video` that a test may modify."""
    path = tmp_path / "copy.mp4"
    path.write_bytes(long_gop_video.read_bytes())
    return path
