"""Checkpoints: written atomically, read back safely (``weights_only=True``).

A checkpoint holds everything needed to resume a run exactly (model, optimiser,
schedule, random generator states, step) and to use the model alone (config, letterbox,
package version). A stranger's file cannot run code: only tensors and plain Python
containers are loaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from bkind_model import __version__
from bkind_model.config import Config
from bkind_model.errors import CheckpointError, ConfigError
from bkind_model.io.atomic import atomic_path

FORMAT = "bkind-checkpoint-1"
REQUIRED_KEYS = ("format", "config", "model", "step")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically: a reader never sees a half-written file.

    Parameters
    ----------
    path : str or Path
        Destination, usually ``<run>/checkpoint.pt``.
    state : dict
        At least ``config`` (a dict), ``model`` (a state dict) and ``step``.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": __version__, **state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    CheckpointError
        If the file is missing, corrupt, not ours, or would need to run code to load.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found. Train first, or check the path.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(
            f"{path}: not a readable bkind checkpoint ({type(exc).__name__}). The file is "
            "corrupt, truncated or was not written by bkind; use another checkpoint or train "
            "again."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a bkind checkpoint. Use a file written by `bkind train`."
        )
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}; it is damaged.")
    return state


def checkpoint_config(state: dict[str, Any], path: str | Path) -> Config:
    """The run config stored in a loaded checkpoint, with a clear error if it is invalid."""
    try:
        return Config.from_dict(state["config"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: the stored config is invalid ({exc}).") from exc


def ensure_compatible(saved: Config, wanted: Config, path: str | Path) -> None:
    """Refuse to resume a run whose model shapes or data settings differ.

    Raises
    ------
    CheckpointError
        Naming each setting that differs and what to do.
    """
    keys = (
        *saved.architecture(),
        "image_size",
        "crop_size",
        "frame_gap",
        "gap_unit",
        "batch_size",
        "masks",
    )
    differ = {
        key: (getattr(saved, key), getattr(wanted, key))
        for key in keys
        if getattr(saved, key) != getattr(wanted, key)
    }
    if differ:
        listed = ", ".join(
            f"{k}: checkpoint {a!r} vs requested {b!r}" for k, (a, b) in differ.items()
        )
        raise CheckpointError(
            f"{path}: cannot resume, the checkpoint was trained with other settings ({listed}). "
            "Use the checkpoint's settings, or start a new run in another folder."
        )


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file, hex (to record which checkpoint made a result)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
