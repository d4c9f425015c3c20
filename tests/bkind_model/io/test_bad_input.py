"""Bad input: each case raises a specific error naming the file, never hangs."""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pytest

from bkind_model.errors import (
    DecoderTimeoutError,
    EmptyVideoError,
    NotAVideoError,
    TruncatedVideoError,
    VideoError,
    VideoNotFoundError,
    VideoPermissionError,
)
from bkind_model.io import ffmpeg as ffmpeg_module
from bkind_model.io.video import open_video


def raises_naming(error_class: type[VideoError], path):
    """``pytest.raises`` for ``error_class`` whose message names ``path``."""
    return pytest.raises(error_class, match=re.escape(str(path)))


def cut_in_half(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_missing_file(tmp_path):
    with raises_naming(VideoNotFoundError, tmp_path / "absent.mp4") as caught:
        open_video(tmp_path / "absent.mp4")
    assert isinstance(caught.value, FileNotFoundError)
    assert caught.value.fix


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 100)
    with raises_naming(NotAVideoError, path):
        open_video(path)


def test_audio_only_file_is_empty(tmp_path, ffmpeg):
    path = tmp_path / "audio.mp4"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000", "-t", "0.5", "-c:a", "aac", str(path))
    with raises_naming(EmptyVideoError, path):
        open_video(path)


def test_video_stream_without_frames_is_empty(long_gop_video, tmp_path, ffmpeg):
    path = tmp_path / "no_frames.mkv"
    ffmpeg(
        *("-i", str(long_gop_video), "-f", "lavfi", "-i", "anullsrc=r=8000"),
        *("-map", "0:v", "-map", "1:a", "-t", "0.5", "-c:a", "aac"),
        *("-c:v", "copy", "-bsf:v", "noise=drop=1", str(path)),  # drop every video packet
    )
    with raises_naming(EmptyVideoError, path):
        open_video(path)


@pytest.mark.parametrize("faststart", [False, True], ids=["moov_at_end", "moov_at_start"])
def test_mp4_cut_in_half(long_gop_video, tmp_path, ffmpeg, faststart):
    path = tmp_path / "cut.mp4"
    flags = ["-movflags", "+faststart"] if faststart else []
    ffmpeg("-i", str(long_gop_video), "-c", "copy", *flags, str(path))
    cut_in_half(path)
    with raises_naming(TruncatedVideoError, path):
        open_video(path)


def test_mkv_cut_in_half(long_gop_video, tmp_path, ffmpeg):
    path = tmp_path / "cut.mkv"
    ffmpeg("-i", str(long_gop_video), "-c", "copy", str(path))
    cut_in_half(path)
    with raises_naming(TruncatedVideoError, path):
        open_video(path)


def test_file_cut_after_opening_fails_on_read(long_gop_video, tmp_path, ffmpeg):
    path = tmp_path / "shrinking.mkv"
    ffmpeg("-i", str(long_gop_video), "-c", "copy", str(path))
    with open_video(path) as source:
        source[0]
        cut_in_half(path)
        with raises_naming(TruncatedVideoError, path):
            source[290]


@pytest.mark.skipif(os.geteuid() == 0, reason="the superuser can read any file")
def test_unreadable_file(video_copy):
    video_copy.chmod(0)
    try:
        with raises_naming(VideoPermissionError, video_copy):
            open_video(video_copy)
    finally:
        video_copy.chmod(0o644)


def test_permission_check_uses_os_access(video_copy, monkeypatch):
    """The superuser passes chmod 000, so also check the code path with access denied."""
    monkeypatch.setattr(ffmpeg_module.os, "access", lambda path, mode: False)
    with raises_naming(VideoPermissionError, video_copy) as caught:
        open_video(video_copy)
    assert isinstance(caught.value, PermissionError)


@pytest.fixture
def stalling_ffmpeg(tmp_path, monkeypatch):
    """Make every ffmpeg call a process that writes nothing; return its pid file."""
    pid_file = tmp_path / "pid"
    script = tmp_path / "stalling-ffmpeg"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    script.chmod(0o755)
    monkeypatch.setattr(ffmpeg_module, "TIMEOUT_S", 0.5)
    monkeypatch.setattr(ffmpeg_module, "ffmpeg_exe", lambda: str(script))
    return pid_file


def assert_killed(pid_file) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_stalled_ffmpeg_is_killed_while_indexing(video_copy, stalling_ffmpeg):
    began = time.monotonic()
    with raises_naming(DecoderTimeoutError, video_copy):
        open_video(video_copy)
    assert time.monotonic() - began < 5
    assert_killed(stalling_ffmpeg)


def test_stalled_ffmpeg_is_killed_while_decoding(video_copy, request):
    with open_video(video_copy) as source:
        pid_file = request.getfixturevalue("stalling_ffmpeg")
        began = time.monotonic()
        with raises_naming(DecoderTimeoutError, video_copy):
            source[150]
        assert time.monotonic() - began < 5
        assert_killed(pid_file)


@pytest.mark.parametrize("fps", [0.2, 20000.0])
def test_absurd_frame_rate_is_replaced_with_a_warning_naming_the_file(tmp_path, fps):
    from bkind_model.io.video import ASSUMED_FPS
    from bkind_model.io.video_writer import write_video

    frames = np.zeros((12, 32, 32, 3), np.uint8)
    frames[:, :, :16] = np.arange(12)[:, None, None, None] * 20
    path = write_video(tmp_path / "odd.mp4", frames, fps=fps)
    with pytest.warns(UserWarning, match=re.escape(str(path)) + ".*give the gap in frames"):
        video = open_video(path)
    assert video.fps == ASSUMED_FPS and video.fps_assumed
    assert video.n_frames == 12
