import pandas as pd

from bkind_model.behaviour.labels import write_intervals
from bkind_model.behaviour.synthetic import ground_truth_labels
from bkind_model.cli.main import main


def test_train_predict_and_motifs_through_the_cli(samples, result_files, tmp_path, capsys):
    labels = tmp_path / "intervals.csv"
    write_intervals(labels, ground_truth_labels(samples[0]))
    model = tmp_path / "model.pkl"
    argv = [
        "behaviour",
        "train",
        str(result_files[0]),
        "--labels",
        str(labels),
        "--out",
        str(model),
    ]
    assert main(argv) == 0
    assert main(argv) == 2  # the model exists: kept, and the message says how to replace it
    assert "Pass --overwrite to replace it" in capsys.readouterr().err
    ethogram = tmp_path / "ethogram.csv"
    assert (
        main(["behaviour", "predict", str(model), str(result_files[1]), "--out", str(ethogram)])
        == 0
    )
    table = pd.read_csv(ethogram)
    assert list(table.columns[:7]) == ["video", "frame", "walk", "turn", "rear", "groom", "rest"]
    assert (table[["walk", "turn", "rear", "groom", "rest"]].sum(axis=1) == 1).all()
    motifs = tmp_path / "motifs.csv"
    assert main(["motifs", *map(str, result_files), "-k", "4", "--out", str(motifs)]) == 0
    assert set(pd.read_csv(motifs)["video"]) == {v.name for v in samples}


def test_labels_of_another_video_are_one_line_naming_the_file(
    samples, result_files, tmp_path, capsys
):
    labels = tmp_path / "intervals.csv"
    write_intervals(labels, ground_truth_labels(samples[0]))
    out = tmp_path / "model.pkl"
    assert (
        main(
            [
                "behaviour",
                "train",
                str(result_files[1]),
                "--labels",
                str(labels),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "mouse12.mp4 has no labels in" in err and str(labels) in err
    assert not out.exists()
