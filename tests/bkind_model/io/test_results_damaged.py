"""Damaged or crafted results files: one ResultsError naming the file and the field.

A valid file is written by the writer extraction uses; each case edits one attribute or
dataset with h5py, as a careless edit or a hostile file would, and every reader (here
``KeypointResult.load`` and the ``bkind export`` command, which go through it) refuses it.
"""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from bkind_model.cli.main import main
from bkind_model.config import Config
from bkind_model.io.results import FINGERPRINT_SIZE, KeypointResult, ResultsError, ResultsWriter

T, K = 12, 3
LETTERBOX = {"source_size": [96, 128], "input_size": [64, 64], "scale": 0.5, "pad": [8, 0]}


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """A complete results file as extraction writes it (with a video fingerprint)."""
    path = tmp_path_factory.mktemp("valid") / "mouse.bkind.h5"
    rng = np.random.default_rng(0)
    metadata = {
        "video_path": "/videos/mouse.mp4",
        "fps": 25.0,
        "frame_size": [96, 128],
        "video_fingerprint": rng.integers(0, 256, (8, 24, FINGERPRINT_SIZE), np.uint8),
        "config": Config(n_keypoints=K, image_size=64).to_dict(),
        "letterbox": LETTERBOX,
        "checkpoint_sha256": "ab" * 32,
        "keypoint_names": ["nose", "tail", "paw"],
    }
    writer = ResultsWriter(path, T, K, metadata)
    a = rng.normal(size=(T, K, 2, 2))
    writer.write(
        0,
        rng.uniform(0, 96, (T, K, 2)),
        rng.uniform(1, 20, (T, K)),
        a @ np.swapaxes(a, -1, -2),
        on_animal=rng.random((T, K)) > 0.2,
    )
    return writer.finish()


def test_a_valid_file_loads_with_its_fingerprint_and_keeps_it_when_saved(valid, tmp_path):
    result = KeypointResult.load(valid)
    stored = result.metadata["video_fingerprint"]
    assert stored.dtype == np.uint8 and stored.shape == (8, 24, FINGERPRINT_SIZE)
    assert ((result.likelihood >= 0) & (result.likelihood <= 1)).all()
    again = KeypointResult.load(result.save(tmp_path / "again.bkind.h5"))
    assert np.array_equal(again.metadata["video_fingerprint"], stored)
    assert again.keypoint_names == ["nose", "tail", "paw"]


def _replace(name, make):
    def edit(f):
        old = f[name][()]
        del f[name]
        f[name] = make(old)

    return edit


def _attr(name, value):
    def edit(f):
        f.attrs[name] = value

    return edit


def _with(name, index, value):
    def change(old):
        old[index] = value
        return old

    return _replace(name, change)


def _no_keypoints(f):
    for name in ("keypoints", "confidence", "covariance", "likelihood", "on_animal"):
        old = f[name][()]
        del f[name]
        f[name] = old[:, :0]


def _no_frames(f):
    for name in ("keypoints", "confidence", "covariance", "likelihood", "on_animal"):
        old = f[name][()]
        del f[name]
        f[name] = old[:0]
    f.attrs["n_frames"] = f.attrs["frames_done"] = 0


NAMES = h5py.string_dtype()

CASES = {
    # name: (edit, field named in the message, problem)
    "fps_nan": (_attr("fps", np.nan), "attribute 'fps'", "is nan, not a frame rate"),
    "fps_zero": (_attr("fps", 0.0), "attribute 'fps'", "is 0.0, not a frame rate"),
    "fps_neg": (_attr("fps", -30.0), "attribute 'fps'", "is -30.0, not a frame rate"),
    "fps_huge": (_attr("fps", 1e300), "attribute 'fps'", "not a frame rate in"),
    "fps_str": (_attr("fps", "abc"), "attribute 'fps'", "is 'abc', not a frame rate"),
    "fps_array": (_attr("fps", np.array([25.0, 25.0])), "attribute 'fps'", "not a frame"),
    "no_frames": (_no_frames, "attribute 'n_frames'", "is 0, not a count >= 1"),
    "no_keypoints": (_no_keypoints, "dataset 'keypoints'", r"no keypoints \(K = 0\)"),
    "kp_3col": (
        _replace("keypoints", lambda kp: np.concatenate([kp, kp[..., :1]], -1)),
        "dataset 'keypoints'",
        r"has shape \(12, 3, 3\), not 12x\?x2",
    ),
    "kp_scalar_str": (
        _replace("keypoints", lambda kp: np.bytes_("hello")),
        "dataset 'keypoints'",
        "holds |S5, not float",
    ),
    "kp_group": (
        lambda f: (f.__delitem__("keypoints"), f.create_group("keypoints")),
        "dataset 'keypoints'",
        "holds a group",
    ),
    "kp_inf": (
        _with("keypoints", (4, 1, 0), np.inf),
        "dataset 'keypoints'",
        "holds inf at frame 4",
    ),
    "kp_huge": (
        _with("keypoints", (6, 2, 1), -1e30),
        "dataset 'keypoints'",
        "holds -1e.30 at frame 6",
    ),
    "conf_shape": (
        _replace("confidence", lambda c: c[:, :2]),
        "dataset 'confidence'",
        r"has shape \(12, 2\), not 12x3",
    ),
    "conf_missing": (lambda f: f.__delitem__("confidence"), "dataset 'confidence'", "missing"),
    "cov_inf": (_with("covariance", (0, 0, 1, 1), -np.inf), "dataset 'covariance'", "holds -inf"),
    "likelihood_bad": (
        _with("likelihood", (2, 0), 7.0),
        "dataset 'likelihood'",
        r"holds 7 at frame 2, outside \[0, 1\]",
    ),
    "likelihood_shape": (
        _replace("likelihood", lambda v: v[:-1]),
        "dataset 'likelihood'",
        r"has shape \(11, 3\)",
    ),
    "on_animal_text": (
        _replace("on_animal", lambda v: np.array([["x"] * K] * T, dtype="S1")),
        "dataset 'on_animal'",
        "not numbers",
    ),
    "names_dup": (
        _attr("keypoint_names", np.array(["a", "b", "a"], dtype=NAMES)),
        "attribute 'keypoint_names'",
        "names 'a' more than once",
    ),
    "names_short": (
        _attr("keypoint_names", np.array(["a", "b"], dtype=NAMES)),
        "attribute 'keypoint_names'",
        "has 2 names for 3 keypoints",
    ),
    "names_scalar": (
        _attr("keypoint_names", "nose"),
        "attribute 'keypoint_names'",
        "is 'nose', not a list of names",
    ),
    "frame_size_str": (_attr("frame_size", "big"), "attribute 'frame_size'", "not \\[height"),
    "video_path_number": (_attr("video_path", 3), "attribute 'video_path'", "is 3, not text"),
    "json_bomb": (
        _attr("config", "[" * 100_000 + "]" * 100_000),
        "attribute 'config'",
        "JSON nested 100000 deep",
    ),
    "json_nan": (_attr("config", '{"lr": NaN}'), "attribute 'config'", "NaN is not a number"),
    "config_list": (_attr("config", "[1, 2]"), "attribute 'config'", "is not a JSON dict"),
    "letterbox_bad": (
        _attr("letterbox", json.dumps(LETTERBOX | {"scale": -1})),
        "attribute 'letterbox'",
        "has scale -1, not a positive number",
    ),
    "skeleton_bad": (
        _attr("skeleton", "[1, 2, 3]"),
        "attribute 'skeleton'",
        r"not a list of \[name, name\] edges",
    ),
    "fingerprint_bad": (
        _attr("video_fingerprint", np.zeros((3, 4), np.uint8)),
        "attribute 'video_fingerprint'",
        "is not 8 gray thumbnails",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_file_is_refused_naming_the_file_and_field(valid, tmp_path, case):
    edit, field, problem = CASES[case]
    path = tmp_path / f"{case}.bkind.h5"
    shutil.copy(valid, path)
    with h5py.File(path, "a") as f:
        edit(f)
    with pytest.raises(ResultsError, match=problem) as caught:
        KeypointResult.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {field}") and "\n" not in message


def test_the_command_line_prints_one_line_and_writes_nothing(valid, tmp_path, capsys):
    path = tmp_path / "fps_nan.bkind.h5"
    shutil.copy(valid, path)
    with h5py.File(path, "a") as f:
        f.attrs["fps"] = np.nan
    out = tmp_path / "out.csv"
    assert main(["export", str(path), "--to", "csv", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"bkind: error: {path}: attribute 'fps' is nan") and "\n" not in err
    assert not out.exists()
