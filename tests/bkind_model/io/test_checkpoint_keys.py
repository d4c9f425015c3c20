"""Checkpoints whose keys hold the wrong kind of value: one CheckpointError naming file and key."""

from __future__ import annotations

import pytest
import torch

from bkind_model.config import Config
from bkind_model.errors import CheckpointError
from bkind_model.io.checkpoint import (
    CHECKPOINT_KEYS,
    check_keys,
    count_check,
    load_checkpoint,
    save_checkpoint,
    tensor_check,
)

LETTERBOX = {"source_size": [48, 64], "input_size": [64, 64], "scale": 1.0, "pad": [8, 0]}


def _state() -> dict:
    """A checkpoint's keys as a 2D run saves them (small weights)."""
    return {
        "config": Config(image_size=64, n_keypoints=2, width=16, frame_gap=4).to_dict(),
        "model": {"w": torch.ones(3, 4), "b": torch.zeros(3)},
        "optimizer": {"state": {}, "param_groups": []},
        "scheduler": {"last_epoch": 3},
        "step": 3,
        "torch_rng": torch.get_rng_state(),
        "history": {"steps": [1, 2, 3]},
        "letterbox": LETTERBOX,
        "background": torch.zeros(48, 64, dtype=torch.uint8),
        "videos": ["/data/a.mp4"],
        "world_size": 1,
    }


def test_a_checkpoint_as_saved_loads(tmp_path):
    loaded = load_checkpoint(save_checkpoint(tmp_path / "checkpoint.pt", _state()))
    assert loaded["step"] == 3 and loaded["letterbox"] == LETTERBOX


CASES = {
    "background": ("garbage", "holds str 'garbage', not a 2-D tensor"),
    "letterbox": ("garbage", "is str, not a letterbox dict"),
    "step": ("garbage", "holds str 'garbage', not a whole number >= 0"),
    "model": ({"w": [[1.0, 2.0]], "b": torch.zeros(3)}, "holds a list of 1 as weight 'w'"),
    "config": ([1, 2], "holds a list of 2, not a dict"),
    "videos": ("/data/a.mp4", "not a list of text"),
    "world_size": (0, "not a whole number >= 1"),
    "torch_rng": (torch.zeros(2, 2), r"holds a \(2, 2\) float32 tensor, not a 1-D tensor"),
}


@pytest.mark.parametrize("key", CASES)
def test_a_key_holding_garbage_is_refused_naming_file_and_key(tmp_path, key):
    value, problem = CASES[key]
    path = save_checkpoint(tmp_path / "run" / "checkpoint.pt", _state() | {key: value})
    with pytest.raises(CheckpointError, match=problem) as caught:
        load_checkpoint(tmp_path / "run")  # a run folder names its checkpoint.pt
    message = str(caught.value)
    assert message.startswith(f"{path}: key {key!r} ") and "\n" not in message


def test_a_bad_letterbox_field_is_named():
    state = _state() | {"letterbox": LETTERBOX | {"scale": float("nan")}}
    with pytest.raises(CheckpointError, match=r"ck\.pt: key 'letterbox' has scale nan"):
        check_keys(state, "ck.pt", CHECKPOINT_KEYS)


def test_other_runs_check_their_own_keys_with_the_same_entry_point():
    checks = {"cameras": count_check(2), "views": tensor_check(3)}
    check_keys({"cameras": 3, "views": torch.zeros(1, 2, 3)}, "ck3.pt", checks)
    check_keys({}, "ck3.pt", checks)  # absent keys are not checked
    with pytest.raises(CheckpointError, match=r"ck3\.pt: key 'cameras' holds bool True"):
        check_keys({"cameras": True}, "ck3.pt", checks)
