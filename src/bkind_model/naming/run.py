"""Naming from files, as ``bkind name`` and the napari widget do it.

Read the discovered keypoints and the labels, match each labels row to its frame, fit the
map, predict every frame, and save the named predictions (and the map) without
replacing a file unless asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bkind_model.io.atomic import ensure_folder
from bkind_model.io.labels import Labels, load_labels, merge_labels
from bkind_model.io.outputs import check_output
from bkind_model.io.results import KeypointResult
from bkind_model.naming.bodyparts import Bodyparts
from bkind_model.naming.features import FeatureSet
from bkind_model.naming.mapping import (
    CANDIDATES,
    NamedMap,
    NamingError,
    fit_best_map,
    labelled_frames,
)

#: Suffix of the named predictions beside the discovered ones (``mouse.named.bkind.h5``).
NAMED_SUFFIX = ".named.bkind.h5"
#: Suffix of the map beside the named predictions (``mouse.named.map.npz``).
MAP_SUFFIX = ".map.npz"


@dataclass
class Naming:
    """A fitted map, its predictions and what it was fitted on.

    Attributes
    ----------
    map : NamedMap
        The map.
    named : KeypointResult
        ``(T, J, 2)`` named predictions of every frame of the results.
    labels : Labels
        The labels it was fitted on (corrections merged in).
    frames : ndarray
        ``(N,)`` frame of the results of each labels row.
    """

    map: NamedMap
    named: KeypointResult
    labels: Labels
    frames: np.ndarray


def default_named_path(results: str | Path) -> Path:
    """``mouse.bkind.h5`` -> ``mouse.named.bkind.h5`` beside it."""
    path = Path(results)
    stem = path.name.removesuffix(".h5").removesuffix(".bkind")
    return path.with_name(stem + NAMED_SUFFIX)


def map_path(named: str | Path) -> Path:
    """Where the map of named predictions is kept: ``mouse.named.map.npz`` beside them."""
    path = Path(named)
    return path.with_name(path.name.removesuffix(".h5").removesuffix(".bkind") + MAP_SUFFIX)


def name_results(
    results: str | Path | KeypointResult,
    labels: str | Path | Labels,
    bodyparts: Bodyparts | None = None,
    *,
    corrections: Labels | None = None,
    candidates: tuple[FeatureSet, ...] = CANDIDATES,
) -> Naming:
    """Fit the map on the labelled frames and name every frame of the results.

    Parameters
    ----------
    results : str, Path or KeypointResult
        Discovered keypoints of the video (``bkind extract``).
    labels : str, Path or Labels
        DeepLabCut labels of some of its frames (``labeled-data/<video stem>/imgNNNN.png``
        rows), or of the images of an image folder the results were extracted on.
    bodyparts : Bodyparts, optional
        The bodyparts to name (by default every bodypart of the labels).
    corrections : Labels, optional
        Corrected or added frames, merged over ``labels`` (a refit).
    candidates : tuple of FeatureSet
        Feature sets to choose from by leave-one-out error (:func:`fit_best_map`).

    Raises
    ------
    ResultsError, LabelsError, NamingError
        One line naming the file and the fix (see :func:`fit_map`, :func:`labelled_frames`);
        also for named predictions passed as the discovered keypoints.
    """
    result = results if isinstance(results, KeypointResult) else KeypointResult.load(results)
    if result.metadata.get("kind") == "named":
        raise NamingError(
            f"{result.path or 'these keypoints'}: named predictions, not discovered keypoints; "
            f"pass the results of `bkind extract` ({result.metadata.get('named_from')})."
        )
    source = labels if not isinstance(labels, Labels) else "the labels"
    truth = labels if isinstance(labels, Labels) else load_labels(labels)
    if corrections is not None:
        truth = merge_labels(truth, corrections)
    frames = labelled_frames(result, truth, source)
    fitted = fit_best_map(result, truth, frames, bodyparts, candidates=candidates, source=source)
    return Naming(fitted, fitted.predict(result), truth, frames)


def save_naming(naming: Naming, out: str | Path, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Save the named predictions (``.bkind.h5``) and the map beside them.

    Raises
    ------
    ExistingFileError
        If either exists and ``overwrite`` is False (nothing is written).
    WriteError
        If the folder cannot be written (read-only ...).
    """
    out = Path(out)
    beside = map_path(out)
    for target in (out, beside):
        check_output(target, overwrite=overwrite, option="overwrite=True (--overwrite)")
    ensure_folder(out.parent)
    return naming.named.save(out), naming.map.save(beside)
