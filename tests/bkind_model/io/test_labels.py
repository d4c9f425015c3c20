"""DeepLabCut labels files: every layout is read, every other file refused in one line.

The files are written with pandas exactly as DeepLabCut (and napari-deeplabcut) write them.
"""

import logging

import h5py
import numpy as np
import pandas as pd
import pytest

from bkind_model.io.labels import Labels, LabelsError, labels_from_joints, load_labels

BODYPARTS = ["snout", "mid", "tailbase"]
IMAGES = [f"labeled-data/vid/img{i:03d}.png" for i in range(6)]


def _joints(n=6, n_joints=3, seed=0):
    """``(n, J, 2)`` px with a few missing labels."""
    joints = np.random.default_rng(seed).uniform(10, 200, size=(n, n_joints, 2)).round(2)
    joints[1, 0] = np.nan
    joints[4, 2] = np.nan
    return joints


def _dlc_frame(joints, bodyparts=BODYPARTS, index=IMAGES, individuals=None, likelihood=False):
    """A DataFrame laid out like DeepLabCut's ``CollectedData_*`` / prediction files."""
    coords = ["x", "y", "likelihood"] if likelihood else ["x", "y"]
    n = len(joints)
    if individuals is None:
        columns = pd.MultiIndex.from_product(
            [["Alex"], bodyparts, coords], names=["scorer", "bodyparts", "coords"]
        )
        blocks = [joints]
    else:
        columns = pd.MultiIndex.from_product(
            [["Alex"], individuals, bodyparts, coords],
            names=["scorer", "individuals", "bodyparts", "coords"],
        )
        blocks = [joints + 100 * i for i in range(len(individuals))]
    parts = []
    for block in blocks:
        if likelihood:
            block = np.concatenate([block, np.full((n, block.shape[1], 1), 0.9)], axis=-1)
        parts.append(block.reshape(n, -1))
    return pd.DataFrame(np.concatenate(parts, axis=1), index=index[:n], columns=columns)


def _three_column_index(frame):
    """DeepLabCut >= 2.2: the image path as (labeled-data, video, image)."""
    frame = frame.copy()
    frame.index = pd.MultiIndex.from_tuples([tuple(i.split("/")) for i in frame.index])
    return frame


def _refused(path, **kwargs):
    """The one-line LabelsError that ``load_labels(path)`` raises."""
    with pytest.raises(LabelsError) as info:
        load_labels(path, **kwargs)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return info.value


def _assert_read(labels, joints, names=BODYPARTS, frames=IMAGES):
    assert isinstance(labels, Labels)
    assert labels.names == names
    assert labels.frames == frames[: len(joints)]
    np.testing.assert_allclose(labels.joints, joints, equal_nan=True)
    assert np.isnan(labels.joints[1, 0]).all() and np.isnan(labels.joints[4, 2]).all()


# --- every layout is read -----------------------------------------------------------------


def test_single_animal_h5_and_csv(tmp_path):
    joints = _joints()
    frame = _dlc_frame(joints)
    frame.to_hdf(tmp_path / "CollectedData_Alex.h5", key="df_with_missing", format="table")
    frame.to_csv(tmp_path / "CollectedData_Alex.csv")
    for name in ("CollectedData_Alex.h5", "CollectedData_Alex.csv"):
        _assert_read(load_labels(tmp_path / name), joints)


def test_h5_under_any_key(tmp_path):
    joints = _joints()
    _dlc_frame(joints).to_hdf(tmp_path / "napari.h5", key="keypoints")  # napari-deeplabcut
    _dlc_frame(joints).to_hdf(tmp_path / "other.h5", key="labels", format="table")
    _assert_read(load_labels(tmp_path / "napari.h5"), joints)
    _assert_read(load_labels(tmp_path / "other.h5"), joints)


def test_dlc22_three_column_index_csv_and_h5(tmp_path):
    joints = _joints()
    frame = _three_column_index(_dlc_frame(joints))
    frame.to_csv(tmp_path / "CollectedData_Alex.csv")
    # pandas cannot write a row MultiIndex with MultiIndex columns as a table: DeepLabCut
    # >= 2.2 writes the fixed format.
    frame.to_hdf(tmp_path / "CollectedData_Alex.h5", key="df_with_missing")
    text = (tmp_path / "CollectedData_Alex.csv").read_text().splitlines()
    assert text[0].startswith("scorer,,,Alex") and text[3].startswith("labeled-data,vid,")
    for name in ("CollectedData_Alex.csv", "CollectedData_Alex.h5"):
        _assert_read(load_labels(tmp_path / name), joints)


@pytest.mark.parametrize("individuals", [["mouse1"], ["mouse1", "single"]])
def test_multi_animal_with_one_animal(tmp_path, individuals):
    joints = _joints()
    frame = _dlc_frame(joints, individuals=individuals)
    frame.to_hdf(tmp_path / "ma.h5", key="df_with_missing", format="table")
    _three_column_index(frame).to_csv(tmp_path / "ma.csv")
    for name in ("ma.h5", "ma.csv"):
        _assert_read(load_labels(tmp_path / name), joints)  # "single" (unique parts) left out


def test_prediction_files_use_x_and_y_only(tmp_path):
    joints = _joints()
    frames = [str(i) for i in range(len(joints))]
    frame = _dlc_frame(joints, index=list(range(len(joints))), likelihood=True)
    frame.to_hdf(tmp_path / "videoDLC_resnet50.h5", key="df_with_missing", format="table")
    frame.to_csv(tmp_path / "videoDLC_resnet50.csv")
    ma = _dlc_frame(joints, index=list(range(len(joints))), individuals=["m1"], likelihood=True)
    ma.to_csv(tmp_path / "ma_pred.csv")
    for name in ("videoDLC_resnet50.h5", "videoDLC_resnet50.csv", "ma_pred.csv"):
        _assert_read(load_labels(tmp_path / name), joints, frames=frames)


def test_csv_index_names_row_is_not_a_frame_but_an_unlabelled_frame_is(tmp_path):
    joints = _joints()
    joints[0] = np.nan  # the first image has no label at all: still a frame
    named = _dlc_frame(joints)
    named.index.name = "image"  # pandas then writes a row "image,,,,,,"
    named.to_csv(tmp_path / "named.csv")
    assert (tmp_path / "named.csv").read_text().splitlines()[3].startswith("image,,")
    _dlc_frame(joints).to_csv(tmp_path / "plain.csv")
    for name in ("named.csv", "plain.csv"):
        labels = load_labels(tmp_path / name)
        assert labels.frames == IMAGES and np.isnan(labels.joints[0]).all()


def test_a_never_labelled_bodypart_is_kept_and_reported(tmp_path, caplog):
    joints = _joints()
    joints[:, 1] = np.nan
    _dlc_frame(joints).to_csv(tmp_path / "c.csv")
    with caplog.at_level(logging.WARNING, logger="bkind_model.io.labels"):
        labels = load_labels(tmp_path / "c.csv")
    assert labels.names == BODYPARTS and np.isnan(labels.joints[:, 1]).all()
    assert labels.unlabelled == ["mid"]
    assert labels.missing_per_joint == {"snout": 1, "mid": 6, "tailbase": 1}
    assert "mid" in caplog.text and "c.csv" in caplog.text


def test_body_length_is_the_median_over_frames_labelling_both_axis_joints(tmp_path):
    joints = np.zeros((4, 3, 2))
    joints[:, 2, 0] = [10.0, 20.0, 30.0, 1000.0]  # tailbase at (d, 0), snout at the origin
    joints[3, 0] = np.nan  # the 1000 px frame has no snout: not counted
    joints[0, 1] = np.nan
    _dlc_frame(joints).to_csv(tmp_path / "c.csv")
    assert load_labels(tmp_path / "c.csv").body_length == pytest.approx(20.0)
    axis = load_labels(tmp_path / "c.csv", body_axis=("mid", "tailbase"))
    assert axis.body_length == pytest.approx(30.0)  # frames 1..3: 20, 30, 1000


def test_default_body_axis_skips_an_unlabelled_tail():
    joints = _joints(n_joints=4)
    joints[:, 3] = np.nan
    labels = labels_from_joints(joints, ["snout", "a", "b", "tailbase"], IMAGES)
    both = ~np.isnan(joints[:, [0, 2], 0]).any(axis=1)
    expected = np.median(np.linalg.norm(joints[both, 0] - joints[both, 2], axis=-1))
    assert labels.body_length == pytest.approx(expected)  # snout to b, the last labelled


def test_half_a_label_is_a_missing_label():
    joints = _joints()
    joints[2, 1, 0] = np.nan  # x missing, y present
    labels = labels_from_joints(joints, BODYPARTS, IMAGES)
    assert np.isnan(labels.joints[2, 1]).all()
    assert not np.isnan(joints[2, 1, 1])  # the caller's array is not changed


# --- everything else is refused in one line ----------------------------------------------


def test_missing_file_folder_and_unknown_suffix(tmp_path):
    _refused(tmp_path / "CollectedData_nobody.h5")
    _refused(tmp_path)
    (tmp_path / "labels.json").write_text("{}")
    assert "'.json'" in str(_refused(tmp_path / "labels.json"))


def test_garbage_h5_files(tmp_path):
    (tmp_path / "random.h5").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "empty.h5").write_bytes(b"")
    (tmp_path / "text.h5").write_text("scorer,Alex\n")
    with h5py.File(tmp_path / "h5py.h5", "w") as f:
        f["keypoints"] = np.zeros((3, 2))
    pd.DataFrame({"a": [1.0, 2.0]}).to_hdf(tmp_path / "table.h5", key="df", format="table")
    pd.Series([1.0, 2.0]).to_hdf(tmp_path / "series.h5", key="s")
    error = _refused(tmp_path / "random.h5")
    assert error.__cause__ is not None  # re-raised from the HDF5 error
    for name in ("empty.h5", "text.h5", "h5py.h5", "table.h5", "series.h5"):
        _refused(tmp_path / name)


def test_garbage_and_empty_csv(tmp_path):
    (tmp_path / "random.csv").write_bytes(np.random.default_rng(1).bytes(4096))
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "blank.csv").write_text("\n\n  \n")
    (tmp_path / "plain.csv").write_text("a,b,c\n1,2,3\n")
    for name in ("random.csv", "empty.csv", "blank.csv", "plain.csv"):
        _refused(tmp_path / name)


def test_csv_with_too_few_header_rows(tmp_path):
    _dlc_frame(_joints()).to_csv(tmp_path / "full.csv")
    lines = (tmp_path / "full.csv").read_text().splitlines()
    (tmp_path / "two.csv").write_text("\n".join(lines[:2] + lines[3:]) + "\n")  # no coords
    (tmp_path / "none.csv").write_text("\n".join(lines[3:]) + "\n")
    assert "scorer, bodyparts, coords" in str(_refused(tmp_path / "two.csv"))
    _refused(tmp_path / "none.csv")


def test_csv_with_bad_cells(tmp_path):
    _dlc_frame(_joints()).to_csv(tmp_path / "full.csv")
    lines = (tmp_path / "full.csv").read_text().splitlines()
    cells = lines[3].split(",")
    cells[2] = "oops"
    (tmp_path / "word.csv").write_text("\n".join([*lines[:3], ",".join(cells), *lines[4:]]))
    (tmp_path / "ragged.csv").write_text("\n".join([*lines[:4], lines[4] + ",7"]) + "\n")
    (tmp_path / "cut.csv").write_text("\n".join([*lines[:4], lines[4][:35]]) + "\n")
    message = str(_refused(tmp_path / "word.csv"))
    assert "oops" in message and "line 4" in message
    for name in ("ragged.csv", "cut.csv"):
        assert "line 5" in str(_refused(tmp_path / name))


def test_files_without_bodyparts(tmp_path):
    (tmp_path / "none.csv").write_text("scorer\nbodyparts\ncoords\nlabeled-data/v/a.png\n")
    columns = pd.MultiIndex.from_arrays([[], [], []], names=["scorer", "bodyparts", "coords"])
    empty = pd.DataFrame(np.zeros((2, 0)), index=IMAGES[:2], columns=columns)
    empty.to_hdf(tmp_path / "none.h5", key="df_with_missing")
    no_rows = _dlc_frame(_joints()).iloc[:0]
    no_rows.to_csv(tmp_path / "no_rows.csv")
    for name in ("none.csv", "none.h5", "no_rows.csv"):
        _refused(tmp_path / name)


def test_a_bodypart_without_y(tmp_path):
    frame = _dlc_frame(_joints()).drop(columns=("Alex", "mid", "y"))
    frame.to_csv(tmp_path / "c.csv")
    assert "mid" in str(_refused(tmp_path / "c.csv"))


def test_several_animals_are_refused_by_name(tmp_path):
    frame = _dlc_frame(_joints(), individuals=["mouse1", "mouse2", "single"])
    frame.to_hdf(tmp_path / "ma.h5", key="df_with_missing", format="table")
    frame.to_csv(tmp_path / "ma.csv")
    for name in ("ma.h5", "ma.csv"):
        message = str(_refused(tmp_path / name))
        assert "mouse1" in message and "mouse2" in message
        assert "one animal" in message and "export one individual" in message


def test_several_scorers_are_refused(tmp_path):
    a = _dlc_frame(_joints())
    b = a.rename(columns={"Alex": "Bea"}, level="scorer")
    pd.concat([a, b], axis=1).to_csv(tmp_path / "two.csv")
    assert "Bea" in str(_refused(tmp_path / "two.csv"))


def test_body_axis_joints_not_in_the_file(tmp_path):
    _dlc_frame(_joints()).to_csv(tmp_path / "c.csv")
    message = str(_refused(tmp_path / "c.csv", body_axis=("nose", "tailbase")))
    assert "'nose'" in message and "snout, mid, tailbase" in message


def test_body_axis_joints_never_labelled_together(tmp_path):
    joints = _joints()
    joints[:3, 0] = np.nan
    joints[3:, 1] = np.nan
    _dlc_frame(joints).to_csv(tmp_path / "c.csv")
    message = str(_refused(tmp_path / "c.csv", body_axis=("snout", "mid")))
    assert "'snout'" in message and "body_axis=" in message


def test_fewer_than_two_labelled_bodyparts(tmp_path):
    joints = _joints()
    joints[:, 1:] = np.nan
    _dlc_frame(joints).to_csv(tmp_path / "c.csv")
    assert "snout" in str(_refused(tmp_path / "c.csv"))
