"""BKinD-3D: 3D keypoints that every view agrees on, reprojected into every view's decoder.

Every view of a synchronised frame goes through the 2D network's encoder
(:class:`~bkind_model.model.network.BKinD`, weights shared by the views). Two designs turn
that into K 3D keypoints:

* **algebraic**: the 2D keypoint head and soft-argmax give K keypoints per view with a
  confidence; a confidence-weighted differentiable triangulation
  (:meth:`~bkind_model.multiview.cameras.CameraRig.triangulate`) makes keypoint ``k`` of
  all views one 3D point.
* **volumetric** (BKinD-3D's): a cube of voxels follows the animal's triangulated centre;
  every voxel centre is projected into every view, the views' features sampled there are
  averaged, a small 3D conv net gives K volumes and a 3D soft-argmax the points.

Either way the points are projected back into every view (lens distortion included), and
those *reprojections* drive each view's decoder, so a keypoint explains a view's motion
only where all views agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from bkind_model.config import Config
from bkind_model.frames.letterbox import Letterbox
from bkind_model.model.keypoints import Keypoints, soft_argmax
from bkind_model.model.network import BKinD
from bkind_model.multiview.calibration import attention_centre
from bkind_model.multiview.cameras import Camera, CameraRig
from bkind_model.multiview.data import ViewInputs
from bkind_model.multiview.settings import Settings3D


def square_letterbox(source_size: tuple[int, int], side: int) -> Letterbox:
    """Whole frames of ``source_size`` ``(H, W)`` scaled into a ``side`` x ``side`` input.

    Every view gets the same input size so that all views of a batch share one pass of
    the encoder, whatever each camera's resolution and aspect ratio.
    """
    height, width = source_size
    scale = side / max(height, width)
    resized = (round(height * scale), round(width * scale))
    pad = ((side - resized[0]) // 2, (side - resized[1]) // 2)
    return Letterbox((int(height), int(width)), (side, side), scale, pad)


class ViewGeometry:
    """The cameras and each view's letterbox, as tensors: model units <-> world.

    Parameters
    ----------
    cameras : list of Camera
        The V cameras in view order.
    letterboxes : list of Letterbox
        How each view's frames become model inputs (one input size for all).
    device : torch.device or str
        Where the tensors live.

    Attributes
    ----------
    rig : CameraRig
        float32 cameras on ``device``.
    scene_scale : float
        Width of the scene seen at the cameras' centre of attention, world units
        (median over the views): the length the 3D losses are measured against.
    """

    def __init__(
        self, cameras: list[Camera], letterboxes: list[Letterbox], device: torch.device | str
    ) -> None:
        self.cameras, self.letterboxes = cameras, letterboxes
        self.rig = CameraRig(cameras, torch.float32, device)
        size = letterboxes[0].input_size
        if any(lb.input_size != size for lb in letterboxes):
            raise ValueError("every view needs the same input size (square_letterbox)")
        self.input_wh = torch.tensor([size[1], size[0]], dtype=torch.float32, device=device)
        scales = [
            [lb.resized_size[1] / lb.source_size[1], lb.resized_size[0] / lb.source_size[0]]
            for lb in letterboxes
        ]
        self.scales = torch.tensor(scales, dtype=torch.float32, device=device)  # (V, 2)
        self.scene_scale = scene_scale(cameras)

    def to_pixels(self, uv: Tensor, offsets: Tensor) -> Tensor:
        """Normalised input coordinates ``(..., V, 2)`` -> source pixels of each view.

        ``offsets`` ``(..., V, 2)`` are the input windows' corners in pixels at model scale
        (:class:`~bkind_model.multiview.data.ViewInputs`).
        """
        edge = (uv + 1.0) * self.input_wh / 2.0
        return (edge + offsets) / self.scales - 0.5

    def to_normalised(self, pixels: Tensor, offsets: Tensor) -> Tensor:
        """Source pixels ``(..., V, 2)`` -> normalised coordinates of each view's window."""
        return 2.0 * ((pixels + 0.5) * self.scales - offsets) / self.input_wh - 1.0


def scene_scale(cameras: list[Camera]) -> float:
    """Median width, world units, that each camera's image spans at the attention point."""
    point = attention_centre(cameras)
    widths = []
    for camera in cameras:
        depth = float(camera.rotation_matrix[2] @ (point - camera.centre))
        widths.append(abs(depth) * camera.size[0] / float(camera.matrix[0, 0]))
    return float(np.median(widths))


def window_size(cameras: list[Camera], crops: list[float]) -> float:
    """Median side, world units, of the views' windows at the cameras' centre of attention.

    ``crops`` are the windows' sides in source pixels (0: the whole frame).
    """
    point = attention_centre(cameras)
    sizes = []
    for camera, crop in zip(cameras, crops, strict=True):
        depth = abs(float(camera.rotation_matrix[2] @ (point - camera.centre)))
        side = crop or max(camera.size)
        sizes.append(side * depth / float(camera.matrix[0, 0]))
    return float(np.median(sizes))


@dataclass
class Output3D:
    """One forward pass on a batch of synchronised pairs.

    Attributes
    ----------
    points_a, points_b : Tensor
        ``(B, K, 3)`` 3D keypoints of frames ``t`` and ``t + gap``, world units.
    detected_a, detected_b : Tensor
        ``(B, V, K, 2)`` each view's own 2D keypoints, normalised input units.
    reprojected_a, reprojected_b : Tensor
        ``(B, V, K, 2)`` the 3D keypoints projected into each view, normalised units.
    weights_a, weights_b : Tensor
        ``(B, V, K)`` triangulation weight of each view (sums to 1 over views).
    reconstruction : Tensor or None
        ``(B * V, 1, H, W)`` predicted structural dissimilarity of each view.
    """

    points_a: Tensor
    points_b: Tensor
    detected_a: Tensor
    detected_b: Tensor
    reprojected_a: Tensor
    reprojected_b: Tensor
    weights_a: Tensor
    weights_b: Tensor
    reconstruction: Tensor | None


@dataclass
class Views3D:
    """3D keypoints of a batch of synchronised frames and how each view saw them.

    Attributes
    ----------
    points : Tensor
        ``(B, K, 3)`` world units.
    detected : Tensor
        ``(B, V, K, 2)`` normalised input units: each view's own estimate of the
        keypoints (algebraic: its 2D keypoints; volumetric: the projection of what the
        view alone puts in the cube, or the reprojections unless asked for).
    reprojected : Tensor
        ``(B, V, K, 2)`` normalised input units: ``points`` projected into each view.
    weights : Tensor
        ``(B, V, K)`` triangulation weights (sum to 1 over views).
    keypoints : Keypoints
        The per-view 2D keypoints, batch ``B * V`` (view fastest).
    scores : Tensor or None
        ``(B, V, K)`` in [0, 1]: how sure each view is of its estimate, the peak
        probability of its heatmap (algebraic) or of its own volume (volumetric, when
        asked for; None otherwise).
    """

    points: Tensor
    detected: Tensor
    reprojected: Tensor
    weights: Tensor
    keypoints: Keypoints
    scores: Tensor | None = None


def _conv3d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(True)
    )


class VolumetricHead(nn.Module):
    """Views' features unprojected into a voxel cube, fused, and read by a 3D conv net.

    Parameters
    ----------
    in_channels : int
        Channels of the encoder level that is unprojected (stride 4).
    n_keypoints : int
        K volumes out.
    grid : int
        Voxels per side G.
    width : int
        Channels of the 3D convolutions.
    """

    unit_cube: Tensor

    def __init__(self, in_channels: int, n_keypoints: int, grid: int, width: int = 16) -> None:
        super().__init__()
        self.grid = grid
        self.reduce = nn.Conv2d(in_channels, 16, 1)
        self.net = nn.Sequential(
            _conv3d(16, width), _conv3d(width, width), _conv3d(width, width),
            nn.Conv3d(width, n_keypoints, 1),
        )  # fmt: skip
        axis = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid - 0.5
        z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
        self.register_buffer("unit_cube", torch.stack([x, y, z], -1).reshape(-1, 3))

    def forward(
        self,
        features: Tensor,
        centres: Tensor,
        side: Tensor,
        offsets: Tensor,
        geometry: ViewGeometry,
        scale: float,
    ) -> Tensor:
        """3D keypoints ``(B, K, 3)`` (world units) from ``(B * V, C, h, w)`` features.

        ``centres`` ``(B, 3)`` place the cubes of side ``side`` (world units);
        ``offsets`` ``(B, V, 2)`` are the views' windows; ``scale`` sharpens the logits.
        """
        voxels, sampled, seen = self._unproject(features, centres, side, offsets, geometry)
        return self._read(sampled, seen, scale) @ voxels

    def views_alone(
        self,
        features: Tensor,
        centres: Tensor,
        side: Tensor,
        offsets: Tensor,
        geometry: ViewGeometry,
        scale: float,
    ) -> tuple[Tensor, Tensor]:
        """What each view alone says: the cube read from one view's features at a time.

        Arguments as :meth:`forward`. Returns the 3D keypoints ``(B, V, K, 3)`` (world
        units; their depth along the view's rays is poorly determined, their projection
        into that view is the view's own estimate) and each volume's peak probability
        ``(B, V, K)`` in [0, 1].
        """
        voxels, sampled, seen = self._unproject(features, centres, side, offsets, geometry)
        points, peaks = [], []
        for v in range(seen.shape[1]):
            only = torch.zeros_like(seen)
            only[:, v] = seen[:, v]
            probability = self._read(sampled, only, scale)  # (B, K, G^3)
            points.append(probability @ voxels)
            peaks.append(probability.amax(-1))
        return torch.stack(points, 1), torch.stack(peaks, 1)

    def _unproject(
        self,
        features: Tensor,
        centres: Tensor,
        side: Tensor,
        offsets: Tensor,
        geometry: ViewGeometry,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Voxels ``(B, G^3, 3)``, their features ``(B, V, C, G^3)``, seen ``(B, V, 1, G^3)``."""
        batch, n_views = offsets.shape[:2]
        voxels = centres[:, None] + self.unit_cube * side  # (B, G^3, 3)
        uv = geometry.to_normalised(geometry.rig.project(voxels), offsets[:, None])
        inside = (uv.abs() <= 1).all(-1).float()  # (B, G^3, V)
        sample_at = uv.permute(0, 2, 1, 3).reshape(batch * n_views, -1, 1, 2)
        reduced = self.reduce(features)
        sampled = nn.functional.grid_sample(
            reduced, sample_at.to(reduced.dtype), align_corners=False
        )
        sampled = sampled.view(batch, n_views, -1, voxels.shape[1])  # (B, V, C, G^3)
        return voxels, sampled, inside.permute(0, 2, 1).unsqueeze(2)

    def _read(self, sampled: Tensor, seen: Tensor, scale: float) -> Tensor:
        """The views that see a voxel averaged, the 3D net: probabilities ``(B, K, G^3)``."""
        fused = (sampled * seen).sum(1) / seen.sum(1).clamp(min=1)
        g = self.grid
        logits = self.net(fused.view(fused.shape[0], -1, g, g, g)).flatten(2) * scale
        return torch.softmax(logits.float(), -1)


class BKinD3D(nn.Module):
    """The 2D network shared by the views, a triangulation, and a learned skeleton.

    Parameters
    ----------
    config : Config
        The 2D network's settings (``n_keypoints``, encoder ...).

    Attributes
    ----------
    net : BKinD
        Encoder, keypoint head and decoder, shared by every view.
    edge_logits : Parameter
        ``(K * (K - 1) / 2,)`` logits of the learned skeleton's edges (upper triangle of
        the keypoint pairs, row-major; :meth:`edge_weights`).
    """

    volume_side: Tensor

    def __init__(self, config: Config, settings: Settings3D | None = None) -> None:
        super().__init__()
        settings = settings or Settings3D()
        self.design = settings.design
        self.net = BKinD(config)
        self.n_keypoints = k = config.n_keypoints
        self.edge_logits = nn.Parameter(torch.zeros(k * (k - 1) // 2))
        self.volume: VolumetricHead | None = None
        if settings.design == "volumetric":
            encoder = self.net.encoder
            level = encoder.strides.index(4)
            self.volume = VolumetricHead(encoder.channels[level], k, settings.grid)
            self.level = level
        #: Side of the volumetric cube, world units (set from the views before training).
        self.register_buffer("volume_side", torch.tensor(1.0))

    def edge_weights(self) -> Tensor:
        """``(K * (K - 1) / 2,)`` skeleton edge weights, positive, summing to ``K - 1``."""
        return torch.softmax(self.edge_logits, 0) * (self.n_keypoints - 1)

    def views(
        self,
        frames: Tensor,
        offsets: Tensor,
        geometry: ViewGeometry,
        centres: Tensor | None = None,
        each_view: bool = False,
    ) -> tuple[Views3D, list[Tensor]]:
        """Frames ``(B, V, 3, H, W)`` in [0, 1] seen through windows ``(B, V, 2)`` -> 3D.

        ``centres`` ``(B, 3)``, the animal's triangulated centre, place the volumetric
        design's cube. ``each_view`` also reads, in the volumetric design, what every view
        alone puts in the cube (:meth:`VolumetricHead.views_alone`, V more passes of the
        3D net: extraction's per-view estimates and scores); otherwise that design's
        detections are its reprojections. Returns the 3D keypoints with each view's
        detections and reprojections (:class:`Views3D`), and the encoder features of the
        ``B * V`` inputs (view fastest).
        """
        batch, n_views = frames.shape[:2]
        logits, features = self.net.heatmaps(frames.flatten(0, 1))
        keypoints = soft_argmax(logits)
        k = keypoints.mean.shape[1]
        detected = keypoints.mean.float().view(batch, n_views, k, 2)
        confidence = keypoints.confidence.float().view(batch, n_views, k).detach()
        weights = confidence / confidence.sum(1, keepdim=True)
        windows = offsets.unsqueeze(1)  # (B, 1, V, 2): the same window for every keypoint
        scores: Tensor | None = None
        if self.volume is None:
            pixels = geometry.to_pixels(detected.transpose(1, 2), windows)  # (B, K, V, 2)
            points = geometry.rig.triangulate(pixels, weights.transpose(1, 2))  # (B, K, 3)
            cells = keypoints.probability.shape[-1] * keypoints.probability.shape[-2]
            scores = (confidence / cells).clamp(0, 1)  # the heatmap's peak probability
        else:
            if centres is None:
                raise ValueError("the volumetric design needs the animal's centres")
            head = (features[self.level], centres, self.volume_side, offsets, geometry,
                    self.net.heatmap_scale)  # fmt: skip
            points = self.volume(*head)
        projected = geometry.rig.project(points)  # (B, K, V, 2)
        reprojected = geometry.to_normalised(projected, windows).transpose(1, 2)
        if self.volume is not None:
            detected = reprojected  # the views agree by construction
            if each_view:
                alone, scores = self.volume.views_alone(*head)  # (B, V, K, 3), (B, V, K)
                own = geometry.rig.project(alone).diagonal(dim1=1, dim2=3)  # (B, K, 2, V)
                own = geometry.to_normalised(own.permute(0, 1, 3, 2), windows)
                detected = own.transpose(1, 2)
        return Views3D(points, detected, reprojected, weights, keypoints, scores), features

    def forward(self, first: ViewInputs, second: ViewInputs, geometry: ViewGeometry) -> Output3D:
        """Two batches of synchronised frames -> 3D keypoints and every view's map."""
        batch = first.images.shape[0]
        centres = None
        if first.centres is not None and second.centres is not None:
            centres = torch.cat([first.centres, second.centres])
        both, features = self.views(
            torch.cat([first.images, second.images]),
            torch.cat([first.offsets, second.offsets]),
            geometry,
            centres,
        )
        half = batch * first.images.shape[1]
        reprojected = both.reprojected.flatten(0, 1)  # (2 B V, K, 2)
        appearance = features[-1][:half]
        reconstruction = self.net.decoder(appearance, reprojected[:half], reprojected[half:])
        return Output3D(
            both.points[:batch],
            both.points[batch:],
            both.detected[:batch],
            both.detected[batch:],
            both.reprojected[:batch],
            both.reprojected[batch:],
            both.weights[:batch],
            both.weights[batch:],
            reconstruction,
        )
