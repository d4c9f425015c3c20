"""Conventions every subcommand shares: --version, one-line refusals of degenerate values,
the overlay's likelihood cut-off, progress bars that show a rate only once it is measured."""

from __future__ import annotations

import pytest

from bkind_model import __version__
from bkind_model.cli import build_parser, main
from bkind_model.cli.progress import RATE_AFTER_S, progress_bar

R = "r.bkind.h5"  # never opened: each value is refused while the options are parsed

BAD_VALUES = [
    (["motifs", R, "--out", "m.csv", "--seed", "-1"], "--seed"),  # M-seedneg
    (["motifs", R, "--out", "m.csv", "--seed", str(2**32)], "--seed"),
    (["motifs", R, "--out", "m.csv", "--window-s", "inf"], "--window-s"),
    (["motifs", R, "--out", "m.csv", "--window-s", "0"], "--window-s"),
    (["motifs", R, "--out", "m.csv", "-k", "1"], "-k"),
    (["behaviour", "train", R, "--labels", "l.csv", "--out", "m", "--seed", "-1"], "--seed"),
    (
        ["behaviour", "train", R, "--labels", "l.csv", "--out", "m", "--window-s", "nan"],
        "--window-s",
    ),
    (
        ["behaviour", "train", R, "--labels", "l.csv", "--out", "m", "--smooth-s", "-1"],
        "--smooth-s",
    ),
    (["behaviour", "predict", "m", R, "--out", "e.csv", "--threshold", "1.5"], "--threshold"),
    (["propose", R, "--seed", "-1"], "--seed"),  # P-seedneg
    (["propose", R, "-n", "0"], "-n"),
    (["name", R, "l.csv", "--refine", "0"], "--refine"),
    (["overlay", R, "--radius", "0"], "--radius"),  # O-radius0
    (["overlay", R, "--radius", "-5"], "--radius"),  # O-radiusneg
    (["overlay", R, "--radius", "nan"], "--radius"),  # O-radiusnan
    (["overlay", R, "--min-likelihood", "2"], "--min-likelihood"),  # O-minlik2
    (["overlay", R, "--scale", "0"], "--scale"),
    (["overlay", R, "--trail", "-1"], "--trail"),
    (["overlay", R, "--start", "-3"], "--start"),
    (["overlay", R, "--stop", "0"], "--stop"),
    (["evaluate", R, "l.csv", "--folds", "1"], "--folds"),
    (["demo", "--steps", "0"], "--steps"),
    (["demo", "--seed", "-1"], "--seed"),
    (["train", "v.mp4", "--out", "run", "--minutes", "inf"], "--minutes"),
    (["train", "v.mp4", "--out", "run", "--seed", "x"], "--seed"),
    (["train3d", "a.mp4", "--calibration", "c.toml", "--out", "r", "--batch", "-4"], "--batch"),
]


@pytest.mark.parametrize(
    ("argv", "option"), BAD_VALUES, ids=lambda v: v if isinstance(v, str) else " ".join(v)
)
def test_degenerate_values_are_one_line(capsys, argv, option):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bkind: error: argument {option}") and len(err.splitlines()) == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"bkind {__version__}"
    assert __version__ != "0.0.0+unknown"  # from the installed package's metadata


def test_overlay_draws_below_deeplabcut_s_cutoff_hollow_by_default():
    args = build_parser().parse_args(["overlay", R])
    assert args.min_likelihood == 0.6 and not args.overwrite


def test_every_command_that_writes_says_overwrite():
    for argv in (
        ["extract", "c", "v"],
        ["extract3d", "c", "v", "--calibration", "c.toml"],
        ["export", R],
        ["export3d", "k.h5"],
        ["overlay", R],
        ["propose", R],
        ["name", R, "l.csv"],
        ["behaviour", "predict", "m", R, "--out", "e.csv"],
        ["motifs", R, "--out", "m.csv"],
    ):
        assert build_parser().parse_args([*argv, "--overwrite"]).overwrite is True, argv


def test_a_bar_shows_a_rate_only_once_it_is_measured(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("tqdm.std.time", lambda: now[0])
    bar = progress_bar(1000, "frame", initial=64)  # the first batch came with the bar
    assert "frame/s" not in str(bar) and "64/1000" in str(bar)
    now[0] += 0.5
    bar.update(36)
    assert "frame/s" not in str(bar) and "100/1000" in str(bar)
    now[0] += RATE_AFTER_S
    bar.update(100)
    shown = str(bar)
    assert "frame/s" in shown and "<" in shown, shown  # a rate and the time left
    rate = float(shown.split("frame/s")[0].split(", ")[-1])
    assert 30 < rate < 100, shown  # 136 frames in 2.5 s, not millions per second
    bar.close()
