"""Every bad value on the command line is refused in one line, before any work."""

from __future__ import annotations

import json

import pytest
import torch

from bkind_model.cli import main
from bkind_model.config import Config
from bkind_model.io.checkpoint import load_checkpoint, save_checkpoint
from bkind_model.train.loop import Trainer

OK = ["--steps", "1", "--image-size", "64", "--batch", "4", "--keypoints", "3", "--gap", "3"]

BAD_TRAINING = [
    (["--gap", "0"], "--gap"),
    (["--gap", "inf"], "--gap"),
    (["--gap", "nan"], "--gap"),
    (["--gap", "-2"], "--gap"),
    (["--steps", "-1"], "--steps"),
    (["--batch", "0"], "--batch"),
    (["--batch", "100000"], "batch_size"),
    (["--image-size", "100000"], "image_size"),
    (["--image-size", "100"], "multiple of 8"),
    (["--keypoints", "0"], "--keypoints"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "-1"], "--lr"),
    (["--threads", "-1"], "--threads"),
    (["--device", "tpu"], "device"),
    (["--device", "cuda:99"], "device"),
    (["--crop-size", "-5"], "--crop-size"),
    (["--checkpoint-every", "0"], "--checkpoint-every"),
    (["--checkpoint-minutes", "0"], "--checkpoint-minutes"),
    (["--mask-settings", '{"hue": "red"}'], "hue"),
    (["--mask-settings", '{"hue": 5}'], "hue"),
    (["--mask-settings", '{"hue": [1, 2, 3]}'], "hue"),
    (["--mask-settings", '{"cleanup_px": 1.5}'], "cleanup_px"),
    (["--mask-settings", '{"change": 2}'], "change"),
    (["--mask-settings", "not json"], "JSON"),
    (["--mask-settings", "[1]"], "JSON object"),
    (["--mask-settings", '{"unknown": 1}'], "Unknown mask settings"),
    (["--image-size", "1024", "--batch", "4096"], "batch_size"),
    (["--image-size", "1024", "--batch", "64"], "GB but"),
    (["--steps", "0"], "--steps"),
    (["--crop-size", "1e6"], "crop_size"),
    (["--pretrained", "missing.pth"], "pretrained"),
    (["--encoder", "resnet18", "--image-size", "64", "--pretrained", "missing.pth"], "not found"),
    (["--encoder", "resnet18", "--pretrained", "imagenet"], "efficientnet-lite0"),
    (["--settings", '{"frozen_levels": 9}'], "frozen_levels"),
    (["--encoder", "small", "--settings", '{"frozen_levels": 2}'], "frozen_levels"),
    (["--settings", "not json"], "--settings"),
    (["--settings", '{"stepz": 3}'], "stepz"),
]


def _refused(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bkind: error:") and "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(("extra", "named"), BAD_TRAINING, ids=lambda v: str(v))
def test_bad_training_values_are_refused_before_any_work(
    tiny_video, tmp_path, capsys, extra, named
):
    run = tmp_path / "run"
    err = _refused(capsys, ["train", str(tiny_video), "--out", str(run), *OK, *extra])
    assert named in err
    assert not (run / "checkpoint.pt").exists()


def test_a_one_frame_video_without_a_gap_is_refused(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "one"
    folder.mkdir()
    Image.new("RGB", (64, 64)).save(folder / "frame0.png")
    args = ["train", str(folder), "--out", str(tmp_path / "run"), "--steps", "1"]
    assert "1 frame" in _refused(capsys, args)


@pytest.mark.slow
def test_bad_extraction_and_evaluation_values(tiny_video, tmp_path, capsys):
    run = tmp_path / "run"
    trainer = Trainer(
        [tiny_video],
        run,
        Config(steps=1, image_size=64, batch_size=4, n_keypoints=3, frame_gap=3, width=16),
    )
    for _ in trainer.run():
        pass
    trainer.close()
    out = tmp_path / "deep" / "er" / "tiny.bkind.h5"  # missing folders are made
    assert main(["extract", str(run), str(tiny_video), "--out", str(out)]) == 0
    capsys.readouterr()
    for folds in ("0", "1", "-2", "10000"):
        err = _refused(
            capsys,
            [
                "evaluate",
                str(out),
                str(tiny_video.with_suffix(".groundtruth.npz")),
                "--folds",
                folds,
            ],
        )
        assert "folds" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "cannot use this output folder" in _refused(
        capsys, ["extract", str(run), str(tiny_video), "--out", str(blocker / "r.h5")]
    )
    state = load_checkpoint(run)
    state["model"] = {k: v.clone() for k, v in state["model"].items()}
    next(t for t in state["model"].values() if t.is_floating_point()).fill_(float("nan"))
    save_checkpoint(tmp_path / "nan.pt", state)
    assert "NaN" in _refused(capsys, ["extract", str(tmp_path / "nan.pt"), str(tiny_video)])
    other = tmp_path / "other"
    other.mkdir()
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (80, 64)).save(other / f"{i}.png")
    assert "80x64" in _refused(capsys, ["extract", str(run), str(other)])
    scores = main(["evaluate", str(out), str(tiny_video.with_suffix(".groundtruth.npz"))])
    assert scores == 0
    json.loads(capsys.readouterr().out)  # valid JSON (NaN is not)
    assert torch.isfinite(load_checkpoint(run)["model"][next(iter(state["model"]))]).all()


@pytest.mark.slow
def test_a_learning_rate_that_diverges_saves_no_broken_weights(tiny_video, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", str(tiny_video), "--out", str(run), *OK, "--steps", "5", "--lr", "1e9"]
    assert main(argv) == 2
    output = capsys.readouterr().err
    assert "Traceback" not in output
    (err,) = [line for line in output.splitlines() if line.startswith("bkind: error:")]
    assert "NaN or infinite" in err or "loss became" in err
    if (run / "checkpoint.pt").exists():
        state = load_checkpoint(run)
        assert all(
            torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point()
        )
