"""Layers and files that cross: napari's reader choice, napari-deeplabcut's layers, hand edits."""

import warnings

import numpy as np
import pandas as pd
import pytest
from napari.layers import Image, Layer
from napari.plugins._npe2 import get_readers
from napari.plugins.io import save_layers
from napari.settings import get_settings
from npe2 import PluginManager

from bkind_model.io.results import KeypointResult
from napari_bkind._layers import points_to_result, result_layers
from napari_bkind._session import video_layers


@pytest.fixture
def keypoints(results, plugins):
    data, kwargs, kind = result_layers(KeypointResult.load(results), results)[0]
    return Layer.create(data, kwargs, kind)


def test_our_reader_claims_only_our_results_among_h5_files(results, tmp_path, plugins):
    other = tmp_path / "CollectedData_me.h5"
    pd.DataFrame({"a": [1.0]}).to_hdf(other, key="df_with_missing")
    assert "napari-bkind" not in get_readers(str(other))
    assert "napari-bkind" in get_readers(str(results))


def test_a_remembered_choice_opens_results_without_asking(results, viewer):
    """napari's built-in reader also claims *.h5: the choice napari remembers settles it."""
    settings = get_settings().plugins
    before = dict(settings.extension2reader)
    settings.extension2reader = before | {"*.bkind.h5": "napari-bkind"}
    try:
        viewer.open(str(results), plugin=None)  # as the GUI does: napari chooses
    finally:
        settings.extension2reader = before
    assert "mouse.bkind keypoints" in [layer.name for layer in viewer.layers]


def test_results_are_saved_by_our_writer_whatever_else_claims_h5(keypoints, tmp_path):
    writer, _ = PluginManager.instance().get_writer(str(tmp_path / "x.bkind.h5"), ["points"])
    assert writer.command == "napari-bkind.write_results"
    keypoints.save(str(tmp_path / "x.bkind.h5"))
    again = KeypointResult.load(tmp_path / "x.bkind.h5")
    np.testing.assert_allclose(
        again.likelihood, keypoints.features["likelihood"].to_numpy().reshape(60, 4), atol=1e-6
    )


def test_a_point_added_by_hand_has_no_confidence_and_its_keypoints_colour(keypoints, tmp_path):
    colour_of_kp2 = keypoints.face_color[2].copy()
    keypoints.feature_defaults["keypoint"] = "kp2"
    keypoints.add(np.array([[3.0, 10.0, 10.0]]))
    added = keypoints.features.iloc[-1]
    assert added["keypoint"] == "kp2"
    assert np.isnan(added["confidence"]) and np.isnan(added["likelihood"])
    assert np.isnan(added["cov_xx"])
    np.testing.assert_allclose(keypoints.face_color[-1], colour_of_kp2)
    keypoints.data = keypoints.data[:-1]  # back to one point per keypoint and frame
    keypoints.selected_data = set()


def test_a_napari_deeplabcut_layer_saves_through_our_writer(tmp_path, plugins):
    """napari-deeplabcut's layers name bodyparts in a 'label' feature, with 'id', 'likelihood'."""
    data = np.array([[0, 10.0, 20.0], [0, 30.0, 40.0], [2, 11.0, 21.0]])
    features = pd.DataFrame(
        {
            "label": pd.Categorical(["snout", "tail", "snout"]),
            "id": ["", "", ""],
            "likelihood": [1.0, 1.0, np.nan],
            "valid": [True, True, True],
        }
    )
    layer = Layer.create(data, {"features": features, "name": "CollectedData_me"}, "points")
    out = tmp_path / "labelsDLC_bkind.h5"
    layer.save(str(out), plugin="napari-bkind")
    table = pd.read_hdf(out, "df_with_missing")
    assert table.columns.get_level_values("bodyparts").unique().tolist() == ["snout", "tail"]
    assert table.loc[0, ("bkind", "snout", "x")] == 20.0
    assert table.loc[2, ("bkind", "snout", "likelihood")] == 1.0  # placed by hand
    assert np.isnan(table.loc[1, ("bkind", "snout", "x")])


def test_points_to_result_reads_a_label_layer_as_keypoints():
    features = pd.DataFrame({"label": ["a", "b"]})
    result = points_to_result(np.array([[0, 1.0, 2.0], [1, 3.0, 4.0]]), {"features": features})
    assert result.keypoint_names == ["a", "b"]
    assert result.keypoints.shape == (2, 2, 2)
    assert np.isnan(result.keypoints[0, 1]).all()


def test_scripts_open_a_video_and_its_results_with_our_reader_named(video, results, viewer):
    """viewer.open(...) alone takes napari's built-in reader; plugin="napari-bkind" is ours."""
    viewer.open(str(video), plugin="napari-bkind")
    [shown] = viewer.layers
    assert shown.metadata["n_frames"] == 60 and shown.data.shape == (60, 128, 128, 3)
    assert viewer.dims.axis_labels[0] == "frame"
    viewer.open(str(results), plugin="napari-bkind")
    images = [layer.name for layer in viewer.layers if isinstance(layer, Image)]
    assert images == ["mouse", "mouse.bkind heatmaps"]  # the open video is reused
    assert "mouse.bkind keypoints" in viewer.layers


def test_results_reuse_a_video_another_reader_opened(video, results, viewer):
    viewer.open(str(video), plugin="napari")  # napari's built-in reader: no metadata of ours
    viewer.open(str(results), plugin="napari-bkind")
    [shown] = [layer for layer in viewer.layers if getattr(layer, "rgb", False)]
    assert shown.metadata["bkind_source"] == str(video) and shown.metadata["n_frames"] == 60
    assert video_layers(viewer) == [shown]  # the widgets now list it as the video


@pytest.mark.parametrize("suffix", [".h5", ".csv"])
def test_the_save_dialogs_deeplabcut_filter_writes_deeplabcut_files(keypoints, tmp_path, suffix):
    """napari-deeplabcut's writer (*.h5) and napari's (*.csv) also claim these names: napari
    takes the first it finds for a bare name, so the save dialog's filter picks ours."""
    from napari._qt.qt_viewer import _npe2_decode_selected_filter
    from napari.plugins._npe2 import file_extensions_string_for_layers

    filters, writers = file_extensions_string_for_layers([keypoints])
    chosen = f"B-KinD keypoint discovery DeepLabCut predictions (*{suffix})"
    assert chosen in filters.split(";;")
    writer = _npe2_decode_selected_filter(filters, chosen, writers)
    out = tmp_path / f"x{suffix}"
    [written] = save_layers(str(out), [keypoints], _writer=writer)  # as the dialog saves
    if suffix == ".h5":
        frame = pd.read_hdf(written)
    else:
        frame = pd.read_csv(written, header=[0, 1, 2], index_col=0)
    assert frame.columns.names == ["scorer", "bodyparts", "coords"]
    x = frame.xs("x", axis=1, level="coords").to_numpy()
    np.testing.assert_allclose(x.reshape(-1), keypoints.data[:, 2], rtol=1e-6)


def test_a_bare_h5_name_never_loses_the_layer_silently(keypoints, tmp_path):
    """Whichever *.h5 writer napari takes, the layer is written as DeepLabCut or napari says
    that nothing was (napari-deeplabcut's writer refuses layers it did not make)."""
    out = tmp_path / "x.h5"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = keypoints.save(str(out))
    if written:
        assert pd.read_hdf(out).columns.names == ["scorer", "bodyparts", "coords"]
    else:
        assert any("No data written" in str(w.message) for w in caught)
        assert not list(tmp_path.iterdir())
