"""napari writers: a keypoint Points layer -> DeepLabCut predictions or B-KinD results.

The formats live in the engine (:mod:`bkind_model.io.export`, :mod:`bkind_model.io.results`),
which writes every file atomically: saving over an existing file replaces it whole or not
at all. These functions only turn the layer back into a
:class:`~bkind_model.io.results.KeypointResult`.
"""

from __future__ import annotations

from typing import Any

from bkind_model.io.export import write_dlc
from napari_bkind._layers import PATH_KEY, points_to_result


def write_dlc_h5(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a keypoint Points layer as DeepLabCut predictions (HDF5, key ``df_with_missing``)."""
    return [str(write_dlc(points_to_result(data, meta), path))]


def write_dlc_csv(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a keypoint Points layer as DeepLabCut predictions (CSV, 3 header rows)."""
    return [str(write_dlc(points_to_result(data, meta), path))]


def write_results(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a keypoint Points layer as a B-KinD results file.

    When the layer came from a results file that stores heatmaps for the same frames,
    they are copied over, so saving over the original file keeps them.
    """
    result = points_to_result(data, meta)
    source = meta.get("metadata", {}).get(PATH_KEY)
    return [str(result.save(path, heatmaps_from=source))]
