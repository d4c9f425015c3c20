"""Settings of a 3D run that the 2D :class:`~bkind_model.config.Config` does not hold.

The network (encoder, keypoints, input size), the optimiser, the length of training and
the frame gap come from a :class:`~bkind_model.config.Config` as in 2D; these add what
several calibrated views need. Both are saved in every 3D checkpoint and results file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from bkind_model.config import _number, _refuse_unknown
from bkind_model.errors import ConfigError

Design = Literal["algebraic", "volumetric"]
DESIGNS = ("algebraic", "volumetric")


@dataclass
class Settings3D:
    """What makes keypoints 3D.

    Attributes
    ----------
    design : {"algebraic", "volumetric"}
        ``algebraic``: per-view heatmaps and soft-argmax, then confidence-weighted
        differentiable triangulation. ``volumetric`` (BKinD-3D's): every view's features
        unprojected into a voxel cube around the animal, averaged, a small 3D conv net and
        a 3D soft-argmax (:class:`~bkind_model.multiview.network.BKinD3D`).
    consistency_weight : float
        Weight of the distance between each view's 2D keypoints and the reprojection of
        the triangulated 3D keypoints (normalised input units squared): it ties keypoint
        ``k`` of every view to one 3D point.
    hull_weight : float
        Weight of keeping every reprojected keypoint on the animal in every view (its
        difference from the background): 3D keypoints inside the animal's visual hull,
        not at a fixed place of the windows that follow it.
    separation_weight : float
        Weight of the 3D separation term (keypoints of one frame pushed apart).
    separation_scale : float
        Its length scale, as a fraction of the scene's size
        (:attr:`~bkind_model.multiview.network.ViewGeometry.scene_scale`).
    bone_weight : float
        Weight of bone-length constancy over the learned skeleton.
    bone_start : int
        Step at which bone-length constancy switches on (a curriculum: keypoints first
        find the animal, then the skeleton holds them together).
    grid : int
        Voxels along each side of the volumetric design's cube.
    volume_scale : float
        Side of that cube as a multiple of the views' median window size at the animal
        (world units); the cube follows the animal's triangulated centre.
    """

    design: Design = "volumetric"
    consistency_weight: float = 1.0
    hull_weight: float = 0.1
    separation_weight: float = 0.02
    separation_scale: float = 0.04
    bone_weight: float = 0.5
    bone_start: int = 300
    grid: int = 16
    volume_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise ConfigError(f"Invalid 3D settings: design must be one of {DESIGNS}.")
        for name in ("consistency_weight", "hull_weight", "separation_weight", "bone_weight"):
            if _number(getattr(self, name), f"3D setting {name}") < 0:
                raise ConfigError(f"Invalid 3D settings: {name} must be >= 0.")
        if _number(self.separation_scale, "3D setting separation_scale") <= 0:
            raise ConfigError("Invalid 3D settings: separation_scale must be positive.")
        if _number(self.bone_start, "3D setting bone_start", integer=True) < 0:
            raise ConfigError("Invalid 3D settings: bone_start must be >= 0.")
        if not 4 <= _number(self.grid, "3D setting grid", integer=True) <= 64:
            raise ConfigError("Invalid 3D settings: grid must be 4 to 64 voxels.")
        if _number(self.volume_scale, "3D setting volume_scale") <= 0:
            raise ConfigError("Invalid 3D settings: volume_scale must be positive.")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of JSON types."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Settings3D:
        """Rebuild settings; unknown keys are an error."""
        _refuse_unknown(cls, values, "3D settings")
        return cls(**values)
