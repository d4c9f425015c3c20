"""Ethograms: which behaviour (or motif) each frame of a video shows, and how likely.

A classifier's or the motif finder's per-frame probabilities are smoothed over a few
frames, and each frame gets the most probable behaviour when its probability reaches a
threshold (else none). Saved as the frame x behaviour CSV of :mod:`labels` with the
probabilities as extra columns, so an exported ethogram reads back as labels.

A frame whose keypoints are missing (:func:`~bkind_model.behaviour.features.known_frames`)
is *unknown*: its probabilities are NaN (empty cells in the CSV) and it has no behaviour
(a row of zeros), never a confident guess; smoothing averages over known frames only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from bkind_model.behaviour import BehaviourError
from bkind_model.behaviour.labels import (
    PROBABILITY_SUFFIX,
    UNLABELLED,
    BehaviourLabels,
    check_names,
    frame_codes,
    frame_table,
    labels_from_codes,
    read_table,
    write_table,
)


@dataclass(frozen=True)
class Ethogram:
    """Behaviour per frame of one video.

    Attributes
    ----------
    video : str
        The video's file name (:func:`~bkind_model.behaviour.labels.video_key`).
    names : list of str
        Behaviours or motifs, the columns.
    probabilities : ndarray
        ``(T, B)`` float32 probability of each behaviour per frame (rows sum to 1; NaN
        rows for unknown frames, whose keypoints are missing).
    codes : ndarray
        ``(T,)`` int16 index of each frame's behaviour into ``names``, -1 for none
        (below the threshold, or unknown).
    """

    video: str
    names: list[str]
    probabilities: np.ndarray
    codes: np.ndarray

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return len(self.codes)

    def binary(self) -> np.ndarray:
        """``(T, B)`` uint8: 1 where a frame shows a behaviour (at most one per row)."""
        return (self.codes[:, None] == np.arange(len(self.names))).astype(np.uint8)

    def renamed(self, names: Sequence[str]) -> Ethogram:
        """The same ethogram with new names for its columns (e.g. motifs named by a user)."""
        names = check_names(names, f"names for the ethogram of {self.video}")
        if len(names) != len(self.names):
            raise BehaviourError(
                f"{self.video}: {len(names)} names for {len(self.names)} columns; give one "
                "name per column."
            )
        return replace(self, names=names)

    def as_labels(self) -> BehaviourLabels:
        """Every frame with a behaviour as a label: predictions to correct and retrain on."""
        return labels_from_codes(self.names, {self.video: self.codes})


def ethogram_from_probabilities(
    video: str,
    names: Sequence[str],
    probabilities: np.ndarray,
    smooth_frames: int = 1,
    threshold: float = 0.0,
) -> Ethogram:
    """Smooth per-frame probabilities and pick each frame's behaviour.

    Parameters
    ----------
    video : str
        The video's file name.
    names : sequence of str
        The ``B`` behaviours.
    probabilities : ndarray
        ``(T, B)`` probabilities per frame; rows with a NaN are unknown frames.
    smooth_frames : int
        Length of the centred moving average over frames applied first (1: none); it
        averages the known frames of each window.
    threshold : float
        Smallest smoothed probability that gives a frame a behaviour; frames whose most
        probable behaviour is below it get none (-1). 0 gives every known frame one.

    Returns
    -------
    Ethogram
        With the smoothed probabilities (NaN rows and no behaviour for unknown frames).
    """
    values = np.asarray(probabilities, np.float64)
    known = np.asarray(np.isfinite(values).all(axis=1))
    values = np.where(known[:, None], values, 0.0)
    if smooth_frames > 1 and len(values) > 1:
        size = int(min(smooth_frames, len(values)))
        total = ndimage.uniform_filter1d(values, size, axis=0, mode="nearest")
        weight = ndimage.uniform_filter1d(known.astype(np.float64), size, mode="nearest")
        values = total / np.maximum(weight, 1e-12)[:, None]
    best = values.argmax(axis=1)
    sure = known & (values[np.arange(len(values)), best] >= threshold)
    codes = np.where(sure, best, UNLABELLED).astype(np.int16)
    values[~known] = np.nan
    return Ethogram(video, list(names), values.astype(np.float32), codes)


def write_ethograms(
    path: str | Path, ethograms: Sequence[Ethogram], overwrite: bool = False
) -> Path:
    """Write ethograms of one or more videos as one frame x behaviour CSV.

    Columns ``video,frame,<name>...`` (0/1) then ``<name>_probability``.

    Raises
    ------
    BehaviourError
        When the ethograms have different names.
    ExistingFileError
        When ``path`` exists and ``overwrite`` is False (nothing is written).
    WriteError
        When the folder cannot be written; the previous file is intact.
    """
    if not ethograms:
        raise BehaviourError(f"{path}: no ethogram to write; predict or find motifs first.")
    names = ethograms[0].names
    if any(e.names != names for e in ethograms):
        raise BehaviourError(
            f"{path}: the ethograms name different behaviours; rename them alike."
        )
    codes = {e.video: e.codes for e in ethograms}
    probabilities = {e.video: e.probabilities for e in ethograms}
    return write_table(path, frame_table(names, codes, probabilities), overwrite)


def read_ethograms(path: str | Path) -> list[Ethogram]:
    """Read the ethograms of a frame x behaviour CSV (probabilities 0/1 when absent)."""
    path = Path(path)
    table = read_table(path)
    names, codes = frame_codes(table, path)
    columns = [name + PROBABILITY_SUFFIX for name in names]
    ethograms = []
    for video, video_codes in codes.items():
        rows = table[table["video"].astype(str) == video]
        if set(columns) <= set(table.columns):
            probabilities = rows[columns].to_numpy(np.float32)
        else:
            probabilities = (video_codes[:, None] == np.arange(len(names))).astype(np.float32)
        ethograms.append(Ethogram(video, names, probabilities, video_codes))
    return ethograms
