"""Labelled joints for evaluation, read from DeepLabCut labels files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bkind_model.errors import BKindError


class LabelsError(BKindError):
    """A labels file cannot be read or does not fit the keypoints it is compared with."""


@dataclass
class Labels:
    """Labelled joints of N frames.

    Attributes
    ----------
    joints : ndarray
        ``(N, J, 2)`` (x, y) px; NaN where a joint is not labelled.
    names : list of str
        The J joint names.
    frames : list of str
        One identifier per labelled frame (an image path, or a frame number).
    body_length : float
        Median distance between the first and the last joint of ``body_axis``, px.
    """

    joints: np.ndarray
    names: list[str]
    frames: list[str]
    body_length: float


def _median_distance(joints: np.ndarray, a: int, b: int) -> float:
    return float(np.nanmedian(np.linalg.norm(joints[:, a] - joints[:, b], axis=-1)))


def load_labels(path: str | Path, body_axis: tuple[str, str] | None = None) -> Labels:
    """Read labelled joints from a DeepLabCut labels file.

    Parameters
    ----------
    path : str or Path
        A DeepLabCut ``CollectedData_*.h5`` / ``.csv`` (single animal).
    body_axis : tuple of str, optional
        Two joints whose median distance normalises errors (see :func:`labels_from_joints`).

    Raises
    ------
    LabelsError
        For a missing file or an unknown layout.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelsError(f"{path}: labels file not found.")
    if path.suffix.lower() not in (".h5", ".csv"):
        raise LabelsError(f"{path}: unknown labels format; use a DeepLabCut .h5/.csv or a .npz.")
    joints, names, frames = _read_deeplabcut(path)
    return labels_from_joints(joints, names, frames, body_axis)


def labels_from_joints(
    joints: np.ndarray,
    names: list[str],
    frames: list[str],
    body_axis: tuple[str, str] | None = None,
) -> Labels:
    """Labels from joint arrays, with the body length that normalises errors.

    Parameters
    ----------
    joints : ndarray
        ``(N, J, 2)`` (x, y) px; NaN where not labelled.
    names : list of str
        The J joint names.
    frames : list of str
        One identifier per frame.
    body_axis : tuple of str, optional
        Two joints whose median distance is the body length. Default: ``snout`` and
        ``tailbase``/``tail_base`` when present, else the first and last joint.
    """
    if body_axis is None:
        first = "snout" if "snout" in names else names[0]
        last = next((n for n in ("tailbase", "tail_base") if n in names), names[-1])
        body_axis = (first, last)
    length = _median_distance(joints, names.index(body_axis[0]), names.index(body_axis[1]))
    return Labels(joints, names, frames, length)


def _read_deeplabcut(path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    try:
        if path.suffix.lower() == ".h5":
            frame = pd.read_hdf(path)
        else:
            frame = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise LabelsError(f"{path}: not a readable DeepLabCut labels file ({exc}).") from exc
    columns = frame.columns
    if columns.nlevels == 4:
        raise LabelsError(f"{path}: multi-animal labels are not supported yet; use one animal.")
    if columns.nlevels != 3 or "bodyparts" not in columns.names:
        raise LabelsError(f"{path}: expected DeepLabCut columns scorer/bodyparts/coords.")
    names = list(dict.fromkeys(columns.get_level_values("bodyparts")))
    flat = frame.droplevel("scorer", axis=1)
    x = flat[[(name, "x") for name in names]].to_numpy(np.float64)
    y = flat[[(name, "y") for name in names]].to_numpy(np.float64)
    joints = np.stack([x, y], axis=-1)
    index = ["/".join(i) if isinstance(i, tuple) else str(i) for i in frame.index]
    return joints, names, index
