import os

import numpy as np
import pytest

from bkind_model.behaviour import BehaviourError
from bkind_model.behaviour.ethogram import (
    ethogram_from_probabilities,
    read_ethograms,
    write_ethograms,
)
from bkind_model.behaviour.labels import (
    BehaviourLabels,
    Interval,
    read_labels,
    write_frames,
    write_intervals,
)
from bkind_model.errors import WriteError
from bkind_model.io.outputs import ExistingFileError


def _sorted(labels: BehaviourLabels) -> list[Interval]:
    return sorted(labels.intervals, key=lambda i: (i.video, i.start))


def _labels() -> BehaviourLabels:
    labels = BehaviourLabels(["walk", "groom", "rest"])
    labels.label("a.mp4", "walk", 0, 9)
    labels.label("a.mp4", "groom", 20, 29)
    labels.label("b.mp4", "rest", 5, 14)
    return labels


def test_labelling_over_an_interval_replaces_what_was_there():
    labels = _labels()
    labels.label("a.mp4", "rest", 5, 24)
    assert [i for i in labels.intervals if i.video == "a.mp4"] == [
        Interval("a.mp4", "walk", 0, 4),
        Interval("a.mp4", "rest", 5, 24),
        Interval("a.mp4", "groom", 25, 29),
    ]
    labels.label("a.mp4", None, 0, 29)
    assert labels.videos() == ["b.mp4"]
    assert labels.frame_counts() == {"walk": 0, "groom": 0, "rest": 10}


def test_intervals_and_frame_csv_read_back_the_same(tmp_path):
    labels = _labels()
    write_intervals(tmp_path / "intervals.csv", labels)
    write_frames(tmp_path / "frames.csv", labels, {"a.mp4": 40, "b.mp4": 20})
    again = read_labels(tmp_path / "intervals.csv")
    assert again.names == labels.names
    assert _sorted(again) == _sorted(labels)
    from_frames = read_labels(tmp_path / "frames.csv")
    assert from_frames.names == labels.names
    assert _sorted(from_frames) == _sorted(labels)
    np.testing.assert_array_equal(from_frames.codes("a.mp4", 40), labels.codes("a.mp4", 40))


def test_an_interval_outside_the_video_is_refused_with_the_fix():
    labels = _labels()
    with pytest.raises(BehaviourError, match=r"groom frames 20-29 of a.mp4 lie outside its 25"):
        labels.codes("a.mp4", 25)


def test_an_existing_file_is_kept_unless_replacing_is_asked(tmp_path):
    path = tmp_path / "intervals.csv"
    path.write_text("keep me")
    with pytest.raises(ExistingFileError, match="--overwrite"):
        write_intervals(path, _labels())
    assert path.read_text() == "keep me"
    write_intervals(path, _labels(), overwrite=True)
    assert _sorted(read_labels(path)) == _sorted(_labels())


def test_a_folder_that_cannot_be_written_names_the_file(tmp_path):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("")
    with pytest.raises(WriteError, match=r"cannot use this output folder .* at .*file\.txt"):
        write_intervals(not_a_folder / "out.csv", _labels())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_keeps_the_previous_file(tmp_path):
    path = tmp_path / "frames.csv"
    write_intervals(path, _labels())
    before = path.read_bytes()
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(WriteError, match="permissions"):
            write_intervals(path, _labels(), overwrite=True)
    finally:
        tmp_path.chmod(0o700)
    assert path.read_bytes() == before


def test_bad_files_say_what_is_wrong(tmp_path):
    missing = tmp_path / "none.csv"
    with pytest.raises(BehaviourError, match=r"none\.csv: file not found"):
        read_labels(missing)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(BehaviourError, match="neither an intervals CSV"):
        read_labels(other)
    reversed_ = tmp_path / "reversed.csv"
    reversed_.write_text("video,behaviour,start_frame,end_frame\na.mp4,walk,10,5\n")
    with pytest.raises(BehaviourError, match=r"walk frames 10-5 of a\.mp4 are no interval"):
        read_labels(reversed_)
    two = tmp_path / "two.csv"
    two.write_text("video,frame,walk,rest\na.mp4,0,1,1\n")
    with pytest.raises(BehaviourError, match=r"frame 0 of a\.mp4 has two behaviours"):
        read_labels(two)
    with pytest.raises(BehaviourError, match="named twice"):
        BehaviourLabels(["walk", "walk"])


def test_predictions_export_and_come_back_as_labels(tmp_path):
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=60)
    ethogram = ethogram_from_probabilities(
        "a.mp4", ["walk", "groom", "rest"], probabilities, 5, 0.5
    )
    assert set(np.unique(ethogram.codes)) <= {-1, 0, 1, 2}
    assert (ethogram.codes == -1).any()  # unsure frames get no behaviour
    np.testing.assert_allclose(ethogram.probabilities.sum(axis=1), 1.0, atol=1e-5)
    path = write_ethograms(tmp_path / "ethogram.csv", [ethogram])
    (back,) = read_ethograms(path)
    np.testing.assert_array_equal(back.codes, ethogram.codes)
    np.testing.assert_allclose(back.probabilities, ethogram.probabilities, atol=1e-4)
    labels = read_labels(path)
    np.testing.assert_array_equal(labels.codes("a.mp4", 60), ethogram.codes)
    renamed = ethogram.renamed(["run", "wash", "sleep"])
    assert renamed.as_labels().names == ["run", "wash", "sleep"]
