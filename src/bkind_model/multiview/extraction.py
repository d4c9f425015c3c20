"""A trained 3D checkpoint over a whole session: 3D keypoints and their reprojections."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bkind_model.devices import resolve_device
from bkind_model.errors import CheckpointError, ConfigError
from bkind_model.frames.letterbox import Letterbox
from bkind_model.io.checkpoint import (
    DICT,
    KeyCheck,
    check_keys,
    checkpoint_config,
    expect,
    file_hash,
    load_checkpoint,
)
from bkind_model.io.results import default_keypoint_names, letterbox_problem
from bkind_model.io.video import open_video
from bkind_model.multiview.calibration import CalibrationError, check_cameras
from bkind_model.multiview.cameras import Camera, CameraRig
from bkind_model.multiview.data import check_views_agree, prepare_views
from bkind_model.multiview.network import BKinD3D, ViewGeometry
from bkind_model.multiview.results import Result3D, skeleton_edges
from bkind_model.multiview.settings import Settings3D
from bkind_model.multiview.views import Session

#: Synchronised frames per forward pass.
EXTRACT_BATCH = 16


def load_model_3d(
    checkpoint: str | Path, device: torch.device | str = "cpu"
) -> tuple[BKinD3D, dict]:
    """A 3D checkpoint as a model in eval mode, and the loaded state.

    Raises
    ------
    CheckpointError
        When the file is a 2D checkpoint, damaged, or holds cameras, letterboxes or 3D
        settings that cannot be used (:func:`checkpoint_views`); the message names the key.
    """
    state = load_checkpoint(checkpoint)
    if "settings3d" not in state or "cameras" not in state:
        raise CheckpointError(
            f"{checkpoint}: a 2D checkpoint, not from `bkind train3d`; use `bkind extract` "
            "for it, or train 3D first."
        )
    config = checkpoint_config(state, checkpoint)
    checkpoint_views(state, checkpoint)
    try:
        model = BKinD3D(config, Settings3D.from_dict(state["settings3d"]))
        model.load_state_dict(state["model"])
    except (ConfigError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{checkpoint}: its 3D settings or weights cannot be used "
            f"({str(exc).splitlines()[0][:200]}); train 3D again."
        ) from exc
    return model.to(device).eval(), state


def _cameras_problem(value: object) -> str | None:
    """What is wrong with a checkpoint's ``cameras`` (a list of camera dicts), or None."""
    if not isinstance(value, list) or not value or not all(isinstance(c, dict) for c in value):
        return f"holds {type(value).__name__} {str(value)[:40]!r}, not a list of camera tables"
    try:
        for entry in value:
            Camera.from_dict(entry)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return f"holds a camera table that cannot be read ({type(exc).__name__}: {exc})"
    return None


def _letterboxes_problem(value: object) -> str | None:
    """What is wrong with a checkpoint's ``letterboxes`` (a list of letterbox dicts), or None."""
    if not isinstance(value, list) or not value:
        return f"holds {type(value).__name__} {str(value)[:40]!r}, not a list of letterboxes"
    problems = [letterbox_problem(box) for box in value]
    return next((f"holds a letterbox that {p}" for p in problems if p is not None), None)


def _window_sizes(value: object) -> bool:
    """Whether ``value`` is a list of finite numbers >= 0 (window sides, px)."""
    return isinstance(value, list) and all(
        isinstance(c, int | float) and not isinstance(c, bool) and 0 <= c < math.inf for c in value
    )


#: What the keys a 3D run adds to its checkpoints hold (:func:`check_keys`).
CHECKPOINT_3D_KEYS: dict[str, KeyCheck] = {
    "settings3d": DICT,
    "cameras": _cameras_problem,
    "letterboxes": _letterboxes_problem,
    "crop_sizes": expect("a list of window sizes in px (0 or more)", _window_sizes),
    "offsets": expect(
        "a list of whole frames",
        lambda v: isinstance(v, list) and all(isinstance(o, int) and o >= 0 for o in v),
    ),
}


def checkpoint_views(state: dict, checkpoint: str | Path) -> tuple[list[Camera], list[Letterbox]]:
    """The cameras and letterboxes a 3D checkpoint was trained with, checked.

    Its 3D keys are checked with :data:`CHECKPOINT_3D_KEYS`, then the cameras as a
    calibration is (:func:`~bkind_model.multiview.calibration.check_cameras`) and the
    letterboxes against them: one per camera, its source the camera's image size, one
    input size for all.

    Parameters
    ----------
    state : dict
        A loaded 3D checkpoint.
    checkpoint : str or Path
        Its file (named in the errors).

    Returns
    -------
    cameras : list of Camera
    letterboxes : list of Letterbox
        In view order.

    Raises
    ------
    CheckpointError
        One line naming the checkpoint and the key that is damaged.
    """
    check_keys(state, checkpoint, CHECKPOINT_3D_KEYS)
    cameras = [Camera.from_dict(c) for c in state["cameras"]]
    letterboxes = [Letterbox.from_dict(b) for b in state["letterboxes"]]
    try:
        check_cameras(cameras, checkpoint)
    except CalibrationError as exc:
        raise CheckpointError(
            f"{checkpoint}: key 'cameras' holds cameras that cannot be used ({exc.problem}); "
            "the checkpoint is damaged or was edited. Use another checkpoint or train again."
        ) from exc
    fits = len(letterboxes) == len(cameras) and all(
        box.source_size == camera.image_shape and box.input_size == letterboxes[0].input_size
        for camera, box in zip(cameras, letterboxes, strict=False)
    )
    crops = state.get("crop_sizes", [0.0] * len(cameras))
    if not fits or len(crops) != len(cameras):
        raise CheckpointError(
            f"{checkpoint}: keys 'letterboxes' and 'crop_sizes' do not fit its "
            f"{len(cameras)} cameras (one each, the camera's image size, one input size); "
            "the checkpoint is damaged or was edited. Use another checkpoint or train again."
        )
    return cameras, letterboxes


def check_same_cameras(trained: list[Camera], session: Session, checkpoint: str | Path) -> None:
    """Refuse a session whose cameras differ from those the model was trained with.

    Names, intrinsics, pose and lens distortions must all be the same (within 1e-6,
    relative).
    """
    names = [c.name for c in trained]
    if names != list(session.names):
        raise CheckpointError(
            f"{checkpoint}: trained on cameras {names}, the session has {list(session.names)}. "
            "Extract with the session's own calibration and videos, in the same cameras."
        )
    for old, new in zip(trained, session.cameras, strict=True):
        if not old.same_parameters(new, tolerance=1e-6) or not np.allclose(
            old.distortions, new.distortions, rtol=1e-6, atol=1e-9
        ):
            raise CheckpointError(
                f"{checkpoint}: camera {new.name!r} has another calibration (intrinsics, pose "
                "or lens distortion) than the one the model was trained with; train again "
                "with this calibration."
            )


def _pixels(geometry: ViewGeometry, uv: torch.Tensor, offsets: torch.Tensor) -> np.ndarray:
    """Normalised ``(B, V, K, 2)`` in windows ``(B, V, 2)`` -> source pixels, numpy."""
    pixels = geometry.to_pixels(uv.transpose(1, 2), offsets.unsqueeze(1))
    return pixels.transpose(1, 2).cpu().numpy()


@torch.no_grad()
def extract_3d(
    checkpoint: str | Path,
    session: Session,
    *,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    check_views: bool = True,
) -> Result3D:
    """3D keypoints of every synchronised frame of a session.

    Parameters
    ----------
    checkpoint : str or Path
        From :class:`~bkind_model.multiview.training.Trainer3D`.
    session : Session
        The same cameras (the videos may be others of the same rig).
    device : str
        ``"auto"`` or a torch device.
    cache_dir : str or Path, optional
        Where the frame caches are (shared with training).
    progress : callable, optional
        ``f(done, total)`` in frames.
    check_views : bool
        Refuse views that do not agree with the calibration (swapped videos, a video of
        something else: :func:`~bkind_model.multiview.data.check_views_agree`).

    Returns
    -------
    Result3D
        Points, each view's own estimates (:mod:`~bkind_model.multiview.results`) and
        the points' reprojections, weights, scores, the learned skeleton. Its
        :meth:`~bkind_model.multiview.results.Result3D.per_view_error` is how far, in
        pixels, each view alone is from the 3D keypoints.
    """
    torch_device = resolve_device(device)
    model, state = load_model_3d(checkpoint, torch_device)
    trained, letterboxes = checkpoint_views(state, checkpoint)
    check_same_cameras(trained, session, checkpoint)
    config = checkpoint_config(state, checkpoint)
    sources = [open_video(v) for v in session.videos]
    views = prepare_views(
        sources, letterboxes, tuple(session.offsets), session.n_frames, config, cache_dir=cache_dir
    )
    if check_views:
        check_views_agree(views, session)
    geometry = ViewGeometry(list(session.cameras), letterboxes, torch_device)
    if model.volume is not None:
        views.attach_track(CameraRig(list(session.cameras)))
    n, k, v = session.n_frames, config.n_keypoints, len(session.cameras)
    points = np.zeros((n, k, 3), np.float32)
    detected = np.zeros((n, v, k, 2), np.float32)
    reprojected = np.zeros((n, v, k, 2), np.float32)
    weights = np.zeros((n, v, k), np.float32)
    scores = np.zeros((n, v, k), np.float32)
    for start in range(0, n, EXTRACT_BATCH):
        t = np.arange(start, min(n, start + EXTRACT_BATCH))
        inputs = views.inputs(t, torch_device)
        out, _ = model.views(
            inputs.images, inputs.offsets, geometry, inputs.centres, each_view=True
        )
        points[t] = out.points.cpu().numpy()
        detected[t] = _pixels(geometry, out.detected, inputs.offsets)
        reprojected[t] = _pixels(geometry, out.reprojected, inputs.offsets)
        weights[t] = out.weights.cpu().numpy()
        assert out.scores is not None  # each_view gives every design's scores
        scores[t] = out.scores.cpu().numpy()
        if progress is not None:
            progress(int(t[-1]) + 1, n)
    edge_weights = model.edge_weights().cpu().numpy()
    edges = skeleton_edges(edge_weights, k)
    i, j = np.triu_indices(k, 1)
    lookup = {(int(a), int(b)): e for e, (a, b) in enumerate(zip(i, j, strict=True))}
    metadata = {
        "fps": float(session.fps),
        "camera_names": list(session.names),
        "cameras": [c.to_dict() for c in session.cameras],
        "keypoint_names": default_keypoint_names(k),
        "config": state["config"],
        "settings3d": Settings3D.from_dict(state["settings3d"]).to_dict(),
        "checkpoint": str(Path(checkpoint).resolve()),
        "checkpoint_sha256": file_hash(checkpoint),
        "videos": [str(Path(p).resolve()) for p in session.videos],
        "offsets": [int(o) for o in session.offsets],
        "letterboxes": state["letterboxes"],
        "n_frames": n,
    }
    return Result3D(
        points,
        detected,
        reprojected,
        weights,
        edges,
        np.array([edge_weights[lookup[(a, b)]] for a, b in edges], np.float32),
        metadata,
        scores,
    )
