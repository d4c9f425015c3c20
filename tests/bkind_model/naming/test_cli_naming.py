"""``bkind propose`` and ``bkind name`` end to end on the synthetic video."""

import json
import shutil

import numpy as np
import pandas as pd

from bkind_model.cli import main
from bkind_model.io.labels import load_labels, write_collected_data
from bkind_model.io.results import KeypointResult


def test_propose_label_name_refine(sample, tmp_path, capsys):
    results = tmp_path / "tiny.bkind.h5"
    shutil.copy(sample.results, results)
    folder = tmp_path / "labeled-data" / "tiny"
    assert main(["propose", str(results), "-n", "12", "--extract-to", str(folder)]) == 0
    images = sorted(p.name for p in folder.glob("img*.png"))
    assert len(images) == 12 and capsys.readouterr().out.count(".png") == 12
    frames = np.array([int(name[3:6]) for name in images])
    write_collected_data(folder, sample.labels(frames), "me")

    labels = folder / "CollectedData_me.h5"
    argv = ["name", str(results), str(labels), "--machinelabels", str(folder), "--refine", "5"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    named = KeypointResult.load(summary["named"])
    assert summary["named"] == str(tmp_path / "tiny.named.bkind.h5")
    assert named.keypoint_names == sample.names
    assert summary["labelled_frames"] == 12
    refine = summary["frames_to_refine"]
    assert len(refine) == 5 and not np.isin(refine, frames).any()
    table = pd.read_hdf(summary["machinelabels"])
    assert table.shape == (5, 3 * len(sample.names))
    assert all((folder / row[2]).is_file() for row in table.index)  # the PNGs are there
    # The machinelabels read back as labels: the predictions of the refined frames.
    np.testing.assert_allclose(
        load_labels(summary["machinelabels"]).joints, named.keypoints[refine], atol=1e-4
    )

    # Named predictions are not discovered keypoints.
    assert main(["name", summary["named"], str(labels), "--out", str(tmp_path / "x.h5")]) == 2
    assert "named predictions, not discovered keypoints" in capsys.readouterr().err

    # Naming again refuses to replace the files, and says how.
    assert main(argv) == 2
    assert "exists and would be replaced. Pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


def test_labels_of_another_video_are_one_line(sample, tmp_path, capsys):
    folder = tmp_path / "labeled-data" / "other"
    write_collected_data(folder, sample.labels(np.arange(0, 240, 20)), "me")
    table = tmp_path / "wrong.csv"
    frame = pd.read_csv(folder / "CollectedData_me.csv", header=[0, 1, 2], index_col=[0, 1, 2])
    frame.rename(index={"tiny": "other"}).to_csv(table)
    assert main(["name", str(sample.results), str(table), "--out", str(tmp_path / "n.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bkind: error: ") and "\n" not in err
    assert "labels of video(s) other" in err and not (tmp_path / "n.h5").exists()


def test_propose_excludes_labels_of_this_video_only(sample, tmp_path, capsys):
    """P-exclude-other: the frames of another video's labels were silently left out."""
    folder = tmp_path / "labeled-data" / "tiny"
    labelled = np.arange(0, 240, 20)
    write_collected_data(folder, sample.labels(labelled), "me")
    ours = folder / "CollectedData_me.csv"
    assert main(["propose", str(sample.results), "-n", "5", "--exclude", str(ours)]) == 0
    proposed = [int(f) for f in capsys.readouterr().out.split()]
    assert len(proposed) == 5 and not np.isin(proposed, labelled).any()

    other = tmp_path / "other.csv"
    table = pd.read_csv(ours, header=[0, 1, 2], index_col=[0, 1, 2])
    table.rename(index={"tiny": "other"}).to_csv(other)
    assert main(["propose", str(sample.results), "-n", "5", "--exclude", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bkind: error: ") and "\n" not in err
    assert "labels of video(s) other but the keypoints" in err and "tiny" in err
