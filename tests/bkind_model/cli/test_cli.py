"""The bkind command line end to end on a tiny real video."""

import json
import re

import pytest

from bkind_model.cli import main
from bkind_model.cli.main import build_parser
from bkind_model.cli.options import config_from_args
from bkind_model.config import DEFAULT_MINUTES
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
    capsys.readouterr()
    assert main(["export", str(out), "--to", "csv", "--out", str(tmp_path / "k.csv")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "k.csv")
    assert main(["export", str(out), "--to", "nwb", "--out", str(tmp_path / "n.csv")]) == 2
    err = capsys.readouterr().err
    assert "n.csv" in err and ".nwb" in err and "Traceback" not in err


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
    assert "--mask-settings: not valid JSON" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("options", "steps", "minutes"),
    [
        ([], 300, DEFAULT_MINUTES),  # the default: a time budget
        (["--steps", "50"], 50, None),
        (["--minutes", "3"], 300, 3.0),
        (["--preset", "quick"], 300, None),
        (["--preset", "quick", "--minutes", "2"], 300, 2.0),
    ],
)
def test_training_length_options(options, steps, minutes, tmp_path):
    args = build_parser().parse_args(["train", "v.mp4", "--out", str(tmp_path), *options])
    config = config_from_args(args)
    assert (config.steps, config.minutes) == (steps, minutes)


def test_a_budget_shows_the_expected_duration(tiny_video, tmp_path, capsys):
    fast = TRAIN[2:]  # all but --steps
    assert (
        main(["train", str(tiny_video), "--out", str(tmp_path / "run"), "--minutes", "0.1", *fast])
        == 0
    )
    err = capsys.readouterr().err
    assert "Training for a 0.1-minute budget" in err
    assert re.search(r"\d+ steps at [\d.]+ steps/s: about [\d.]+ min to go", err)
