"""Pinhole cameras with lens distortion: projection, its inverse, triangulation.

A :class:`Camera` holds one calibrated camera with the parameters of an anipose
``calibration.toml`` (OpenCV's model: ``x_cam = R @ X + t``; five distortion coefficients
``k1, k2, p1, p2, k3``). A :class:`CameraRig` stacks several as tensors so that the same
code projects and triangulates numpy arrays (float64) and the model's batches (float32,
on any device, differentiable).

Pixels are ``(x, y)`` with the centre of the top-left pixel at ``(0, 0)`` (OpenCV's
convention and the 2D engine's). *Normalised* image coordinates are ``(X / Z, Y / Z)`` in
the camera frame, before distortion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

#: Fixed-point iterations of :meth:`CameraRig.undistort` (OpenCV's ``undistortPoints``
#: uses 5; 20 converge to 1e-6 px for the distortion of lab lenses).
UNDISTORT_ITERATIONS = 20


def rodrigues(vector: np.ndarray) -> np.ndarray:
    """Rotation matrix ``(3, 3)`` of a Rodrigues vector ``(3,)`` (axis times angle, rad)."""
    vector = np.asarray(vector, dtype=np.float64).reshape(3)
    angle = float(np.linalg.norm(vector))
    if angle < 1e-12:
        return np.eye(3)
    k = vector / angle
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def rodrigues_vector(matrix: np.ndarray) -> np.ndarray:
    """Rodrigues vector ``(3,)`` of a rotation matrix ``(3, 3)`` (inverse of :func:`rodrigues`).

    The angle is ``atan2(sin, cos)`` from the antisymmetric part and the trace (accurate at
    every angle); within 1e-4 rad of a half turn, where the antisymmetric part vanishes,
    the axis comes from the symmetric part and only its sign from the antisymmetric part.
    """
    r = np.asarray(matrix, dtype=np.float64)
    twice_sin_axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    sin = float(np.linalg.norm(twice_sin_axis)) / 2
    cos = (float(np.trace(r)) - 1) / 2
    angle = float(np.arctan2(sin, cos))
    if cos >= 0 or sin > 1e-4:
        return twice_sin_axis * (0.5 if sin < 1e-300 else angle / (2 * sin))
    # near a half turn: (R + R^T) / 2 - cos I = (1 - cos) k k^T
    outer = (r + r.T) / 2 - cos * np.eye(3)
    i = int(np.argmax(np.diag(outer)))
    axis = outer[:, i] / np.sqrt(outer[i, i] * (1 - cos))
    if axis @ twice_sin_axis < 0:
        axis = -axis
    return angle * axis


def look_at(
    position: np.ndarray, target: np.ndarray, up: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rotation (Rodrigues) and translation of a camera at ``position`` looking at ``target``.

    Parameters
    ----------
    position, target : ndarray
        ``(3,)`` world coordinates of the camera centre and of the point it looks at.
    up : ndarray
        ``(3,)`` world direction that appears upwards in the image (towards smaller y).

    Returns
    -------
    rotation : ndarray
        ``(3,)`` Rodrigues vector of the world-to-camera rotation.
    translation : ndarray
        ``(3,)`` world-to-camera translation.
    """
    position = np.asarray(position, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])  # rows: camera x, y, z axes in the world
    return rodrigues_vector(rotation), -rotation @ position


@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated camera.

    Attributes
    ----------
    name : str
        The camera's name (videos are matched to it by file name).
    size : tuple of int
        ``(width, height)`` of its images in pixels (anipose's order).
    matrix : ndarray
        ``(3, 3)`` intrinsic matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``, pixels.
    distortions : ndarray
        ``(5,)`` OpenCV distortion coefficients ``k1, k2, p1, p2, k3``.
    rotation : ndarray
        ``(3,)`` Rodrigues vector of the world-to-camera rotation, radians.
    translation : ndarray
        ``(3,)`` world-to-camera translation, world units.
    """

    name: str
    size: tuple[int, int]
    matrix: np.ndarray
    distortions: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray

    @property
    def rotation_matrix(self) -> np.ndarray:
        """``(3, 3)`` world-to-camera rotation."""
        return rodrigues(self.rotation)

    @property
    def centre(self) -> np.ndarray:
        """``(3,)`` the camera's optical centre in world coordinates."""
        return -self.rotation_matrix.T @ np.asarray(self.translation, dtype=np.float64)

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(height, width)`` of its images, pixels (the frames' order)."""
        return (int(self.size[1]), int(self.size[0]))

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` -> pixels ``(..., 2)`` in this camera, with distortion."""
        return CameraRig([self]).project_numpy(points)[..., 0, :]

    def to_dict(self) -> dict[str, Any]:
        """The camera as plain lists, anipose's keys (calibration files, checkpoints)."""
        return {
            "name": self.name,
            "size": [int(v) for v in self.size],
            "matrix": np.asarray(self.matrix, np.float64).tolist(),
            "distortions": np.asarray(self.distortions, np.float64).tolist(),
            "rotation": np.asarray(self.rotation, np.float64).ravel().tolist(),
            "translation": np.asarray(self.translation, np.float64).tolist(),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Camera:
        """Inverse of :meth:`to_dict` (values already checked)."""
        return cls(
            name=str(values["name"]),
            size=(int(values["size"][0]), int(values["size"][1])),
            matrix=np.asarray(values["matrix"], np.float64),
            distortions=np.asarray(values["distortions"], np.float64),
            rotation=np.asarray(values["rotation"], np.float64),
            translation=np.asarray(values["translation"], np.float64),
        )

    def same_parameters(self, other: Camera, tolerance: float = 1e-9) -> bool:
        """Whether ``other`` has the same intrinsics and pose (a copied entry)."""
        mine = np.concatenate([self.matrix.ravel(), self.rotation, self.translation])
        theirs = np.concatenate([other.matrix.ravel(), other.rotation, other.translation])
        return bool(np.allclose(mine, theirs, rtol=0, atol=tolerance * (1 + np.abs(mine).max())))


def _five(distortions: np.ndarray) -> np.ndarray:
    """``k1, k2, p1, p2, k3`` ``(5,)``: four coefficients get ``k3 = 0``."""
    d = np.asarray(distortions, np.float64).ravel()[:5]
    return np.concatenate([d, np.zeros(5 - len(d))])


class CameraRig:
    """Several cameras as stacked tensors, for batched projection and triangulation.

    Parameters
    ----------
    cameras : sequence of Camera
        The V cameras, in the order of the views.
    dtype, device
        Of the stacked parameters (float64 on the CPU by default).

    Attributes
    ----------
    rotations : Tensor
        ``(V, 3, 3)`` world-to-camera rotations.
    translations : Tensor
        ``(V, 3)``.
    matrices : Tensor
        ``(V, 3, 3)`` intrinsics.
    distortions : Tensor
        ``(V, 5)``.
    """

    def __init__(
        self,
        cameras: Sequence[Camera],
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
    ) -> None:
        self.cameras = list(cameras)
        self.names = [c.name for c in self.cameras]

        def stack(values: list[np.ndarray]) -> Tensor:
            return torch.as_tensor(np.stack(values), dtype=dtype, device=device)

        self.rotations = stack([c.rotation_matrix for c in self.cameras])
        self.translations = stack([np.asarray(c.translation, np.float64) for c in self.cameras])
        self.matrices = stack([np.asarray(c.matrix, np.float64) for c in self.cameras])
        self.distortions = stack([_five(c.distortions) for c in self.cameras])

    def __len__(self) -> int:
        return len(self.cameras)

    def to(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> CameraRig:
        """A copy with parameters of another dtype or device."""
        rig = CameraRig.__new__(CameraRig)
        rig.cameras, rig.names = self.cameras, self.names
        for name in ("rotations", "translations", "matrices", "distortions"):
            setattr(rig, name, getattr(self, name).to(dtype=dtype, device=device))
        return rig

    def to_camera(self, points: Tensor) -> Tensor:
        """World points ``(..., 3)`` -> camera-frame points ``(..., V, 3)``."""
        return torch.einsum("vij,...j->...vi", self.rotations, points) + self.translations

    def depth(self, points: Tensor) -> Tensor:
        """World points ``(..., 3)`` -> depth along each optical axis ``(..., V)``, world units."""
        return self.to_camera(points)[..., 2]

    def project(self, points: Tensor, min_depth: float = 1e-6) -> Tensor:
        """World points ``(..., 3)`` -> pixels ``(..., V, 2)`` in every camera.

        Points behind a camera (depth below ``min_depth``) are projected as if at
        ``min_depth``: finite, far outside the image.
        """
        cam = self.to_camera(points)
        z = cam[..., 2:3].clamp(min=min_depth)
        return self.to_pixels(self.distort(cam[..., :2] / z))

    def distort(self, normalised: Tensor) -> Tensor:
        """Normalised coordinates ``(..., V, 2)`` -> distorted normalised coordinates."""
        k1, k2, p1, p2, k3 = self.distortions.unbind(-1)  # each (V,)
        x, y = normalised[..., 0], normalised[..., 1]
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        return torch.stack([xd, yd], -1)

    def to_pixels(self, distorted: Tensor) -> Tensor:
        """Distorted normalised coordinates ``(..., V, 2)`` -> pixels through the intrinsics."""
        m = self.matrices
        x = m[:, 0, 0] * distorted[..., 0] + m[:, 0, 1] * distorted[..., 1] + m[:, 0, 2]
        y = m[:, 1, 1] * distorted[..., 1] + m[:, 1, 2]
        return torch.stack([x, y], -1)

    def from_pixels(self, pixels: Tensor) -> Tensor:
        """Pixels ``(..., V, 2)`` -> distorted normalised coordinates (:meth:`to_pixels` undone)."""
        m = self.matrices
        yd = (pixels[..., 1] - m[:, 1, 2]) / m[:, 1, 1]
        xd = (pixels[..., 0] - m[:, 0, 2] - m[:, 0, 1] * yd) / m[:, 0, 0]
        return torch.stack([xd, yd], -1)

    def undistort(self, pixels: Tensor, iterations: int = UNDISTORT_ITERATIONS) -> Tensor:
        """Pixels ``(..., V, 2)`` -> normalised (undistorted) coordinates ``(..., V, 2)``.

        Inverts :meth:`project` up to the depth: the fixed-point iteration of OpenCV's
        ``undistortPoints``, differentiable.
        """
        xd, yd = self.from_pixels(pixels).unbind(-1)
        k1, k2, p1, p2, k3 = self.distortions.unbind(-1)
        x, y = xd, yd
        for _ in range(iterations):
            r2 = x * x + y * y
            radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
            dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
            dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
            x = (xd - dx) / radial
            y = (yd - dy) / radial
        return torch.stack([x, y], -1)

    def rays(self, pixels: Tensor) -> tuple[Tensor, Tensor]:
        """Pixels ``(..., V, 2)`` -> rays: origins ``(V, 3)`` and unit directions ``(..., V, 3)``."""
        normalised = self.undistort(pixels)
        camera = torch.cat([normalised, torch.ones_like(normalised[..., :1])], -1)
        world = torch.einsum("vji,...vj->...vi", self.rotations, camera)
        origins = -torch.einsum("vji,vj->vi", self.rotations, self.translations)
        return origins, world / world.norm(dim=-1, keepdim=True)

    def triangulate(self, pixels: Tensor, weights: Tensor | None = None) -> Tensor:
        """Linear (DLT) triangulation of pixels seen in every view, weighted per view.

        Parameters
        ----------
        pixels : Tensor
            ``(..., V, 2)`` the same point in each view, pixels (distorted, as seen).
        weights : Tensor, optional
            ``(..., V)`` confidence of each view (>= 0; 0 leaves a view out); equal when
            None. At least two views need positive weight.

        Returns
        -------
        Tensor
            ``(..., 3)`` world points minimising the weighted algebraic error (the
            inhomogeneous DLT: differentiable, a 3x3 solve per point).
        """
        normalised = self.undistort(pixels)
        p = torch.cat([self.rotations, self.translations.unsqueeze(-1)], -1)  # (V, 3, 4)
        rows_x = normalised[..., 0:1] * p[:, 2] - p[:, 0]  # (..., V, 4)
        rows_y = normalised[..., 1:2] * p[:, 2] - p[:, 1]
        if weights is None:
            weights = torch.ones_like(normalised[..., 0])
        w = weights.unsqueeze(-1)
        rows = torch.cat([rows_x * w, rows_y * w], -2)  # (..., 2V, 4)
        a, b = rows[..., :3], -rows[..., 3]
        normal = a.transpose(-1, -2) @ a
        ridge = 1e-9 * normal.diagonal(dim1=-2, dim2=-1).sum(-1).clamp(min=1e-12)
        normal = normal + ridge[..., None, None] * torch.eye(3, dtype=a.dtype, device=a.device)
        return torch.linalg.solve(normal, (a.transpose(-1, -2) @ b.unsqueeze(-1)))[..., 0]

    # numpy conveniences (float64, same code)
    def project_numpy(self, points: np.ndarray) -> np.ndarray:
        """:meth:`project` on a numpy array ``(..., 3)`` -> ``(..., V, 2)`` float64."""
        return self.project(torch.as_tensor(np.asarray(points, np.float64))).numpy()

    def triangulate_numpy(
        self, pixels: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """:meth:`triangulate` on numpy arrays ``(..., V, 2)`` -> ``(..., 3)`` float64.

        Points with fewer than two finite, positively weighted views are NaN.
        """
        pixels = np.asarray(pixels, np.float64)
        finite = np.isfinite(pixels).all(-1)
        w = np.ones(pixels.shape[:-1]) if weights is None else np.asarray(weights, np.float64)
        w = np.where(finite & np.isfinite(w), w, 0.0)
        enough = (w > 0).sum(-1) >= 2
        safe = np.where(finite[..., None], pixels, 0.0)
        points = self.triangulate(
            torch.as_tensor(safe), torch.as_tensor(np.where(enough[..., None], w, 1.0))
        ).numpy()
        return np.where(enough[..., None], points, np.nan)

    def reprojection_error(self, points: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        """Distance ``(..., V)`` in pixels between projected ``points (..., 3)`` and ``pixels (..., V, 2)``."""
        return np.linalg.norm(self.project_numpy(points) - np.asarray(pixels, np.float64), axis=-1)
