"""Sample data: the synthetic animal with its ground-truth joints."""

from __future__ import annotations

from bkind_model.synthetic import SyntheticConfig, generate
from napari_bkind._layers import RESULT_KEY, LayerData, keypoint_points


def _sample(shadow: bool) -> list[LayerData]:
    video = generate(SyntheticConfig(n_frames=300, shadow=shadow, seed=0))
    names = list(video.joint_names)
    name = "synthetic animal" + (" (shadow)" if shadow else "")
    image_meta = {"name": name, "rgb": True, "metadata": {"fps": video.fps}}
    truth = keypoint_points(
        video.joints[:, 0],
        names,
        frame_size=video.frames.shape[1:3],
        name="ground-truth joints",
        metadata={
            RESULT_KEY: {"keypoint_names": names, "n_frames": video.n_frames, "fps": video.fps}
        },
    )
    return [(video.frames, image_meta, "image"), truth]


def synthetic_animal() -> list[LayerData]:
    """A 300-frame synthetic animal over a textured arena, with its true joints."""
    return _sample(shadow=False)


def synthetic_animal_shadow() -> list[LayerData]:
    """The same animal casting a shadow (for the shadow-robust methods)."""
    return _sample(shadow=True)
