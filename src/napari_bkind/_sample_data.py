"""Sample data: the synthetic animal with its ground-truth joints."""

from __future__ import annotations

from typing import Any

import numpy as np

from bkind_model.synthetic import SyntheticConfig, generate

LayerData = tuple[Any, dict[str, Any], str]


def _sample(shadow: bool) -> list[LayerData]:
    video = generate(SyntheticConfig(n_frames=300, shadow=shadow, seed=0))
    n_frames, n_animals, n_joints, _ = video.joints.shape
    frame = np.repeat(np.arange(n_frames), n_animals * n_joints)
    xy = video.joints.reshape(-1, 2)
    points = np.column_stack([frame, xy[:, 1], xy[:, 0]])
    joint = np.tile(np.asarray(video.joint_names), n_frames * n_animals)
    name = "synthetic animal" + (" (shadow)" if shadow else "")
    image_meta = {"name": name, "rgb": True, "metadata": {"fps": video.fps}}
    points_meta = {
        "name": "ground-truth joints",
        "features": {"joint": joint},
        "face_color": "joint",
        "size": 4,
        "border_width": 0,
    }
    return [(video.frames, image_meta, "image"), (points, points_meta, "points")]


def synthetic_animal() -> list[LayerData]:
    """A 300-frame synthetic animal over a textured arena, with its true joints."""
    return _sample(shadow=False)


def synthetic_animal_shadow() -> list[LayerData]:
    """The same animal casting a shadow (for the shadow-robust methods)."""
    return _sample(shadow=True)
