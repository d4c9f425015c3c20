"""Named predictions for refinement in napari-deeplabcut: ``machinelabels-iter0.h5``.

DeepLabCut's refinement step reads predictions of a few extracted frames from
``labeled-data/<video stem>/machinelabels-iter0.h5`` (columns scorer/bodyparts/coords
with ``x, y, likelihood``, rows ``labeled-data/<video stem>/imgNNNN.png``) beside the
frames' PNGs; napari-deeplabcut opens that folder, shows the predictions coloured by
likelihood, and saves the corrected points as ``CollectedData_<scorer>.h5``, which
``bkind name`` reads back to refit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bkind_model.errors import ConfigError
from bkind_model.frames.sampling import evenly_spaced
from bkind_model.io.labels import (
    MACHINE_LABELS,
    image_path,
    write_images,
    write_labels,
)
from bkind_model.io.outputs import check_output
from bkind_model.io.results import KeypointResult

#: Scorer of the predictions (DeepLabCut's first column level).
SCORER = "bkind"
#: Candidates per frame to refine, among which the least likely are taken.
CANDIDATES_PER_FRAME = 10


def frames_to_refine(
    named: KeypointResult, n: int, exclude: np.ndarray | None = None
) -> np.ndarray:
    """The ``n`` frames whose predictions are least likely, spread over the video.

    Among frames spread evenly (:data:`CANDIDATES_PER_FRAME` per frame wanted), those of
    the lowest mean likelihood over the bodyparts; ``exclude`` (labelled frames) are left
    out.

    Returns
    -------
    ndarray
        ``(<= n,)`` sorted int frame numbers.
    """
    candidates = evenly_spaced(named.n_frames, CANDIDATES_PER_FRAME * n)
    if exclude is not None and len(exclude):
        candidates = candidates[~np.isin(candidates, np.asarray(exclude, np.int64))]
    assert named.likelihood is not None
    score = np.nan_to_num(named.likelihood[candidates].mean(axis=1), nan=-1.0)
    return np.sort(candidates[np.argsort(score, kind="stable")[:n]])


def write_machinelabels(
    named: KeypointResult,
    folder: str | Path,
    frames: np.ndarray,
    *,
    scorer: str = SCORER,
    overwrite: bool = False,
) -> Path:
    """Write the PNGs of ``frames`` and their named predictions into a labelled-data folder.

    Parameters
    ----------
    named : KeypointResult
        Named predictions (``kind`` "named", with a likelihood) of a video file.
    folder : str or Path
        The video's ``labeled-data/<video stem>`` folder (made if needed).
    frames : ndarray
        ``(N,)`` frame numbers to write (:func:`frames_to_refine`).
    scorer : str
        The predictions' scorer.
    overwrite : bool
        Replace an existing ``machinelabels-iter0.h5``.

    Returns
    -------
    Path
        The ``machinelabels-iter0.h5``.

    Raises
    ------
    ConfigError
        If ``named`` are not named predictions of a video file.
    ExistingFileError
        If the file exists and ``overwrite`` is False (nothing is written).
    WriteError
        If the folder cannot be written.
    """
    if named.metadata.get("kind") != "named" or named.likelihood is None:
        raise ConfigError(
            f"{named.path or 'these keypoints'}: not named predictions; run `bkind name` first."
        )
    video = named.require_video()
    if video.is_dir():
        raise ConfigError(
            f"{video}: named predictions of an image folder; machinelabels are written for "
            "frames of a video file (name the video's keypoints)."
        )
    folder = Path(folder)
    target = folder / MACHINE_LABELS
    check_output(target, overwrite=overwrite, option="overwrite=True (--overwrite)")
    frames = np.asarray(frames, np.int64)
    write_images(video, frames, folder, overwrite=overwrite)
    return write_labels(
        target,
        named.keypoints[frames],
        named.keypoint_names,
        [image_path(video, int(f), named.n_frames) for f in frames],
        scorer,
        likelihood=named.likelihood[frames],
        overwrite=overwrite,
    )
