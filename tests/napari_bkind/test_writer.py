"""Writers: keypoint layers to DeepLabCut files (read back as DeepLabCut does) and results."""

import numpy as np
import pandas as pd
import pytest
from napari.layers import Layer

from bkind_model.io.results import KeypointResult
from napari_bkind._layers import KeypointLayerError, result_layers


@pytest.fixture
def keypoints(results, plugins):
    """The results' keypoint Points layer."""
    data, kwargs, kind = result_layers(KeypointResult.load(results), results)[0]
    return Layer.create(data, kwargs, kind)


def _expected(results) -> np.ndarray:
    return KeypointResult.load(results).keypoints


@pytest.mark.slow
def test_dlc_h5_reads_back_with_pandas_as_deeplabcut_does(keypoints, results, tmp_path):
    path = tmp_path / "mouse_predictions.h5"
    keypoints.save(str(path), plugin="napari-bkind")
    frame = pd.read_hdf(path)
    assert frame.columns.names == ["scorer", "bodyparts", "coords"]
    assert list(frame.columns.get_level_values("bodyparts").unique()) == [
        "kp0",
        "kp1",
        "kp2",
        "kp3",
    ]
    assert list(frame.index) == list(range(60))
    expected = _expected(results)
    np.testing.assert_allclose(frame.xs("x", axis=1, level="coords").to_numpy(), expected[..., 0])
    np.testing.assert_allclose(frame.xs("y", axis=1, level="coords").to_numpy(), expected[..., 1])
    likelihood = frame.xs("likelihood", axis=1, level="coords").to_numpy()
    assert ((likelihood >= 0) & (likelihood <= 1)).all()


@pytest.mark.slow
def test_dlc_csv_reads_back_with_three_header_rows(keypoints, results, tmp_path):
    path = tmp_path / "mouse_predictions.csv"
    keypoints.save(str(path), plugin="napari-bkind")
    frame = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    assert frame.columns.names == ["scorer", "bodyparts", "coords"]
    assert frame.shape == (60, 12)
    np.testing.assert_allclose(
        frame.xs("x", axis=1, level="coords").to_numpy(), _expected(results)[..., 0], rtol=1e-6
    )


def test_saving_over_an_existing_file_replaces_it_whole(keypoints, tmp_path):
    path = tmp_path / "mouse_predictions.h5"
    keypoints.save(str(path), plugin="napari-bkind")
    keypoints.data = keypoints.data + np.array([0, 1.0, 2.0])
    keypoints.save(str(path), plugin="napari-bkind")
    frame = pd.read_hdf(path)
    first = frame.xs(("kp0", "x"), axis=1, level=("bodyparts", "coords")).to_numpy()[0, 0]
    assert first == pytest.approx(keypoints.data[0, 2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mouse_predictions.h5"]


@pytest.mark.slow
def test_results_round_trip_keeps_keypoints_and_heatmaps(keypoints, results, tmp_path):
    path = tmp_path / "edited.bkind.h5"
    keypoints.save(str(path), plugin="napari-bkind")
    again = KeypointResult.load(path, heatmaps=True)
    original = KeypointResult.load(results, heatmaps=True)
    np.testing.assert_allclose(again.keypoints, original.keypoints)
    np.testing.assert_allclose(again.confidence, original.confidence)
    np.testing.assert_allclose(again.covariance, original.covariance, rtol=1e-6)
    np.testing.assert_array_equal(again.heatmaps, original.heatmaps)
    assert again.metadata["video_path"] == original.metadata["video_path"]


def test_a_points_layer_without_keypoint_names_is_refused(tmp_path, plugins):
    layer = Layer.create(np.zeros((2, 3)), {}, "points")
    with pytest.raises(KeypointLayerError, match="keypoint"):
        layer.save(str(tmp_path / "x.csv"), plugin="napari-bkind")
    assert not list(tmp_path.iterdir())
