"""Overlay videos: drawing (exact pixels) and written mp4s decoded back, with bad inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from bkind_model.errors import ConfigError, VideoNotFoundError, WriteError
from bkind_model.io.outputs import ExistingFileError, OutputIsInputError
from bkind_model.io.overlay import (
    OverlayError,
    draw_keypoints,
    keypoint_colors,
    skeleton_edges,
    write_overlay_video,
)
from bkind_model.io.results import KeypointResult
from bkind_model.io.video import open_video
from bkind_model.synthetic import SyntheticConfig, write_sample

GRAY = 128
N_FRAMES, HEIGHT, WIDTH, FPS = 24, 96, 128, 25.0
#: Three keypoints on a horizontal line, far apart: kp0 (blue) - kp1 (orange), kp2 alone.
POINTS = np.array([[24.0, 48.0], [72.0, 48.0], [104.0, 80.0]], np.float32)


def blank(height: int = 60, width: int = 80) -> np.ndarray:
    return np.full((height, width, 3), GRAY, np.uint8)


def pixel(frame: np.ndarray, x: float, y: float) -> np.ndarray:
    return frame[round(y), round(x)].astype(int)


def test_skeleton_line_has_its_first_keypoints_colour_between_the_keypoints():
    points = np.array([[10.0, 30.0], [60.0, 30.0]])
    drawn = draw_keypoints(blank(), points, radius=4, edges=[(0, 1)])
    plain = draw_keypoints(blank(), points, radius=4)
    assert (pixel(drawn, 35, 30) == keypoint_colors(2)[0]).all()
    assert (pixel(plain, 35, 30) == GRAY).all()
    assert (pixel(drawn, 35, 28) < 40).all()  # the dark rim beside the line
    hidden = draw_keypoints(blank(), points, radius=4, edges=[(0, 1)], visible=[True, False])
    assert (pixel(hidden, 35, 30) == GRAY).all()  # no edge to a keypoint below threshold
    assert (pixel(hidden, 60, 30) == 0).all()  # drawn hollow


def test_names_are_written_beside_their_keypoints():
    points = np.array([[10.0, 30.0]])
    named = draw_keypoints(blank(), points, radius=3, names=["nose"]).astype(int)
    plain = draw_keypoints(blank(), points, radius=3).astype(int)
    changed = np.abs(named - plain).sum(-1) > 0
    ys, xs = np.nonzero(changed)
    assert xs.min() > 10 + 3 and xs.max() < 10 + 3 + 40 and abs(ys.mean() - 30) < 4
    colour = keypoint_colors(1)[0].astype(int)
    assert (np.abs(named[changed] - colour).sum(-1) < 30).sum() > 10  # the text's fill
    assert (named[changed].max(-1) < 40).sum() > 10  # and its dark outline


def test_trails_fade_towards_the_past_and_skip_hidden_positions():
    trail = np.array([[[40.0, 5.0]], [[40.0, 15.0]], [[40.0, 25.0]]])
    drawn = draw_keypoints(blank(), np.array([[40.0, 35.0]]), trails=trail, radius=3).astype(int)
    colour = keypoint_colors(1)[0].astype(int)

    def strength(y: float) -> float:
        """How far the trail pixel at (40, y) went from gray towards the colour (0 to 1)."""
        return float(np.abs(pixel(drawn, 40, y) - GRAY).sum() / np.abs(colour - GRAY).sum())

    old, middle, recent = strength(10), strength(20), strength(30)
    assert 0.1 < old < middle < recent <= 1
    trail[1] = np.nan  # a position below threshold breaks the trail there
    broken = draw_keypoints(blank(), np.array([[40.0, 35.0]]), trails=trail, radius=3)
    assert (pixel(broken, 40, 10) == GRAY).all() and (pixel(broken, 40, 20) == GRAY).all()


def test_skeletons_by_names_indices_and_text():
    names = ["nose", "tail-base", "tail-tip"]
    assert skeleton_edges("nose-tail-base, tail-base-tail-tip", names) == [(0, 1), (1, 2)]
    assert skeleton_edges("0-2", names) == [(0, 2)]
    assert skeleton_edges([["nose", 2], (1, "tail-tip")], names) == [(0, 2), (1, 2)]
    assert skeleton_edges(None, names) == skeleton_edges("", names) == []
    with pytest.raises(ConfigError, match=r"'ear' is not one of the 3 keypoints \(nose, tail-b"):
        skeleton_edges("nose-ear", names)
    with pytest.raises(ConfigError, match="write two keypoints as a-b"):
        skeleton_edges("nose", names)
    with pytest.raises(ConfigError, match="7 is not one"):
        skeleton_edges([(0, 7)], names)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("overlay") / "mouse.mp4"
    config = SyntheticConfig(height=HEIGHT, width=WIDTH, n_frames=N_FRAMES, fps=FPS, seed=2)
    write_sample(path, config, with_masks=False)
    return path


def still_keypoints(video, n_frames: int = N_FRAMES, **metadata) -> KeypointResult:
    """Keypoints at :data:`POINTS` on every frame, named as given (``kp0`` ... otherwise)."""
    keypoints = np.repeat(POINTS[None], n_frames, axis=0)
    shape = keypoints.shape[:2]
    metadata = {"video_path": str(video), "fps": FPS, "frame_size": [HEIGHT, WIDTH]} | metadata
    return KeypointResult(keypoints, np.ones(shape), np.zeros((*shape, 2, 2)), metadata)


def nearer_to(colour, sample, source) -> bool:
    """Whether a decoded pixel is nearer to ``colour`` than to the source video's pixel."""
    sample, source = np.asarray(sample, int), np.asarray(source, int)
    return np.abs(sample - colour).sum() < np.abs(sample - source).sum()


def test_named_keypoints_overlay_keeps_frames_and_fps_and_draws_the_skeleton(video, tmp_path):
    result = still_keypoints(
        video, kind="named", keypoint_names=["nose", "neck", "tail"], skeleton=[["nose", "neck"]]
    )
    calls = []
    out = write_overlay_video(
        result, tmp_path / "named.mp4", radius=5, progress=lambda *a: calls.append(a)
    )
    written, source = open_video(out), open_video(video)
    assert (written.n_frames, written.fps) == (N_FRAMES, FPS)
    assert (written.height, written.width) == (HEIGHT, WIDTH)
    assert calls[-1] == (N_FRAMES, N_FRAMES) and len(calls) == N_FRAMES
    frame, original = written[10], source[10]
    blue = keypoint_colors(3)[0]
    assert nearer_to(blue, pixel(frame, 48, 48), pixel(original, 48, 48))  # on the edge
    assert nearer_to(keypoint_colors(3)[2], pixel(frame, 104, 80), pixel(original, 104, 80))
    label = np.abs(frame[40:56, 80:100].astype(int) - original[40:56, 80:100]).sum(-1)
    assert (label > 60).sum() > 10  # "neck" written right of kp1
    plain = write_overlay_video(result, tmp_path / "plain.mp4", names=False, skeleton="")
    still = np.abs(open_video(plain)[10][40:56, 80:100].astype(int) - original[40:56, 80:100])
    assert (still.sum(-1) > 60).sum() < 3
    assert not nearer_to(blue, pixel(open_video(plain)[10], 48, 48), pixel(original, 48, 48))


def test_frame_range_scale_and_likelihood(video, tmp_path):
    result = still_keypoints(video, skeleton=[["kp0", "kp1"]])
    result.likelihood = np.ones((N_FRAMES, 3), np.float32)
    result.likelihood[:, 1] = 0.2  # kp1 unsure: hollow, no edge
    np.testing.assert_array_equal(result.likelihoods(), result.likelihood)
    out = write_overlay_video(
        result, tmp_path / "part.mp4", start=5, stop=15, scale=0.5, min_likelihood=0.5, names=False
    )
    written = open_video(out)
    assert (written.n_frames, written.width, written.height) == (10, WIDTH // 2, HEIGHT // 2)
    small = np.asarray(Image.fromarray(open_video(video)[5]).resize((WIDTH // 2, HEIGHT // 2)))
    blue = keypoint_colors(3)[0]
    assert nearer_to(blue, pixel(written[0], 12, 24), pixel(small, 12, 24))  # kp0 at half size
    assert not nearer_to(blue, pixel(written[0], 24, 24), pixel(small, 24, 24))  # no edge


def test_odd_frame_sizes_are_padded_by_one_pixel(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((25, 33, 3), 90 + 10 * i, np.uint8)).save(folder / f"{i}.png")
    keypoints = np.full((3, 1, 2), 12.0, np.float32)
    result = KeypointResult(keypoints, np.ones((3, 1)), np.zeros((3, 1, 2, 2)))
    written = open_video(write_overlay_video(result, tmp_path / "odd.mp4", video=folder))
    assert (written.n_frames, written.width, written.height) == (3, 34, 26)


def test_results_of_another_video_are_refused(video, tmp_path):
    results = still_keypoints(video, n_frames=N_FRAMES - 4).save(tmp_path / "other.bkind.h5")
    with pytest.raises(OverlayError, match=r"other\.bkind\.h5: these keypoints are of another"):
        write_overlay_video(KeypointResult.load(results), tmp_path / "o.mp4")
    resized = still_keypoints(video, frame_size=[480, 640])
    with pytest.raises(OverlayError, match=r"640x480 px, while .*mouse\.mp4 has 24 frames"):
        write_overlay_video(resized, tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists()


def test_existing_files_and_inputs_are_never_replaced_unless_asked(video, tmp_path):
    result = still_keypoints(video)
    out = tmp_path / "overlay.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(ExistingFileError, match=r"overlay\.mp4: already exists.*--overwrite"):
        write_overlay_video(result, out)
    assert out.read_bytes() == b"precious"
    with pytest.raises(OutputIsInputError, match="input of this command"):
        write_overlay_video(result, video, overwrite=True)
    write_overlay_video(result, out, overwrite=True, stop=2)
    assert open_video(out).n_frames == 2


def test_a_missing_video_says_to_give_it(video, tmp_path):
    result = still_keypoints(tmp_path / "moved.mp4")
    with pytest.raises(VideoNotFoundError, match=r"moved\.mp4: the video of .*--video VIDEO"):
        write_overlay_video(result, tmp_path / "o.mp4")
    with pytest.raises(ConfigError, match="choose 0 <= start < stop <= 24"):
        write_overlay_video(still_keypoints(video), tmp_path / "o.mp4", start=20, stop=20)


def test_cancel_and_unwritable_folders_leave_no_file(video, tmp_path):
    def cancel(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    out = tmp_path / "cancelled.mp4"
    with pytest.raises(KeyboardInterrupt):
        write_overlay_video(still_keypoints(video), out, progress=cancel)
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]  # the frame index only
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(WriteError, match="output folder"):
        write_overlay_video(still_keypoints(video), tmp_path / "file" / "o.mp4")


@pytest.mark.skipif(os.geteuid() == 0, reason="the superuser can write into read-only folders")
def test_read_only_folder(video, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(WriteError, match="locked"):
            write_overlay_video(still_keypoints(video), folder / "o.mp4")
    finally:
        folder.chmod(0o755)
