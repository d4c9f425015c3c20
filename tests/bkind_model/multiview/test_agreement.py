"""Views that do not see one animal the way the calibration says are refused by name."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from bkind_model.io.ffmpeg import ffmpeg_exe
from bkind_model.io.video import open_video
from bkind_model.io.video_writer import write_video
from bkind_model.multiview.data import check_views_agree, prepare_views
from bkind_model.multiview.network import square_letterbox
from bkind_model.multiview.synthetic import MultiViewConfig, write_multiview_sample
from bkind_model.multiview.training import default_config_3d
from bkind_model.multiview.views import ViewsError, open_session

CONFIG = MultiViewConfig(n_frames=60, image_size=(64, 64))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_multiview_sample(tmp_path_factory.mktemp("agree"), CONFIG)


def _check(sample, videos, overrides=None):
    session = open_session(videos, sample.calibration, overrides=overrides)
    boxes = [square_letterbox(c.image_shape, 64) for c in session.cameras]
    sources = [open_video(v) for v in session.videos]
    config = default_config_3d(image_size=64, frame_gap=3.0)
    views = prepare_views(sources, boxes, session.offsets, session.n_frames, config)
    check_views_agree(views, session)


def test_the_right_views_pass_and_swapped_ones_are_named(sample):
    _, b, c = sample.videos
    _check(sample, sample.videos)
    with pytest.raises(ViewsError, match="cameras 'cam_b' and 'cam_c' look swapped") as info:
        _check(sample, sample.videos, {"cam_b": c, "cam_c": b})
    assert f"--views cam_b={b} cam_c={c}" in str(info.value)
    assert "--no-view-check" in str(info.value)


def test_a_noise_video_as_one_camera_is_named(sample, tmp_path):
    noise = tmp_path / "noise_cam_c.mp4"
    frames = np.random.default_rng(0).integers(0, 256, (60, 64, 64, 3), dtype=np.uint8)
    write_video(noise, frames, 30.0)
    with pytest.raises(ViewsError, match="camera 'cam_c'") as info:
        _check(sample, [*sample.videos[:2], noise], {"cam_c": noise})
    assert "noise_cam_c.mp4" in str(info.value)


def test_a_test_pattern_as_one_camera_is_named_not_taken_for_a_swap(sample, tmp_path):
    pattern = tmp_path / "pattern_cam_c.mp4"
    source = ["-f", "lavfi", "-i", "testsrc=size=64x64:rate=30", "-frames:v", "60"]
    command = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", *source, "-pix_fmt", "yuv420p"]
    subprocess.run([*command, str(pattern)], check=True, timeout=60)
    with pytest.raises(ViewsError, match=r"camera 'cam_c' \(video .*pattern_cam_c.mp4\) does"):
        _check(sample, [*sample.videos[:2], pattern], {"cam_c": pattern})
