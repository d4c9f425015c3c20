"""The synthetic animal's skeleton: joint names, bones and joints from a few body parameters.

Coordinates are image pixels ``(x, y)``: ``x`` to the right, ``y`` down, and the origin at the
centre of the top-left pixel (pixel ``[row, col]`` has its centre at ``x = col, y = row``).
Angles are in radians, measured from the ``+x`` axis towards ``+y`` (clockwise on screen).
The camera looks down on the animal and its image is not mirrored, so the animal's left side
is on the screen's left when it walks up the screen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "snout",
    "left_ear",
    "right_ear",
    "neck",
    "spine_mid",
    "hip",
    "tail_base",
    "tail_mid",
    "tail_tip",
    "fore_left",
    "fore_right",
    "hind_left",
    "hind_right",
)
(
    SNOUT,
    LEFT_EAR,
    RIGHT_EAR,
    NECK,
    SPINE_MID,
    HIP,
    TAIL_BASE,
    TAIL_MID,
    TAIL_TIP,
    FORE_LEFT,
    FORE_RIGHT,
    HIND_LEFT,
    HIND_RIGHT,
) = range(len(JOINT_NAMES))

#: Bones as pairs of indices into :data:`JOINT_NAMES`, for drawing a skeleton.
BONES: tuple[tuple[int, int], ...] = (
    (SNOUT, LEFT_EAR),
    (SNOUT, RIGHT_EAR),
    (LEFT_EAR, NECK),
    (RIGHT_EAR, NECK),
    (NECK, SPINE_MID),
    (SPINE_MID, HIP),
    (HIP, TAIL_BASE),
    (TAIL_BASE, TAIL_MID),
    (TAIL_MID, TAIL_TIP),
    (NECK, FORE_LEFT),
    (NECK, FORE_RIGHT),
    (HIP, HIND_LEFT),
    (HIP, HIND_RIGHT),
)

# Proportions in body lengths (snout to tail base along a straight spine).
HEAD = 0.25  # snout -> neck
FRONT = 0.33  # neck -> spine_mid
BACK = 0.27  # spine_mid -> hip
RUMP = 0.15  # hip -> tail_base
TAIL_SEGMENT = 0.4  # tail_base -> tail_mid and tail_mid -> tail_tip
EAR_FORWARD = 0.05  # ears sit this far in front of the neck ...
EAR_SIDE = 0.085  # ... and this far to either side
FORE_BACK = 0.03  # forepaws rest this far behind the neck ...
FORE_SIDE = 0.14  # ... and this far to either side
HIND_BACK = 0.04  # hind paws rest this far behind the hip ...
HIND_SIDE = 0.17  # ... and this far to either side
STRIDE = 0.09  # forward and backward swing of a paw at full gait
# Trot: diagonal paws move together (fore_left, fore_right, hind_left, hind_right).
GAIT_PHASES = (0.0, np.pi, np.pi, 0.0)


@dataclass
class Pose:
    """Body parameters of one animal in one frame (or arrays of them, all one shape).

    Parameters
    ----------
    x, y : float or ndarray
        Position of ``spine_mid`` in pixels.
    heading : float or ndarray
        Direction of the body at ``spine_mid`` (tail to head), in radians.
    bend : float or ndarray
        Bend of the spine over one body length, in radians; positive turns the head
        towards increasing heading.
    lift : float or ndarray
        Rearing, 0 (on four paws) to 1 (upright): the front body and head foreshorten,
        the ears and forepaws come together.
    groom : float or ndarray
        Grooming, 0 to 1: the forepaws move to the face, the head nods.
    tuck : float or ndarray
        Resting, 0 to 1: the paws tuck under the body.
    gait : float or ndarray
        Stepping amplitude, 0 (still) to 1 (full stride).
    gait_phase : float or ndarray
        Phase of the step cycle, in radians.
    head_yaw : float or ndarray
        Turn of the head relative to the neck, in radians.
    tail_near, tail_far : float or ndarray
        Extra angle of the two tail segments relative to the spine's continuation, radians.
    """

    x: float | np.ndarray
    y: float | np.ndarray
    heading: float | np.ndarray
    bend: float | np.ndarray = 0.0
    lift: float | np.ndarray = 0.0
    groom: float | np.ndarray = 0.0
    tuck: float | np.ndarray = 0.0
    gait: float | np.ndarray = 0.0
    gait_phase: float | np.ndarray = 0.0
    head_yaw: float | np.ndarray = 0.0
    tail_near: float | np.ndarray = 0.0
    tail_far: float | np.ndarray = 0.0


def _unit(angle: np.ndarray) -> np.ndarray:
    """Unit vectors ``(..., 2)`` pointing along ``angle`` (radians)."""
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1)


def _left(direction: np.ndarray) -> np.ndarray:
    """The animal's left of a forward ``direction`` ``(..., 2)`` seen from above (y down)."""
    return np.stack([direction[..., 1], -direction[..., 0]], axis=-1)


def _paws(
    anchor: np.ndarray,
    forward: np.ndarray,
    back: float,
    side: np.ndarray,
    stride: np.ndarray,
    phases: tuple[float, float],
    gait_phase: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Left and right paw ``(..., 2)`` around ``anchor``, swinging along ``forward``."""
    left = _left(forward)
    paws = []
    for phase, sign in zip(phases, (1.0, -1.0), strict=True):
        along = -back + stride * np.sin(gait_phase + phase)
        paws.append(anchor + along[..., None] * forward + (sign * side)[..., None] * left)
    return paws[0], paws[1]


def joints_from_pose(pose: Pose, length: float) -> np.ndarray:
    """Place the joints of an animal from its body parameters.

    Parameters
    ----------
    pose : Pose
        Body parameters; array-valued fields give a batch of poses.
    length : float
        Body length in pixels, snout to tail base along a straight spine.

    Returns
    -------
    ndarray
        ``(..., J, 2)`` float64 joint positions ``(x, y)`` in pixels, ``J = len(JOINT_NAMES)``,
        in the order of :data:`JOINT_NAMES`.
    """
    p = {name: np.asarray(value, dtype=np.float64) for name, value in vars(pose).items()}
    p = dict(zip(p, np.broadcast_arrays(*p.values()), strict=True))
    lift, groom, tuck, gait = p["lift"], p["groom"], p["tuck"], p["gait"]
    heading = p["heading"]
    curvature = p["bend"] / length  # radians per pixel of spine
    front = FRONT * length * (1 - 0.6 * lift - 0.15 * groom)
    head = HEAD * length * (1 - 0.55 * lift - 0.2 * groom - 0.15 * tuck)
    back = BACK * length * (1 - 0.1 * lift - 0.1 * groom)
    rump = RUMP * length
    tail = TAIL_SEGMENT * length

    spine_mid = np.stack([p["x"], p["y"]], axis=-1)
    neck = spine_mid + front[..., None] * _unit(heading + curvature * front / 2)
    head_dir = _unit(heading + curvature * (front + head / 2) + p["head_yaw"])
    snout = neck + head[..., None] * head_dir
    hip = spine_mid - back[..., None] * _unit(heading - curvature * back / 2)
    tail_base = hip - rump * _unit(heading - curvature * (back + rump / 2))
    # The tail continues the spine's bend at half the curvature, plus its own sway.
    tail_angle = heading - curvature * (back + rump) - 0.5 * curvature * tail / 2
    tail_mid = tail_base - tail * _unit(tail_angle + p["tail_near"])
    tail_tip = tail_mid - tail * _unit(tail_angle + p["tail_near"] + p["tail_far"])

    ear_side = EAR_SIDE * length * (1 - 0.3 * lift)
    ear_centre = neck + (EAR_FORWARD * length * (1 - 0.4 * lift))[..., None] * head_dir
    left_ear = ear_centre + ear_side[..., None] * _left(head_dir)
    right_ear = ear_centre - ear_side[..., None] * _left(head_dir)

    stride = STRIDE * length * gait
    neck_dir = _unit(heading + curvature * front)
    fore_side = FORE_SIDE * length * (1 + 0.3 * gait) * (1 - 0.35 * tuck)
    fore = _paws(
        neck, neck_dir, FORE_BACK * length, fore_side, stride, GAIT_PHASES[:2], p["gait_phase"]
    )
    # Rearing: forepaws held together in front of the chest; grooming: at the face.
    chest = neck + 0.03 * length * neck_dir
    face = neck + (0.5 * head)[..., None] * head_dir
    held_side = 0.05 * length
    fore_paws = []
    for paw, sign in zip(fore, (1.0, -1.0), strict=True):
        paw = _blend(paw, chest + sign * held_side * _left(neck_dir), lift)
        fore_paws.append(_blend(paw, face + sign * held_side * _left(head_dir), groom))
    fore_left, fore_right = fore_paws

    hip_dir = _unit(heading - curvature * back)
    hind_side = HIND_SIDE * length * (1 + 0.25 * gait + 0.1 * lift) * (1 - 0.3 * tuck)
    hind_left, hind_right = _paws(
        hip, hip_dir, HIND_BACK * length, hind_side, stride, GAIT_PHASES[2:], p["gait_phase"]
    )
    joints = (
        snout, left_ear, right_ear, neck, spine_mid, hip, tail_base, tail_mid, tail_tip,
        fore_left, fore_right, hind_left, hind_right,
    )  # fmt: skip
    return np.stack(joints, axis=-2)


def _blend(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``a`` moved towards ``b`` by ``weight`` (0 keeps ``a``, 1 gives ``b``)."""
    return a + weight[..., None] * (b - a)
