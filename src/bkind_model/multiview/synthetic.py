"""A synthetic multi-camera test bed with 3D ground truth (for BKinD-3D).

The articulated mouse of :mod:`bkind_model.synthetic` moves in 3D over the square floor
of an open field and is filmed by 3 or 4 calibrated cameras with lens distortion, placed
on a ring around the arena and looking down at its centre. Every frame comes with the
joints in 3D, their projections into every camera and the animal's mask in every view.

World frame: the floor is ``z = 0``, its square is centred on the origin with sides along
``x`` and ``y``, ``z`` points up; units are millimetres. Pixels follow
:mod:`~bkind_model.multiview.cameras`: ``(x, y)`` with the centre of the top-left pixel at
``(0, 0)``.

Examples
--------
>>> video = generate_multiview(MultiViewConfig(n_frames=30))  # doctest: +SKIP
>>> video.frames.shape, video.joints3d.shape, video.joints2d.shape  # doctest: +SKIP
((3, 30, 192, 192, 3), (30, 13, 3), (30, 3, 13, 2))
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import h5py
import numpy as np
import torch
from scipy import ndimage

from bkind_model.errors import ConfigError, PathError
from bkind_model.io.atomic import atomic_path
from bkind_model.io.video_writer import write_video
from bkind_model.multiview.calibration import write_calibration
from bkind_model.multiview.cameras import Camera, CameraRig, look_at
from bkind_model.synthetic.motion import FloorBox, simulate_motion
from bkind_model.synthetic.render import WALL_RGB, Arena, FrameRenderer, make_arena
from bkind_model.synthetic.skeleton import (
    FORE_LEFT,
    FORE_RIGHT,
    HIND_LEFT,
    HIND_RIGHT,
    HIP,
    JOINT_NAMES,
    LEFT_EAR,
    NECK,
    RIGHT_EAR,
    SNOUT,
    SPINE_MID,
    TAIL_BASE,
    TAIL_MID,
)

#: Names of the cameras, in order (none is a substring of another).
CAMERA_NAMES: tuple[str, ...] = ("cam_a", "cam_b", "cam_c", "cam_d")
#: File names inside a sample folder (:func:`write_multiview_sample`).
CALIBRATION_FILE = "calibration.toml"
GROUND_TRUTH_FILE = "ground_truth_3d.h5"
_FORMAT = "bkind-synthetic-multiview"
_FORMAT_VERSION = 1

# Camera ring: distance from the arena centre (arena sides), elevation range (degrees),
# azimuth jitter (degrees), margin left around the floor in the image (fraction of a side),
# and the height (body lengths) up to which the whole arena stays in view.
_DISTANCE = 1.6
_ELEVATION_DEG = (45.0, 60.0)
_AZIMUTH_JITTER_DEG = 8.0
_IMAGE_MARGIN = 0.05
_VIEW_HEIGHT = 0.6
_PAWS = (FORE_LEFT, FORE_RIGHT, HIND_LEFT, HIND_RIGHT)


def _per_joint(values: dict[int, float]) -> np.ndarray:
    """``(J,)`` array of per-joint values (0 for the joints not given)."""
    out = np.zeros(len(JOINT_NAMES))
    for joint, value in values.items():
        out[joint] = value
    return out


# Heights above the floor in body lengths: standing on four paws, and the rise of the front
# body at full rearing (lift 1) and of the forepaws at full grooming (paws at the face).
_STAND_HEIGHT = _per_joint(
    {SNOUT: 0.10, LEFT_EAR: 0.18, RIGHT_EAR: 0.18, NECK: 0.12, SPINE_MID: 0.14, HIP: 0.12}
    | {TAIL_BASE: 0.08, TAIL_MID: 0.02}
)
_REAR_RISE = _per_joint(
    {SNOUT: 0.45, LEFT_EAR: 0.42, RIGHT_EAR: 0.42, NECK: 0.30, SPINE_MID: 0.08}
    | {FORE_LEFT: 0.30, FORE_RIGHT: 0.30}
)
_GROOM_RISE = _per_joint({FORE_LEFT: 0.10, FORE_RIGHT: 0.10})
_STEP_HEIGHT = 0.05  # body lengths a paw lifts at most while it swings forward ...
_SWING_SPEED = 1.0  # ... reached at this forward speed relative to the body, lengths/s


@dataclass(frozen=True)
class MultiViewConfig:
    """What to generate. The same configuration always gives the same videos.

    Parameters
    ----------
    n_frames : int
        Frames per camera (at least 2).
    fps : float
        Frame rate, frames per second; the animal moves in seconds, not frames.
    n_cameras : int
        3 or 4 cameras, evenly spaced in azimuth around the arena.
    image_size : tuple of int
        ``(height, width)`` of every camera's frames in pixels (even, at least 32).
    arena_mm : float
        Side of the square floor, millimetres.
    body_length_mm : float
        The animal's length from snout to tail base, millimetres (the tail adds 0.8 of
        it); at most a third of the arena's side.
    distortion : float
        Radial distortion ``k1`` of every camera (negative: barrel); ``k2``, ``p1`` and
        ``p2`` are small and proportional to it, so 0 gives pinhole cameras. ``|k1| <= 0.3``.
    noise_sigma : float
        Standard deviation of the Gaussian sensor noise, grey levels (0-255).
    seed : int
        Seed of every random choice (cameras, floor, behaviour, noise); at least 0.
    """

    n_frames: int = 300
    fps: float = 30.0
    n_cameras: int = 3
    image_size: tuple[int, int] = (192, 192)
    arena_mm: float = 300.0
    body_length_mm: float = 80.0
    distortion: float = -0.12
    noise_sigma: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            size = tuple(operator.index(v) for v in self.image_size)
        except TypeError:
            size = ()
        problems = []
        if len(size) != 2 or min(size) < 32 or any(v % 2 for v in size):
            problems.append(
                f"image_size must be (height, width) in whole pixels, even and at least 32, "
                f"not {self.image_size!r}"
            )
        else:
            object.__setattr__(self, "image_size", size)
        if self.n_frames < 2:
            problems.append(f"n_frames must be at least 2, not {self.n_frames}")
        if not 0 < self.fps < math.inf:
            problems.append(f"fps must be positive, not {self.fps}")
        if self.n_cameras not in (3, 4):
            problems.append(f"n_cameras must be 3 or 4, not {self.n_cameras}")
        if not 0 < self.arena_mm < math.inf:
            problems.append(f"arena_mm must be positive, not {self.arena_mm}")
        elif not 0 < self.body_length_mm <= self.arena_mm / 3:
            problems.append(
                f"body_length_mm must be positive and at most a third of arena_mm "
                f"({self.arena_mm / 3:g}), not {self.body_length_mm}"
            )
        if not abs(self.distortion) <= 0.3:
            problems.append(f"distortion must be between -0.3 and 0.3, not {self.distortion}")
        if not 0 <= self.noise_sigma < math.inf:
            problems.append(f"noise_sigma must be 0 or more, not {self.noise_sigma}")
        if self.seed < 0:
            problems.append(f"seed must be 0 or more, not {self.seed}")
        if problems:
            raise ConfigError("MultiViewConfig: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict:
        """The configuration as a JSON-compatible dict."""
        return asdict(self) | {"image_size": list(self.image_size)}

    @classmethod
    def from_dict(cls, values: dict) -> MultiViewConfig:
        """The configuration from :meth:`to_dict`'s output (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class MultiViewVideo:
    """Synchronised videos of one animal from several calibrated cameras, with 3D truth.

    Attributes
    ----------
    frames : ndarray
        ``(V, T, H, W, 3)`` uint8 RGB frames of the ``V`` cameras.
    joints3d : ndarray
        ``(T, J, 3)`` float64 joint positions in the world, millimetres.
    joints2d : ndarray
        ``(T, V, J, 2)`` float64 pixels ``(x, y)``: ``joints3d`` projected into every
        camera with its distortion (``CameraRig(cameras).project_numpy(joints3d)``,
        views before joints).
    animal_masks : ndarray
        ``(V, T, H, W)`` bool: where the animal is drawn in each view.
    cameras : list of Camera
        The ``V`` cameras, in the order of the views.
    fps : float
        Frame rate, frames per second.
    joint_names : tuple of str
        Names of the ``J`` joints (:data:`bkind_model.synthetic.JOINT_NAMES`).
    config : MultiViewConfig
        The configuration that made the videos.
    body_length_mm : float
        The animal's length from snout to tail base, millimetres.
    """

    frames: np.ndarray
    joints3d: np.ndarray
    joints2d: np.ndarray
    animal_masks: np.ndarray
    cameras: list[Camera]
    fps: float
    joint_names: tuple[str, ...]
    config: MultiViewConfig
    body_length_mm: float


@dataclass
class MultiViewSample:
    """The files of a sample written by :func:`write_multiview_sample`.

    Attributes
    ----------
    videos : list of Path
        One H.264 mp4 per camera, ``<camera name>.mp4``, in camera order.
    calibration : Path
        The cameras as an anipose ``calibration.toml``.
    ground_truth : Path
        The 3D joints and their projections (``ground_truth_3d.h5``).
    """

    videos: list[Path]
    calibration: Path
    ground_truth: Path


@dataclass
class GroundTruth3D:
    """The ground truth of a multi-view sample, read by :func:`load_ground_truth_3d`.

    Attributes
    ----------
    joints3d : ndarray
        ``(T, J, 3)`` float64 world millimetres.
    joints2d : ndarray
        ``(T, V, J, 2)`` float64 pixels in each camera.
    joint_names, camera_names : tuple of str
        Names of the ``J`` joints and the ``V`` cameras.
    fps : float
        Frame rate, frames per second.
    body_length_mm : float
        Snout to tail base, millimetres.
    """

    joints3d: np.ndarray
    joints2d: np.ndarray
    joint_names: tuple[str, ...]
    camera_names: tuple[str, ...]
    fps: float
    body_length_mm: float


class GroundTruthError(PathError):
    """A file is missing or is not the ground truth of a synthetic multi-view sample."""


# --- cameras --------------------------------------------------------------------------------


def make_cameras(config: MultiViewConfig, rng: np.random.Generator) -> list[Camera]:
    """The cameras of the rig: a ring around the arena, all looking at its centre.

    Parameters
    ----------
    config : MultiViewConfig
        Number of cameras, image size, arena size and distortion.
    rng : numpy.random.Generator
        Source of the jitter of azimuth, elevation, distance and principal point.

    Returns
    -------
    list of Camera
        ``n_cameras`` cameras named by :data:`CAMERA_NAMES`, each with a focal length that
        fits the whole floor (and the space above it up to a rearing animal's height) into
        its image with a margin.
    """
    height, width = config.image_size
    start = rng.uniform(0, 2 * math.pi)
    cameras = []
    for i, name in enumerate(CAMERA_NAMES[: config.n_cameras]):
        jitter = math.radians(_AZIMUTH_JITTER_DEG) * rng.uniform(-1, 1)
        azimuth = start + 2 * math.pi * i / config.n_cameras + jitter
        elevation = math.radians(rng.uniform(*_ELEVATION_DEG))
        distance = _DISTANCE * config.arena_mm * rng.uniform(0.95, 1.05)
        position = distance * np.array(
            [
                math.cos(elevation) * math.cos(azimuth),
                math.cos(elevation) * math.sin(azimuth),
                math.sin(elevation),
            ]
        )
        rotation, translation = look_at(position, np.zeros(3), np.array([0.0, 0.0, 1.0]))
        d = config.distortion
        distortions = np.array([d, -0.2 * d, *(0.01 * d * rng.uniform(-1, 1, 2)), 0.0])
        principal = ((width - 1) / 2 + rng.uniform(-2, 2), (height - 1) / 2 + rng.uniform(-2, 2))
        unit = Camera(name, (width, height), np.eye(3), distortions, rotation, translation)
        focal = _fitting_focal(unit, principal, config)
        matrix = np.array([[focal, 0, principal[0]], [0, focal, principal[1]], [0, 0, 1]])
        cameras.append(Camera(name, (width, height), matrix, distortions, rotation, translation))
    return cameras


def _fitting_focal(unit: Camera, principal: tuple[float, float], config: MultiViewConfig) -> float:
    """The largest focal length (px) at which the arena's volume fits in the image.

    ``unit`` is the camera with an identity intrinsic matrix, so its projections are the
    distorted normalised coordinates; the volume is the floor's outline at ``z = 0`` and
    raised by :data:`_VIEW_HEIGHT` body lengths.
    """
    half = config.arena_mm / 2
    along = np.linspace(-half, half, 17)
    edges = np.concatenate(
        [np.stack([along, np.full_like(along, s * half)], -1) for s in (-1, 1)]
        + [np.stack([np.full_like(along, s * half), along], -1) for s in (-1, 1)]
    )
    top = _VIEW_HEIGHT * config.body_length_mm
    outline = np.concatenate(
        [np.column_stack([edges, np.full(len(edges), z)]) for z in (0.0, top)]
    )
    xd, yd = unit.project(outline).T
    height, width = config.image_size
    margin = _IMAGE_MARGIN * min(height, width)
    cx, cy = principal
    limits = [
        (cx - margin) / max(-xd.min(), 1e-9),
        (width - 1 - margin - cx) / max(xd.max(), 1e-9),
        (cy - margin) / max(-yd.min(), 1e-9),
        (height - 1 - margin - cy) / max(yd.max(), 1e-9),
    ]
    return float(min(limits))


# --- motion in 3D ---------------------------------------------------------------------------


def _floor_motion(
    config: MultiViewConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 2D animal's motion on the floor, in world millimetres.

    Returns
    -------
    joints : ndarray
        ``(T, J, 2)`` float64 ``(x, y)`` world millimetres on the floor.
    lift, groom : ndarray
        ``(T,)`` rearing and grooming amounts, 0-1.
    """
    side = config.arena_mm
    # The 2D simulation works in "pixels" with y down; here a pixel is a millimetre and
    # y is flipped, so the floor seen from above keeps the animal's left on its left.
    motion = simulate_motion(
        config.n_frames, config.fps, 1, config.body_length_mm, FloorBox(0, 0, side, side), rng
    )
    floor = motion.joints[:, 0].astype(np.float64)
    joints = np.stack([floor[..., 0] - side / 2, side / 2 - floor[..., 1]], -1)
    return joints, motion.lift[:, 0].astype(np.float64), motion.groom[:, 0].astype(np.float64)


def _step_heights(joints: np.ndarray, fps: float, length: float) -> np.ndarray:
    """Heights ``(T, 4)`` in mm of the paws of :data:`_PAWS`: a swinging paw lifts a little.

    A paw swings while it moves forward relative to the body (``joints`` ``(T, J, 2)`` mm).
    """
    velocity = np.gradient(joints, axis=0) * fps  # (T, J, 2) mm/s
    heading = joints[:, NECK] - joints[:, HIP]
    heading /= np.maximum(np.linalg.norm(heading, axis=-1, keepdims=True), 1e-9)
    relative = velocity[:, list(_PAWS)] - velocity[:, SPINE_MID, None]
    forward = np.einsum("tpk,tk->tp", relative, heading)
    return _STEP_HEIGHT * length * np.clip(forward / (_SWING_SPEED * length), 0, 1)


def joints_in_3d(
    floor_joints: np.ndarray, lift: np.ndarray, groom: np.ndarray, length: float, fps: float
) -> np.ndarray:
    """Give the joints of the 2D animal on the floor their heights.

    Parameters
    ----------
    floor_joints : ndarray
        ``(T, J, 2)`` world ``(x, y)`` millimetres.
    lift, groom : ndarray
        ``(T,)`` rearing and grooming amounts, 0-1.
    length : float
        Body length, millimetres.
    fps : float
        Frame rate, frames per second (for the paws' speed).

    Returns
    -------
    ndarray
        ``(T, J, 3)`` float64 world millimetres, ``z >= 0``: the body about a seventh of a
        body length above the floor, paws on it (lifting a little while they swing), the
        tail falling to the floor; rearing raises the head, neck and forepaws, grooming
        the forepaws.
    """
    z = length * (_STAND_HEIGHT + lift[:, None] * _REAR_RISE + groom[:, None] * _GROOM_RISE)
    z[:, list(_PAWS)] += _step_heights(floor_joints, fps, length)
    return np.concatenate([floor_joints, z[..., None]], -1)


# --- rendering ------------------------------------------------------------------------------


@dataclass
class _FloorTexture:
    """The arena's floor and walls as a texture on the plane ``z = 0``.

    ``arena`` is a square 2D arena whose floor box spans the world square
    ``[-side / 2, side / 2]`` in ``x`` and ``y``, its walls a band around it.
    """

    arena: Arena
    side: float

    def sample(self, xy: np.ndarray) -> np.ndarray:
        """RGB ``(N, 3)`` float32 at world points ``(N, 2)`` mm; beyond the walls a dim grey."""
        floor = self.arena.floor
        scale = (floor.x1 - floor.x0) / self.side  # texels per mm
        col = floor.x0 + (xy[:, 0] + self.side / 2) * scale
        row = floor.y0 + (self.side / 2 - xy[:, 1]) * scale
        size = self.arena.image.shape[0]
        inside = (col >= 0) & (col <= size - 1) & (row >= 0) & (row <= size - 1)
        coords = np.stack([np.where(inside, row, 0), np.where(inside, col, 0)])
        rgb = np.stack(
            [ndimage.map_coordinates(self.arena.image[..., c], coords, order=1) for c in range(3)],
            -1,
        )
        return np.where(inside[:, None], rgb, 0.7 * WALL_RGB).astype(np.float32)


def _background(camera: Camera, texture: _FloorTexture, rng: np.random.Generator) -> np.ndarray:
    """The empty arena seen by ``camera``: ``(H, W, 3)`` float32 RGB 0-255.

    Each pixel's ray (through the lens distortion) meets the floor; rays that miss it
    (towards the horizon) see the outside colour. A slight vignetting and a per-camera
    exposure make the views differ as real cameras do.
    """
    height, width = camera.image_shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    pixels = np.stack([cols.ravel(), rows.ravel()], -1)[:, None]  # (N, 1, 2)
    origins, directions = CameraRig([camera]).rays(torch.as_tensor(pixels))
    origin, direction = origins[0].numpy(), directions[:, 0].numpy()
    down = direction[:, 2] < -1e-9
    distance = -origin[2] / np.where(down, direction[:, 2], -1.0)
    floor = np.where(down[:, None], origin[:2] + distance[:, None] * direction[:, :2], np.inf)
    image = texture.sample(floor).reshape(height, width, 3)
    corner = np.hypot(width, height) / 2
    off_centre = np.hypot(cols - (width - 1) / 2, rows - (height - 1) / 2) / corner
    light = rng.uniform(0.94, 1.06) * (1 - 0.12 * off_centre**2)
    return np.clip(image * light[..., None].astype(np.float32), 0, 255)


def _render_view(
    camera: Camera,
    background: np.ndarray,
    joints2d: np.ndarray,
    lengths: np.ndarray,
    lift: np.ndarray,
    groom: np.ndarray,
    noise_sigma: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one camera's video with the 2D renderer.

    Parameters
    ----------
    camera : Camera
        The camera.
    background : ndarray
        ``(H, W, 3)`` float32 its view of the empty arena.
    joints2d : ndarray
        ``(T, J, 2)`` the joints projected into it, pixels.
    lengths : ndarray
        ``(T,)`` the body length in pixels at the animal's distance in each frame.
    lift, groom : ndarray
        ``(T,)`` rearing and grooming amounts, 0-1.
    noise_sigma : float
        Sensor noise, grey levels.
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    frames : ndarray
        ``(T, H, W, 3)`` uint8.
    masks : ndarray
        ``(T, H, W)`` bool: where the animal is drawn.
    """
    height, width = camera.image_shape
    arena = Arena(image=background, floor=FloorBox(0, 0, width - 1, height - 1))
    renderer = FrameRenderer(arena, float(lengths.mean()), 1, None, noise_sigma, rng)
    noise_starts = rng.integers(0, renderer.noise_windows, len(joints2d))
    frames = np.empty((len(joints2d), height, width, 3), np.uint8)
    labels = np.empty((len(joints2d), height, width), np.uint8)
    for t in range(len(joints2d)):
        renderer.render(
            joints2d[t, None],
            lift[t, None],
            groom[t, None],
            1.0,
            int(noise_starts[t]),
            frames[t],
            labels[t],
            length=float(lengths[t]),
        )
    return frames, labels > 0


def generate_multiview(config: MultiViewConfig) -> MultiViewVideo:
    """Generate a synthetic multi-camera recording in memory.

    Parameters
    ----------
    config : MultiViewConfig
        What to generate.

    Returns
    -------
    MultiViewVideo
        Frames ``(V, T, H, W, 3)``, 3D joints ``(T, J, 3)`` mm, their projections
        ``(T, V, J, 2)`` px, masks ``(V, T, H, W)`` and the cameras.
    """
    camera_seed, floor_seed, motion_seed, noise_seed = np.random.SeedSequence(config.seed).spawn(4)
    cameras = make_cameras(config, np.random.default_rng(camera_seed))
    floor_rng = np.random.default_rng(floor_seed)
    texture_size = 2 * max(config.image_size)
    texture = _FloorTexture(make_arena(texture_size, texture_size, floor_rng), config.arena_mm)
    length = config.body_length_mm
    floor_joints, lift, groom = _floor_motion(config, np.random.default_rng(motion_seed))
    joints3d = joints_in_3d(floor_joints, lift, groom, length, config.fps)
    rig = CameraRig(cameras)
    joints2d = rig.project_numpy(joints3d).transpose(0, 2, 1, 3)  # (T, V, J, 2)
    depth = rig.depth(torch.as_tensor(joints3d[:, SPINE_MID])).numpy()  # (T, V) mm
    views = [
        _render_view(
            camera,
            _background(camera, texture, floor_rng),
            joints2d[:, v],
            length * camera.matrix[0, 0] / depth[:, v],
            lift,
            groom,
            config.noise_sigma,
            np.random.default_rng(seed),
        )
        for v, (camera, seed) in enumerate(
            zip(cameras, noise_seed.spawn(len(cameras)), strict=True)
        )
    ]
    return MultiViewVideo(
        frames=np.stack([frames for frames, _ in views]),
        joints3d=joints3d,
        joints2d=joints2d,
        animal_masks=np.stack([masks for _, masks in views]),
        cameras=cameras,
        fps=config.fps,
        joint_names=JOINT_NAMES,
        config=config,
        body_length_mm=length,
    )


# --- files ----------------------------------------------------------------------------------


def write_multiview_sample(
    folder: str | Path, config: MultiViewConfig | None = None
) -> MultiViewSample:
    """Generate a recording and write it as a session folder.

    Parameters
    ----------
    folder : str or Path
        Created if missing. Receives ``<camera name>.mp4`` per camera (H.264),
        ``calibration.toml`` (anipose) and ``ground_truth_3d.h5``, each written atomically.
    config : MultiViewConfig, optional
        What to generate (default: ``MultiViewConfig()``).

    Returns
    -------
    MultiViewSample
        The paths of the written files.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    video = generate_multiview(config or MultiViewConfig())
    videos = [
        write_video(folder / f"{camera.name}.mp4", frames, video.fps)
        for camera, frames in zip(video.cameras, video.frames, strict=True)
    ]
    calibration = write_calibration(
        folder / CALIBRATION_FILE,
        video.cameras,
        {"units": "mm", "generator": "bkind_model.multiview.synthetic"},
    )
    return MultiViewSample(videos, calibration, _save_ground_truth(video, folder))


def _save_ground_truth(video: MultiViewVideo, folder: Path) -> Path:
    """Write ``ground_truth_3d.h5`` of ``video`` into ``folder``; the file's path."""
    path = folder / GROUND_TRUTH_FILE
    text = h5py.string_dtype()
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = _FORMAT
        f.attrs["format_version"] = _FORMAT_VERSION
        f.attrs["fps"] = video.fps
        f.attrs["body_length_mm"] = video.body_length_mm
        f.attrs["config"] = json.dumps(video.config.to_dict())
        f.create_dataset("joints3d", data=video.joints3d)
        f.create_dataset("joints2d", data=video.joints2d)
        f.create_dataset("joint_names", data=np.array(video.joint_names, dtype=text))
        f.create_dataset("camera_names", data=np.array([c.name for c in video.cameras], text))
    return path


def load_ground_truth_3d(path: str | Path) -> GroundTruth3D:
    """Read the ground truth written by :func:`write_multiview_sample`.

    Parameters
    ----------
    path : str or Path
        The ``ground_truth_3d.h5`` file, or the sample folder holding it.

    Raises
    ------
    GroundTruthError
        When the file is missing, is not HDF5, or is not such a ground truth: a missing
        entry, names that are not text, a frame rate that is not a positive number, joints
        of another shape than ``(T, J, 3)`` (3D) and ``(T, V, J, 2)`` (their projections),
        or names that do not match them.
    """
    path = Path(path)
    if path.is_dir():
        path = path / GROUND_TRUTH_FILE
    fix = "Pass the ground_truth_3d.h5 written by write_multiview_sample()."
    if not path.is_file():
        raise GroundTruthError(path, "ground-truth file not found.", fix)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != _FORMAT:
                raise GroundTruthError(path, "not a synthetic multi-view ground truth.", fix)
            truth = GroundTruth3D(
                joints3d=np.asarray(f["joints3d"][()], np.float64),
                joints2d=np.asarray(f["joints2d"][()], np.float64),
                joint_names=_names(f, "joint_names", path, fix),
                camera_names=_names(f, "camera_names", path, fix),
                fps=_positive(f.attrs["fps"], "fps", path, fix),
                body_length_mm=_positive(f.attrs["body_length_mm"], "body_length_mm", path, fix),
            )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise GroundTruthError(path, f"cannot be read as a ground truth ({reason}).", fix) from exc
    _check_shapes(truth, path, fix)
    return truth


def _names(f: h5py.File, key: str, path: Path, fix: str) -> tuple[str, ...]:
    """The text dataset ``key`` as a tuple of names."""
    dataset = f[key]
    if not isinstance(dataset, h5py.Dataset) or h5py.check_string_dtype(dataset.dtype) is None:
        raise GroundTruthError(path, f"{key} is not a list of text names.", fix)
    return tuple(str(n) for n in np.atleast_1d(dataset.asstr()[()]))


def _positive(value: object, key: str, path: Path, fix: str) -> float:
    """The attribute ``key`` as a positive finite number."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not 0 < number < math.inf:
        raise GroundTruthError(path, f"{key} is {value!r}, not a positive number.", fix)
    return number


def _check_shapes(truth: GroundTruth3D, path: Path, fix: str) -> None:
    """``joints3d`` ``(T, J, 3)`` and ``joints2d`` ``(T, V, J, 2)`` match the names."""
    j, v = len(truth.joint_names), len(truth.camera_names)
    problems = []
    if truth.joints3d.ndim != 3 or truth.joints3d.shape[1:] != (j, 3):
        problems.append(f"joints3d has shape {truth.joints3d.shape}, not (frames, {j}, 3)")
    frames = truth.joints3d.shape[0] if truth.joints3d.ndim else -1
    if truth.joints2d.shape != (frames, v, j, 2):
        problems.append(
            f"joints2d has shape {truth.joints2d.shape}, not ({frames}, {v}, {j}, 2) (frames, "
            "cameras, joints, xy)"
        )
    if problems:
        raise GroundTruthError(path, "; ".join(problems) + ".", fix)
