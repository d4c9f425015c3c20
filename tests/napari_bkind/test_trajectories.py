"""Trajectory layers of long results hold only the frames around the viewed one."""

import napari
import numpy as np
from napari.layers import Tracks

from bkind_model.io.results import KeypointResult
from napari_bkind._palette import rgba
from napari_bkind._trajectories import MARGIN_FRAMES, WINDOW_KEY, follow_viewed_frames

N_FRAMES, N_KEYPOINTS = 5000, 3


def _long_results(folder):
    rng = np.random.default_rng(0)
    shape = (N_FRAMES, N_KEYPOINTS)
    keypoints = rng.uniform(0, 100, (*shape, 2)).astype(np.float32)
    keypoints[1234, 1] = np.nan  # a keypoint missing on one frame
    covariance = np.broadcast_to(np.eye(2, dtype=np.float32), (*shape, 2, 2))
    found = KeypointResult(keypoints, np.ones(shape, np.float32), covariance, {"fps": 30.0})
    return found.save(folder / "long.bkind.h5"), keypoints


def _frames(tracks: Tracks) -> np.ndarray:
    return np.unique(tracks.data[:, 1]).astype(int)


def test_trajectories_follow_the_viewed_frame(viewer, plugins, tmp_path, qtbot):
    path, keypoints = _long_results(tmp_path)
    if not isinstance(viewer, napari.Viewer):  # the reader finds napari windows by itself
        follow_viewed_frames(viewer)
    viewer.open(str(path), plugin="napari-bkind")
    tracks = next(layer for layer in viewer.layers if isinstance(layer, Tracks))
    assert len(_frames(tracks)) < N_FRAMES / 2  # a window, not the whole video

    for frame in (1240, 4990, 2000):
        viewer.dims.set_current_step(0, frame)
        frames = _frames(tracks)
        assert frames.min() <= frame - tracks.tail_length and frame in frames
        start, stop = tracks.metadata[WINDOW_KEY]
        assert stop - start <= 2 * (tracks.tail_length + MARGIN_FRAMES) + 1
    # the positions and colours of the window are those of the keypoints
    viewer.dims.set_current_step(0, 1240)
    rows = tracks.data[:, 1] == 1234
    assert sorted(tracks.data[rows, 0]) == [0, 2]  # keypoint 1 missing there
    row = np.nonzero((tracks.data[:, 0] == 2) & (tracks.data[:, 1] == 1240))[0][0]
    assert np.allclose(tracks.data[row, 2:], keypoints[1240, 2, ::-1])
    assert np.allclose(tracks.track_colors[row], rgba(N_KEYPOINTS)[2])

    tracks.tail_length = 1500  # a longer trail widens the window
    assert _frames(tracks).min() == 0
    viewer.dims.set_current_step(0, 4000)
    assert _frames(tracks).min() <= 4000 - 1500
