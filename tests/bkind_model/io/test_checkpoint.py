"""Checkpoint files: round trip, atomic replacement, clear errors for bad files."""

import hashlib
import pickle

import numpy as np
import pytest
import torch

from bkind_model import __version__
from bkind_model.config import Config, MaskSettings
from bkind_model.errors import CheckpointError
from bkind_model.io.checkpoint import (
    FORMAT,
    checkpoint_config,
    ensure_compatible,
    file_hash,
    load_checkpoint,
    save_checkpoint,
)

TINY = dict(image_size=64, batch_size=4, n_keypoints=4, width=16, threads=2, frame_gap=4)


def _state(config=None, step=7, scale=1.0):
    config = config or Config(**TINY)
    return {
        "config": config.to_dict(),
        "model": {
            "w": torch.arange(12, dtype=torch.float32).view(3, 4) * scale,
            "b": torch.tensor([1, 2, 3], dtype=torch.int64),
            "mask": torch.tensor([True, False]),
            "half": torch.linspace(0, 1, 5, dtype=torch.float16),
        },
        "step": step,
        "history": {"steps": [1, 2], "losses": [{"total": 0.5}, {"total": 0.25}]},
        "videos": ["/data/a.mp4"],
        "letterbox": {
            "source_size": [128, 96],
            "input_size": [64, 48],
            "scale": 0.5,
            "pad": [0, 2],
        },
    }


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_round_trip_keeps_tensors_containers_and_config(tmp_path):
    config = Config(**(TINY | {"masks": MaskSettings(method="colour", hue=(350, 20))}))
    state = _state(config)
    path = save_checkpoint(tmp_path / "run" / "checkpoint.pt", state)  # makes the folder
    assert path == tmp_path / "run" / "checkpoint.pt" and path.is_file()
    loaded = load_checkpoint(path)
    assert loaded["format"] == FORMAT and loaded["version"] == __version__
    assert set(state["model"]) == set(loaded["model"])
    for name, tensor in state["model"].items():
        assert loaded["model"][name].dtype == tensor.dtype
        assert torch.equal(loaded["model"][name], tensor), name
    for key in ("step", "history", "videos", "letterbox"):
        assert loaded[key] == state[key], key
    restored = checkpoint_config(loaded, path)
    assert restored == config
    assert isinstance(restored.masks, MaskSettings) and restored.masks.hue == (350.0, 20.0)
    assert load_checkpoint(tmp_path / "run")["step"] == 7  # a run folder works too


def test_writes_leave_no_temporary_file_and_replace_the_old_checkpoint_whole(tmp_path):
    path = tmp_path / "checkpoint.pt"
    big = _state(step=1)
    big["model"]["extra"] = torch.zeros(100_000)
    save_checkpoint(path, big)
    assert _files(tmp_path) == ["checkpoint.pt"]
    save_checkpoint(path, _state(step=2, scale=3.0))
    assert _files(tmp_path) == ["checkpoint.pt"]
    loaded = load_checkpoint(path)
    assert loaded["step"] == 2 and "extra" not in loaded["model"]
    assert torch.equal(loaded["model"]["w"], _state()["model"]["w"] * 3.0)
    assert path.stat().st_size < 100_000 * 4  # not the old file with new data on top


class _Explodes:
    """Pickles only after the tensors before it were written, then fails."""

    def __reduce__(self):
        raise RuntimeError("disk full (simulated)")


@pytest.mark.parametrize(
    ("poison", "error"),
    [
        (lambda x: x, (pickle.PicklingError, AttributeError, TypeError)),
        (_Explodes(), RuntimeError),
    ],
    ids=["unpicklable", "raises-midway"],
)
def test_a_failed_write_keeps_the_old_checkpoint_and_no_temporary_file(tmp_path, poison, error):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, _state(step=1))
    before = path.read_bytes()
    bad = _state(step=2)
    bad["model"]["big"] = torch.ones(200_000)  # written before the poison is reached
    bad["poison"] = poison
    with pytest.raises(error):
        save_checkpoint(path, bad)
    assert _files(tmp_path) == ["checkpoint.pt"]
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1


def test_a_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        save_checkpoint(tmp_path / "checkpoint.pt", _state() | {"poison": _Explodes()})
    assert _files(tmp_path) == []


def test_a_state_that_needs_more_than_tensors_is_refused_on_load(tmp_path):
    # torch.save pickles anything; the safe loader only takes tensors and containers
    path = save_checkpoint(tmp_path / "checkpoint.pt", _state() | {"array": np.zeros(3)})
    with pytest.raises(CheckpointError, match="not a readable bkind checkpoint") as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)


def test_missing_checkpoint_says_so(tmp_path):
    with pytest.raises(CheckpointError, match="not found") as caught:
        load_checkpoint(tmp_path / "nope.pt")
    assert str(tmp_path / "nope.pt") in str(caught.value)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path)  # a folder without checkpoint.pt


def test_text_file_is_refused_with_its_path(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_text("epoch 3, loss 0.1\n")
    with pytest.raises(CheckpointError, match="corrupt") as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1])
def test_truncated_file_is_refused_with_its_path(tmp_path, keep):
    path = save_checkpoint(tmp_path / "checkpoint.pt", _state())
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated") as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [
        {"format": "other-tool-3", "config": {}, "model": {}, "step": 0},
        {"config": {}, "model": {}, "step": 0},
        torch.zeros(3),
        [1, 2, 3],
    ],
    ids=["other-format", "no-format", "tensor", "list"],
)
def test_file_of_another_format_is_refused_with_its_path(tmp_path, content):
    path = tmp_path / "model.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match="not a bkind checkpoint") as caught:
        load_checkpoint(path)
    assert str(path) in str(caught.value)


def test_checkpoint_lacking_required_parts_is_damaged(tmp_path):
    path = save_checkpoint(tmp_path / "checkpoint.pt", {"config": Config(**TINY).to_dict()})
    with pytest.raises(CheckpointError, match="lacks") as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message and "'model'" in message and "'step'" in message


@pytest.mark.parametrize(
    "config",
    [
        Config(**TINY).to_dict() | {"n_keypoint": 4},  # a typo
        Config(**TINY).to_dict() | {"n_keypoints": 0},  # an invalid value
        "not a dict",
        None,
    ],
    ids=["unknown-key", "invalid-value", "string", "none"],
)
def test_invalid_stored_config_is_a_checkpoint_error(tmp_path, config):
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(CheckpointError, match="stored config is invalid") as caught:
        checkpoint_config({"config": config}, path)
    assert str(path) in str(caught.value)


def test_a_resume_may_change_the_length_device_threads_and_checkpoint_interval():
    saved = Config(**TINY, steps=10, lr=1e-3)
    changed = saved.replace(
        steps=500, device="cpu", threads=1, checkpoint_every=5, checkpoint_minutes=0.5
    )
    ensure_compatible(saved, changed, "run/checkpoint.pt")


@pytest.mark.parametrize(
    "change",
    [
        {"n_keypoints": 6},
        {"width": 32},
        {"encoder": "resnet18"},
        {"heatmap_stride": 2},
        {"image_size": 96},
        {"frame_gap": 8},
        {"batch_size": 8},
        {"lr": 0.5},
        {"seed": 9},
        {"masks": MaskSettings()},
    ],
    ids=lambda change: next(iter(change)),
)
def test_incompatible_config_is_refused_naming_the_setting(change):
    saved = Config(**TINY)
    wanted = saved.replace(**change)
    (key,) = change
    with pytest.raises(CheckpointError, match="cannot resume") as caught:
        ensure_compatible(saved, wanted, "run/checkpoint.pt")
    message = str(caught.value)
    assert message.startswith("run/checkpoint.pt:")
    if key == "masks":  # shown as the settings' values
        assert "masks: checkpoint None vs requested {'method': 'background'" in message
    else:
        assert f"{key}: checkpoint {getattr(saved, key)!r} vs requested {change[key]!r}" in message


def test_incompatible_config_lists_every_difference():
    saved = Config(**TINY)
    with pytest.raises(CheckpointError) as caught:
        ensure_compatible(saved, saved.replace(n_keypoints=6, width=32, steps=1), "ckpt.pt")
    message = str(caught.value)
    assert "n_keypoints: checkpoint 4 vs requested 6" in message
    assert "width: checkpoint 16 vs requested 32" in message
    assert "steps: checkpoint" not in message


def test_file_hash_is_the_sha256_of_the_bytes(tmp_path):
    path = tmp_path / "blob.bin"
    data = np.random.default_rng(0).bytes(2_500_000)  # spans several read blocks
    path.write_bytes(data)
    assert file_hash(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert file_hash(path) != hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_hash(str(empty)) == hashlib.sha256(b"").hexdigest()
