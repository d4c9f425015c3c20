"""Sample data: the synthetic animal with its ground-truth joints, in one view or three."""

from __future__ import annotations

from bkind_model.multiview.synthetic import MultiViewConfig, generate_multiview
from bkind_model.synthetic import SyntheticConfig, generate
from napari_bkind._layers import AXES, RESULT_KEY, LayerData, keypoint_points


def _sample(shadow: bool) -> list[LayerData]:
    video = generate(SyntheticConfig(n_frames=300, shadow=shadow, seed=0))
    names = list(video.joint_names)
    name = "synthetic animal" + (" (shadow)" if shadow else "")
    image_meta = {"name": name, "rgb": True, "metadata": {"fps": video.fps}, "axis_labels": AXES}
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


#: Pixels between the views of the multi-camera sample, laid side by side.
VIEW_GAP = 8


def synthetic_multiview() -> list[LayerData]:
    """150 frames of the synthetic animal filmed by 3 calibrated cameras (B-KinD 3D).

    One RGB image layer ``(T, H, W, 3)`` per camera, named after it, and its projected
    ground-truth joints as a Points layer; the views are laid side by side.
    """
    video = generate_multiview(MultiViewConfig(n_frames=150, seed=0))
    names = list(video.joint_names)
    n_frames, width = video.frames.shape[1], video.frames.shape[3]
    layers: list[LayerData] = []
    for v, camera in enumerate(video.cameras):
        offset = (0, 0, v * (width + VIEW_GAP))  # (frame, y, x)
        image_meta = {
            "name": camera.name,
            "rgb": True,
            "translate": offset,
            "metadata": {"fps": video.fps, "camera": camera.name},
            "axis_labels": AXES,
        }
        data, points_meta, kind = keypoint_points(
            video.joints2d[:, v],
            names,
            frame_size=video.frames.shape[2:4],
            name=f"ground-truth joints ({camera.name})",
            metadata={
                RESULT_KEY: {"keypoint_names": names, "n_frames": n_frames, "fps": video.fps},
                "camera": camera.name,
            },
        )
        layers += [
            (video.frames[v], image_meta, "image"),
            (data, points_meta | {"translate": offset}, kind),
        ]
    return layers
