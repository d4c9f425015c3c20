"""The reader: videos, results files (with and without their video), foreign h5 files."""

import shutil

import numpy as np
import pandas as pd
import pytest

from bkind_model.frames.letterbox import Letterbox
from bkind_model.io.results import KeypointResult, ResultsWriter
from bkind_model.model.keypoints import normalised_grid
from napari_bkind import _reader
from napari_bkind._layers import HeatmapFrames


def test_video_opens_as_a_lazy_rgb_layer_time_first(video):
    reader = _reader.get_reader(str(video))
    [(data, kwargs, kind)] = reader(str(video))
    assert kind == "image" and kwargs["rgb"]
    assert data.shape == (60, 128, 128, 3)
    assert kwargs["metadata"]["n_frames"] == 60 and kwargs["metadata"]["fps"] == 30.0
    assert np.asarray(data[7]).std() > 0


@pytest.mark.slow
def test_results_open_with_their_video_keypoints_trajectories_and_heatmaps(results):
    reader = _reader.get_reader(str(results))
    layers = reader(str(results))
    kinds = [kind for _, _, kind in layers]
    assert kinds == ["image", "points", "tracks", "image"]
    (video, _, _), (points, pkw, _), (tracks, _, _), (maps, _, _) = layers
    assert video.shape == (60, 128, 128, 3)
    assert points.shape == (60 * 4, 3)  # (frame, y, x) for every keypoint and frame
    assert list(pkw["features"]["keypoint"].cat.categories) == ["kp0", "kp1", "kp2", "kp3"]
    assert pkw["face_color"] == "keypoint" and len(pkw["face_color_cycle"]) == 4
    assert {"likelihood", "confidence"} <= set(pkw["features"])
    assert tracks.shape == (240, 4) and set(tracks[:, 0]) == {0, 1, 2, 3}
    assert maps.shape == (60, 128, 128)
    frame = np.asarray(maps[5])
    assert 0.9 < frame.max() <= 1.0 and frame.min() >= 0
    result = KeypointResult.load(results)
    np.testing.assert_allclose(points[:4, [2, 1]], result.keypoints[0], rtol=1e-6)


@pytest.mark.slow
def test_results_whose_video_is_missing_show_keypoints_with_a_warning(
    results, tmp_path, monkeypatch
):
    moved = tmp_path / "elsewhere.bkind.h5"
    shutil.copy(results, moved)
    result = KeypointResult.load(moved)
    result.metadata["video_path"] = str(tmp_path / "gone.mp4")
    result.save(moved)
    warnings = []
    monkeypatch.setattr(_reader, "show_warning", warnings.append)
    layers = _reader.get_reader(str(moved))(str(moved))
    assert [kind for _, _, kind in layers] == ["points", "tracks"]
    assert len(warnings) == 1 and "gone.mp4" in warnings[0]


def test_foreign_h5_files_are_left_to_other_readers(tmp_path):
    columns = pd.MultiIndex.from_product(
        [["DLC"], ["snout"], ["x", "y", "likelihood"]], names=["scorer", "bodyparts", "coords"]
    )
    path = tmp_path / "CollectedData_me.h5"
    pd.DataFrame(np.zeros((2, 3)), columns=columns).to_hdf(path, key="df_with_missing")
    assert _reader.get_reader(str(path)) is None
    (tmp_path / "text.h5").write_text("not hdf5")
    assert _reader.get_reader(str(tmp_path / "text.h5")) is None


def test_heatmaps_are_placed_on_the_video_through_each_frame_window(tmp_path):
    box = Letterbox.crop((100, 120), 40.0, 32)  # 32x32 input windows, stride 4 -> 8x8 maps
    metadata = {"checkpoint_sha256": "x", "video_path": "v.mp4", "letterbox": box.to_dict()}
    writer = ResultsWriter(tmp_path / "r.h5", 2, 1, metadata, heatmap_size=(8, 8))
    maps = np.zeros((2, 1, 8, 8), np.float16)
    maps[0, 0, 2, 5] = maps[1, 0, 6, 1] = 1.0
    windows = np.array([[10.0, 20.0], [50.0, 5.0]], np.float32)
    zeros = np.zeros((2, 1, 2))
    writer.write(0, zeros, zeros[..., 0], np.zeros((2, 1, 2, 2)), maps, windows)
    writer.finish()
    frames = HeatmapFrames(tmp_path / "r.h5", box.to_dict())
    xs, ys = normalised_grid(8, 8)
    for t, (row, col) in enumerate([(2, 5), (6, 1)]):
        uv = np.array([[float(xs[col]), float(ys[row])]])
        x, y = box.to_source(uv, windows[t][None])[0]
        shown = frames[t]
        assert shown.shape == (100, 120)
        peak = np.unravel_index(np.argmax(shown), shown.shape)
        assert abs(peak[0] - y) <= 1 and abs(peak[1] - x) <= 1


def test_a_damaged_results_file_says_what_is_wrong(tmp_path):
    from bkind_model.io.results import ResultsError

    damaged = tmp_path / "mouse.bkind.h5"
    damaged.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # an HDF5 signature, then nothing
    reader = _reader.get_reader(str(damaged))
    assert reader is not None  # ours by name, so our reader explains the damage
    with pytest.raises(ResultsError, match=r"mouse\.bkind\.h5: cannot read .*damaged"):
        reader(str(damaged))
    foreign = tmp_path / "other.h5"
    foreign.write_bytes(b"not hdf5")
    assert _reader.get_reader(str(foreign)) is None  # someone else's file: not ours to refuse
