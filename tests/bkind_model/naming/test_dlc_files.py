"""DeepLabCut files written for DeepLabCut and napari-deeplabcut, read back two ways."""

import os

import numpy as np
import pandas as pd
import pytest

from bkind_model.errors import WriteError
from bkind_model.io.labels import (
    LabelsError,
    frame_numbers,
    image_name,
    labels_from_joints,
    load_labels,
    merge_labels,
    write_collected_data,
    write_labels,
)
from bkind_model.io.outputs import ExistingFileError


def _labels():
    joints = np.array([[[10.0, 20.0], [30.0, 40.0]], [[np.nan, np.nan], [50.5, 60.25]]])
    rows = ["labeled-data/mouse/img0007.png", "labeled-data/mouse/img0042.png"]
    return labels_from_joints(joints, ["snout", "tailbase"], rows)


def test_collected_data_reads_back_with_pandas_and_our_reader(tmp_path):
    labels = _labels()
    h5, csv = write_collected_data(tmp_path / "labeled-data" / "mouse", labels, "me")
    assert (h5.name, csv.name) == ("CollectedData_me.h5", "CollectedData_me.csv")
    table = pd.read_hdf(h5)  # one table: napari-deeplabcut reads it without a key
    assert list(table.columns.names) == ["scorer", "bodyparts", "coords"]
    assert table.index[1] == ("labeled-data", "mouse", "img0042.png")
    assert table[("me", "tailbase", "y")].iloc[1] == 60.25
    for path in (h5, csv):
        again = load_labels(path)
        assert again.names == labels.names and again.frames == labels.frames
        np.testing.assert_array_equal(again.joints, labels.joints)


def test_predictions_carry_a_likelihood(tmp_path):
    labels = _labels()
    likelihood = np.array([[0.9, 0.8], [0.7, 0.6]])
    path = write_labels(
        tmp_path / "machinelabels-iter0.h5",
        labels.joints,
        labels.names,
        labels.frames,
        "bkind",
        likelihood=likelihood,
    )
    table = pd.read_hdf(path)
    assert table[("bkind", "snout", "likelihood")].iloc[0] == 0.9
    assert np.isnan(table[("bkind", "snout", "likelihood")].iloc[1])  # no point, none
    np.testing.assert_array_equal(load_labels(path).joints, labels.joints)


def test_existing_files_are_kept_unless_replacing_is_asked(tmp_path):
    labels = _labels()
    h5, _ = write_collected_data(tmp_path, labels, "me")
    before = h5.read_bytes()
    with pytest.raises(ExistingFileError, match=r"CollectedData_me\.h5: already exists"):
        write_collected_data(tmp_path, labels, "me")
    assert h5.read_bytes() == before
    write_collected_data(tmp_path, labels, "me", overwrite=True)


def test_unwritable_folders_give_a_write_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(WriteError, match="file"):
        write_collected_data(tmp_path / "file" / "mouse", _labels(), "me")


@pytest.mark.skipif(os.geteuid() == 0, reason="the superuser can write into read-only folders")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(WriteError, match="locked"):
            write_collected_data(folder, _labels(), "me")
    finally:
        folder.chmod(0o755)


def test_frame_names_and_numbers():
    assert image_name(42, 2330) == "img0042.png"
    assert image_name(3, 5) == "img3.png"
    rows = ["labeled-data/m/img0042.png", "labeled-data\\m\\img7.png", "12"]
    np.testing.assert_array_equal(frame_numbers(rows), [42, 7, 12])
    with pytest.raises(LabelsError, match=r"'labeled-data/m/cover\.png' has no frame number"):
        frame_numbers(["labeled-data/m/cover.png"])


def test_corrections_replace_their_rows_and_add_frames():
    labels = _labels()
    fix = labels_from_joints(
        np.array([[[11.0, 21.0], [np.nan, np.nan]], [[5.0, 6.0], [7.0, 8.0]]]),
        ["snout", "tailbase"],
        ["labeled-data/mouse/img0007.png", "labeled-data/mouse/img0100.png"],
    )
    merged = merge_labels(labels, fix)
    assert merged.frames == [*labels.frames, "labeled-data/mouse/img0100.png"]
    # The corrected row as corrected: the deleted tailbase label is gone.
    np.testing.assert_array_equal(merged.joints[0, 0], [11.0, 21.0])
    assert np.isnan(merged.joints[0, 1]).all()
    np.testing.assert_array_equal(merged.joints[1], labels.joints[1])
