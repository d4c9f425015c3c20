"""Checkpoints: written atomically, read back safely (``weights_only=True``).

A checkpoint holds everything needed to resume a run exactly (model, optimiser,
schedule, random generator states, step) and to use the model alone (config, letterbox,
package version). A stranger's file cannot run code: only tensors and plain Python
containers are loaded.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bkind_model import __version__
from bkind_model.config import Config
from bkind_model.errors import CheckpointError, ConfigError
from bkind_model.io.atomic import atomic_path, require_free, write_failed
from bkind_model.io.results import letterbox_problem

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
    payload = {**state, "format": FORMAT, "version": __version__}
    buffer = io.BytesIO()  # serialised first, so the space it needs is known exactly
    torch.save(payload, buffer)
    data = buffer.getbuffer()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failed(path, exc) from exc
    require_free(path, len(data) / 2**20, margin_mb=1.0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    CheckpointError
        If the file is missing, corrupt, not ours, or would need to run code to load.
    """
    state, _ = load_checkpoint_and_hash(path)
    return state


def load_checkpoint_and_hash(path: str | Path) -> tuple[dict[str, Any], str]:
    """Read a checkpoint and the SHA-256 of exactly the bytes that were loaded.

    The file is read once into memory, so a run that replaces the checkpoint meanwhile
    cannot make the recorded hash name other weights than the ones loaded.

    Returns
    -------
    state : dict
        The checkpoint's content.
    sha256 : str
        Hex digest of the bytes loaded.

    Raises
    ------
    CheckpointError
        If the file is missing, corrupt, not ours, or would need to run code to load.
    """
    path = checkpoint_file(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found. Train first, or check the path.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror}).") from exc
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
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
    check_keys(state, path, CHECKPOINT_KEYS)
    return state, hashlib.sha256(data).hexdigest()


#: A check of one checkpoint key's value: what is wrong with it, or None when it is fine.
KeyCheck = Callable[[Any], "str | None"]


def _describe(value: Any) -> str:
    """A short description of a value found in a checkpoint (for the message)."""
    if isinstance(value, torch.Tensor):
        return f"a {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')} tensor"
    if isinstance(value, str | int | float | bool) or value is None:
        return f"{type(value).__name__} {repr(value)[:40]}"
    return f"a {type(value).__name__} of {len(value)}" if hasattr(value, "__len__") else "?"


def expect(what: str, test: Callable[[Any], bool]) -> KeyCheck:
    """A :data:`KeyCheck` refusing values that fail ``test``, described as ``what``."""
    return lambda value: None if test(value) else f"holds {_describe(value)}, not {what}"


def tensor_check(ndim: int | None = None) -> KeyCheck:
    """A :data:`KeyCheck` for a tensor (of ``ndim`` dimensions when given)."""
    dims = "" if ndim is None else f"{ndim}-D "
    return expect(
        f"a {dims}tensor",
        lambda v: isinstance(v, torch.Tensor) and (ndim is None or v.dim() == ndim),
    )


def count_check(minimum: int = 0) -> KeyCheck:
    """A :data:`KeyCheck` for a whole number ``>= minimum`` (not a bool)."""
    return expect(
        f"a whole number >= {minimum}",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
    )


DICT = expect("a dict", lambda v: isinstance(v, dict))
TEXT = expect("text", lambda v: isinstance(v, str))
TEXTS = expect(
    "a list of text", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)
)


def _weights_problem(value: Any) -> str | None:
    """What is wrong with a model's weights (a dict of named tensors), or None."""
    if not isinstance(value, dict) or not value:
        return f"holds {_describe(value)}, not a model's weights (a dict of named tensors)"
    for name, tensor in value.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            return f"holds {_describe(tensor)} as weight {str(name)[:80]!r}, not a tensor"
    return None


#: What the keys of bkind's checkpoints hold, checked when present on every load. Other
#: kinds of runs check their own keys with :func:`check_keys` and their own table.
CHECKPOINT_KEYS: dict[str, KeyCheck] = {
    "format": TEXT,
    "version": TEXT,
    "config": DICT,
    "model": _weights_problem,
    "step": count_check(),
    "optimizer": DICT,
    "scheduler": DICT,
    "torch_rng": tensor_check(1),
    "history": DICT,
    "videos": TEXTS,
    "world_size": count_check(1),
    "letterbox": letterbox_problem,
    "background": tensor_check(2),
    "mask_background": tensor_check(3),
    "static_mask": tensor_check(2),
}


def check_keys(state: dict[str, Any], path: str | Path, checks: dict[str, KeyCheck]) -> None:
    """Refuse a loaded checkpoint whose keys hold values of the wrong kind.

    Parameters
    ----------
    state : dict
        The loaded checkpoint.
    path : str or Path
        Its file, for the message.
    checks : dict
        Key -> :data:`KeyCheck` (:func:`expect`, :func:`tensor_check`,
        :func:`count_check` ...); keys absent from ``state`` are not checked.

    Raises
    ------
    CheckpointError
        One line naming the file, the first bad key and what it holds.
    """
    for key, check in checks.items():
        problem = check(state[key]) if key in state else None
        if problem is not None:
            raise CheckpointError(
                f"{path}: key {key!r} {problem}; the checkpoint is damaged or was edited. Use "
                "another checkpoint or train again."
            )


def check_finite_weights(state: dict[str, Any], path: str | Path) -> None:
    """Refuse weights holding NaN or infinity (a run that diverged).

    Raises
    ------
    CheckpointError
        Naming the first bad tensor and what to do.
    """
    for name, tensor in state["model"].items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(
                f"{path}: the weights hold NaN or infinite values ({name}); the training "
                "diverged. Train again with a lower lr (or resume from an earlier copy)."
            )


def checkpoint_config(state: dict[str, Any], path: str | Path) -> Config:
    """The run config stored in a loaded checkpoint, with a clear error if it is invalid."""
    try:
        return Config.from_dict(state["config"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: the stored config is invalid ({exc}).") from exc


#: Settings a resumed run may change; they are recorded in its next checkpoint.
RESUMABLE_CHANGES = frozenset(
    {"steps", "minutes", "device", "threads", "checkpoint_every", "checkpoint_minutes"}
)


def ensure_compatible(saved: Config, wanted: Config, path: str | Path) -> None:
    """Refuse to resume a run with settings other than those it was trained with.

    Only :data:`RESUMABLE_CHANGES` may differ (more steps, another device ...); anything
    else (the model, the data, the learning rate ...) would silently make a different run.

    Raises
    ------
    CheckpointError
        Naming each setting that differs, both values, and what to do.
    """
    old, new = saved.to_dict(), wanted.to_dict()
    differ = {
        key: (old[key], new[key])
        for key in old
        if key not in RESUMABLE_CHANGES and old[key] != new.get(key)
    }
    if differ:
        listed = ", ".join(
            f"{k}: checkpoint {a!r} vs requested {b!r}" for k, (a, b) in differ.items()
        )
        raise CheckpointError(
            f"{path}: cannot resume, the checkpoint was trained with other settings ({listed}). "
            "Resume with the checkpoint's settings (only steps, minutes, device, threads and the "
            "checkpoint interval may change), or start a new run in another folder (or "
            "--restart)."
        )


def ensure_same_videos(state: dict[str, Any], videos: list[Path], path: str | Path) -> None:
    """Refuse to resume a run on other videos than it was trained on.

    Parameters
    ----------
    state : dict
        The loaded checkpoint (its ``videos``).
    videos : list of Path
        The videos asked for now.
    path : str or Path
        The checkpoint, for the message.

    Raises
    ------
    CheckpointError
        Showing the videos of the checkpoint and those asked for.
    """
    recorded = [str(Path(v).resolve()) for v in state.get("videos", [])]
    asked = [str(Path(v).resolve()) for v in videos]
    if recorded and recorded != asked:
        raise CheckpointError(
            f"{path}: cannot resume on other videos: the checkpoint was trained on "
            f"{recorded}, now asked for {asked}. Resume with the same videos, or start a new "
            "run in another folder (or --restart)."
        )


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint file a path names: ``<run>/checkpoint.pt`` for a run folder."""
    path = Path(path)
    return path / "checkpoint.pt" if path.is_dir() else path


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file, hex (to record which checkpoint made a result)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
