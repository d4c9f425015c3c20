"""The bkind command line end to end on a tiny real video."""

import json

import pytest

from bkind_model.cli import main
from bkind_model.io.results import KeypointResult
from bkind_model.synthetic import ground_truth_path

TRAIN = ["--steps", "3", "--image-size", "64", "--batch", "4", "--keypoints", "4", "--gap", "3"]


@pytest.mark.slow
def test_train_extract_evaluate(tiny_video, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_video), "--out", str(run), *TRAIN]) == 0
    assert (run / "checkpoint.pt").exists()
    out = tmp_path / "tiny.bkind.h5"
    assert main(["extract", str(run), str(tiny_video), "--out", str(out)]) == 0
    assert KeypointResult.load(out).keypoints.shape[1:] == (4, 2)
    capsys.readouterr()
    assert main(["evaluate", str(out), str(ground_truth_path(tiny_video))]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert {"keypoints", "blob", "mean_pose", "ratio_to_blob"} <= set(scores)
    assert scores["mean_pose"]["error_px"] > 0


@pytest.mark.slow
def test_bad_input_is_one_clear_line(tmp_path, capsys):
    missing = tmp_path / "nope.mp4"
    assert main(["train", str(missing), "--out", str(tmp_path / "run"), *TRAIN]) == 2
    err = capsys.readouterr().err
    assert "nope.mp4" in err and "Traceback" not in err


@pytest.mark.slow
def test_train_with_masks_from_the_command_line(tiny_video, tmp_path, capsys):
    from bkind_model.io.checkpoint import checkpoint_config, load_checkpoint

    run = tmp_path / "run"
    masks = ["--masks", "colour", "--mask-use", "black", "--mask-settings", '{"value": [0, 0.4]}']
    assert main(["train", str(tiny_video), "--out", str(run), *TRAIN, *masks]) == 0
    state = load_checkpoint(run / "checkpoint.pt")
    settings = checkpoint_config(state, run / "checkpoint.pt").masks
    assert (settings.method, settings.use, settings.value) == ("colour", "black", (0.0, 0.4))
    capsys.readouterr()
    bad = ["--masks", "background", "--mask-settings", "{value: 1}"]
    assert main(["train", str(tiny_video), "--out", str(tmp_path / "r2"), *TRAIN, *bad]) == 2
    err = capsys.readouterr().err
    assert "--mask-settings is not JSON" in err and "Traceback" not in err
