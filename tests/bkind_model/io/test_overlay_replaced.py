"""An overlay refuses a video that is not the one the keypoints were found in.

Results record their video's frame count, size, rate and a fingerprint (thumbnails of a
few frames); a re-encoded copy of the video still fits, another recording of the same
size and length, or the same frames re-timed, does not.
"""

from __future__ import annotations

import numpy as np
import pytest

from bkind_model.io.overlay import OverlayError, write_overlay_video
from bkind_model.io.results import KeypointResult, video_fingerprint
from bkind_model.io.video import open_video
from bkind_model.io.video_writer import write_video
from bkind_model.synthetic import SyntheticConfig, write_sample

N_FRAMES, HEIGHT, WIDTH, FPS = 24, 96, 128, 25.0


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """The recorded video, a re-encoded copy, another recording and a re-timed copy."""
    folder = tmp_path_factory.mktemp("replaced")
    paths = {name: folder / f"{name}.mp4" for name in ("mouse", "other")}
    for seed, path in enumerate(paths.values()):
        config = SyntheticConfig(height=HEIGHT, width=WIDTH, n_frames=N_FRAMES, fps=FPS, seed=seed)
        write_sample(path, config, with_masks=False)
    with open_video(paths["mouse"]) as source:
        frames = source.read(0, N_FRAMES)
    paths["reencoded"] = write_video(folder / "reencoded.mp4", frames, FPS, crf=32)
    paths["retimed"] = write_video(folder / "retimed.mp4", frames, 5.0)
    return paths


def _result(video, fingerprint: bool = True) -> KeypointResult:
    shape = (N_FRAMES, 2)
    metadata = {"video_path": str(video), "fps": FPS, "frame_size": [HEIGHT, WIDTH]}
    if fingerprint:
        with open_video(video) as source:
            metadata["video_fingerprint"] = video_fingerprint(source)
    keypoints = np.full((*shape, 2), 40.0, np.float32)
    return KeypointResult(keypoints, np.ones(shape), np.zeros((*shape, 2, 2)), metadata)


def _mismatch(result: KeypointResult, video) -> str | None:
    with open_video(video) as source:
        return result.video_mismatch(source)


def test_the_recorded_video_and_a_reencoded_copy_fit(videos):
    result = _result(videos["mouse"])
    assert _mismatch(result, videos["mouse"]) is None
    assert _mismatch(result, videos["reencoded"]) is None


def test_a_video_replaced_by_another_of_the_same_size_and_length_is_refused(videos, tmp_path):
    path = _result(videos["mouse"]).save(tmp_path / "mouse.bkind.h5")
    videos["mouse"].with_name("swap.mp4").write_bytes(videos["other"].read_bytes())
    result = KeypointResult.load(path)
    result.metadata["video_path"] = str(videos["mouse"].with_name("swap.mp4"))
    out = tmp_path / "o.mp4"
    with pytest.raises(OverlayError, match="other pictures") as caught:
        write_overlay_video(result, out, stop=2)
    assert str(caught.value).startswith(f"{path}: these keypoints are of another video: ")
    assert "swap.mp4" in str(caught.value) and not out.exists()


def test_a_retimed_video_is_refused_naming_both_rates(videos):
    problem = _mismatch(_result(videos["mouse"]), videos["retimed"])
    assert problem is not None and "at 25 frames/s" in problem and "5 frames/s" in problem


def test_results_without_a_fingerprint_skip_the_picture_check(videos, tmp_path):
    result = _result(videos["mouse"], fingerprint=False)
    assert _mismatch(result, videos["other"]) is None
    written = write_overlay_video(result, tmp_path / "o.mp4", video=videos["other"], stop=2)
    assert open_video(written).n_frames == 2
