"""3D results: keypoints in world units, how every view saw them, and the learned skeleton.

Layout of ``keypoints3d.h5`` (world units of the calibration; pixels ``(x, y)`` of each
camera's original video with the centre of the top-left pixel at ``(0, 0)``):

==========================  =====================  ======================================
dataset                     shape                  meaning
==========================  =====================  ======================================
``points``                  (T, K, 3) float32      3D keypoints, world units
``detected``                (T, V, K, 2) float32   each view's own estimate, px (below)
``reprojected``             (T, V, K, 2) float32   ``points`` projected into each view, px
``weights``                 (T, V, K) float32      triangulation weight of each view
``scores``                  (T, V, K) float32      each view's 2D score, 0-1 (below)
``reprojection_error``      (T, V, K) float32      ``|detected - reprojected|``, px
``edges``                   (E, 2) int32           the learned skeleton's keypoint pairs
``edge_weights``            (E,) float32           their learned weights
==========================  =====================  ======================================

A view's own estimate of a keypoint is, in the algebraic design, its 2D keypoint (the
soft-argmax of its heatmap), and in the volumetric design the projection into that view
of what its features alone put in the voxel cube; its score is the peak probability of
that heatmap or volume. The reprojection error therefore measures, in pixels of each
view, how far each view on its own is from the 3D keypoints all views agree on: a view
that sees something else (another camera's video, a test pattern) stands out. Files
written before ``scores`` existed read with NaN scores.

Attributes: ``format``, ``fps``, ``camera_names``, ``cameras`` (JSON list of anipose
camera entries), ``keypoint_names``, ``config`` and ``settings3d`` (JSON),
``checkpoint``, ``videos``, ``offsets``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from bkind_model.errors import BKindError
from bkind_model.io.atomic import atomic_path
from bkind_model.io.results import read_attributes, write_attributes
from bkind_model.multiview.cameras import Camera
from bkind_model.pose.skeleton import spanning_tree

FORMAT = "bkind-results3d-1"
_JSON_ATTRIBUTES = ("config", "settings3d", "cameras", "letterboxes")
_ARRAYS = ("points", "detected", "reprojected", "weights", "scores", "reprojection_error")


class Results3DError(BKindError):
    """A 3D results file cannot be read."""


@dataclass
class Result3D:
    """3D keypoints of one session (see the module for units).

    Attributes
    ----------
    points : ndarray
        ``(T, K, 3)``.
    detected, reprojected : ndarray
        ``(T, V, K, 2)`` px.
    weights : ndarray
        ``(T, V, K)``.
    scores : ndarray
        ``(T, V, K)`` each view's 2D score in [0, 1] (NaN: unknown).
    edges : ndarray
        ``(E, 2)`` int keypoint pairs of the learned skeleton.
    edge_weights : ndarray
        ``(E,)``.
    metadata : dict
        The attributes of the file.
    """

    points: np.ndarray
    detected: np.ndarray
    reprojected: np.ndarray
    weights: np.ndarray
    edges: np.ndarray
    edge_weights: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.scores is None:
            self.scores = np.full(self.weights.shape, np.nan, np.float32)

    @property
    def reprojection_error(self) -> np.ndarray:
        """``(T, V, K)`` px between each view's keypoints and the reprojected 3D ones."""
        return np.linalg.norm(self.detected - self.reprojected, axis=-1)

    @property
    def camera_names(self) -> list[str]:
        """The views, in order."""
        return list(self.metadata.get("camera_names", []))

    @property
    def cameras(self) -> list[Camera]:
        """The cameras the points were triangulated with."""
        return [Camera.from_dict(c) for c in self.metadata.get("cameras", [])]

    @property
    def keypoint_names(self) -> list[str]:
        """K names."""
        names = self.metadata.get("keypoint_names")
        k = self.points.shape[1]
        return list(names) if names else [f"kp{i}" for i in range(k)]

    def per_view_error(self) -> dict[str, float]:
        """Median reprojection error of each view, px.

        Each view's own estimate against the 3D keypoints' projection into it (see the
        module).
        """
        errors = self.reprojection_error
        return {
            name: float(np.nanmedian(errors[:, v])) for v, name in enumerate(self.camera_names)
        }

    def save(self, path: str | Path) -> Path:
        """Write the results atomically."""
        path = Path(path)
        with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            write_attributes(f, self.metadata)
            for name in _ARRAYS:
                f.create_dataset(name, data=np.asarray(getattr(self, name), np.float32))
            f.create_dataset("edges", data=np.asarray(self.edges, np.int32).reshape(-1, 2))
            f.create_dataset("edge_weights", data=np.asarray(self.edge_weights, np.float32))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Result3D:
        """Read a file written by :meth:`save`.

        Raises
        ------
        Results3DError
            Missing, not HDF5, or not a 3D results file.
        """
        path = Path(path)
        if not path.is_file():
            raise Results3DError(f"{path}: 3D results not found. Run `bkind extract3d` first.")
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("format") != FORMAT:
                    raise Results3DError(
                        f"{path}: not a bkind 3D results file; pass the output of "
                        "`bkind extract3d`."
                    )
                metadata = read_attributes(f, _JSON_ATTRIBUTES)
                names = [n for n in (*_ARRAYS, "edges", "edge_weights") if n != "scores"]
                names += ["scores"] if "scores" in f else []  # older files: NaN scores
                arrays = {name: f[name][()] for name in names}
        except (OSError, KeyError) as exc:
            raise Results3DError(
                f"{path}: cannot read as 3D results ({exc}); extract again."
            ) from exc
        del arrays["reprojection_error"]
        return cls(**arrays, metadata=metadata)


def skeleton_edges(weights: np.ndarray, n_keypoints: int) -> np.ndarray:
    """The learned skeleton: a maximum spanning tree of the edge weights.

    Parameters
    ----------
    weights : ndarray
        ``(K * (K - 1) / 2,)`` weights of the pairs ``i < j`` (row-major upper triangle).
    n_keypoints : int
        K.

    Returns
    -------
    ndarray
        ``(K - 1, 2)`` int pairs ``(i, j)``, strongest first.
    """
    matrix = np.full((n_keypoints, n_keypoints), np.nan)
    matrix[np.triu_indices(n_keypoints, 1)] = weights
    edges = spanning_tree(matrix, largest=True)
    return np.array(edges, dtype=np.int32).reshape(-1, 2)
