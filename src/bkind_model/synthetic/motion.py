"""Behaviour and movement of the synthetic animals: a state machine driving body parameters.

Each animal is in one behaviour per frame (:data:`BEHAVIOUR_NAMES`). A behaviour sets targets
for speed, turning rate and posture; the actual values follow their targets smoothly, so the
body changes shape continuously between behaviours. Animals turn away from the walls and
from each other and are kept inside the floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bkind_model.synthetic.skeleton import (
    HIP,
    JOINT_NAMES,
    NECK,
    SNOUT,
    SPINE_MID,
    TAIL_BASE,
    Pose,
    joints_from_pose,
)

BEHAVIOUR_NAMES: tuple[str, ...] = ("walk", "turn", "rear", "groom", "rest")
WALK, TURN, REAR, GROOM, REST = range(len(BEHAVIOUR_NAMES))

# Probability of the next behaviour (columns) after each behaviour (rows).
_TRANSITIONS = np.array(
    [
        # walk  turn  rear  groom rest
        [0.20, 0.30, 0.20, 0.18, 0.12],  # after walk
        [0.70, 0.00, 0.15, 0.15, 0.00],  # after turn
        [0.40, 0.20, 0.00, 0.30, 0.10],  # after rear
        [0.40, 0.10, 0.20, 0.00, 0.30],  # after groom
        [0.60, 0.00, 0.10, 0.30, 0.00],  # after rest
    ]
)
# Duration of a bout of each behaviour, uniform between these bounds, in seconds.
_DURATION_S = ((1.0, 3.0), (0.4, 1.0), (0.6, 1.6), (1.0, 2.5), (1.0, 2.5))
_MAX_GOAL_TURN_S = 3.0  # a turn away from a wall or animal gives up after this long
_POSTURE_TAU_S = 0.15  # time constant with which the posture follows its targets
_MOTION_TAU_S = 0.2  # time constant with which speed and turning rate follow theirs
_GROOM_HZ = 2.5  # face-washing strokes per second
_STRIDE_LENGTHS = 0.45  # body lengths travelled per step cycle
_WALL_MARGIN = 0.16  # joints keep this many body lengths from the walls
_LOOK_AHEAD = 0.6  # body lengths ahead of spine_mid checked for walls and animals
_BODY_GAP = 0.36  # smallest distance between two animals' spines, in body lengths
_AXIS = (SNOUT, NECK, SPINE_MID, HIP, TAIL_BASE)


@dataclass(frozen=True)
class FloorBox:
    """The floor's extent in pixels (inclusive pixel-centre coordinates).

    Parameters
    ----------
    x0, y0, x1, y1 : float
        Left, top, right and bottom edge of the floor, in pixels.
    """

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def centre(self) -> tuple[float, float]:
        """Centre ``(x, y)`` of the floor, in pixels."""
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def contains(self, x: float, y: float, margin: float) -> bool:
        """Whether ``(x, y)`` lies at least ``margin`` pixels inside the floor."""
        return (
            self.x0 + margin <= x <= self.x1 - margin and self.y0 + margin <= y <= self.y1 - margin
        )


@dataclass
class Motion:
    """Simulated movement of all animals.

    Attributes
    ----------
    joints : ndarray
        ``(T, A, J, 2)`` float32 joint positions ``(x, y)`` in pixels, ``T`` frames,
        ``A`` animals, ``J`` joints in the order of ``JOINT_NAMES``.
    behaviour : ndarray
        ``(T, A)`` int8 behaviour codes, indices into :data:`BEHAVIOUR_NAMES`.
    lift, groom : ndarray
        ``(T, A)`` float32 rearing and grooming amounts, 0 to 1 (for the renderer: a raised
        head looks larger, raised forepaws are drawn above the head).
    """

    joints: np.ndarray
    behaviour: np.ndarray
    lift: np.ndarray
    groom: np.ndarray


def _wrap(angle: float) -> float:
    """``angle`` wrapped into ``[-pi, pi)`` radians."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


@dataclass
class _Animal:
    """Mutable state of one simulated animal; speeds in body lengths per second."""

    x: float
    y: float
    heading: float
    state: int
    frames_left: int
    speed: float = 0.0
    omega: float = 0.0
    bend: float = 0.0
    lift: float = 0.0
    groom: float = 0.0
    tuck: float = 0.0
    gait: float = 0.0
    gait_phase: float = 0.0
    tail_phase: float = 0.0  # the tail sways once every two steps
    wander: float = 0.0
    sniff: float = 0.0
    tail: list[float] = field(default_factory=lambda: [0.0, 0.0])
    clock: float = 0.0  # seconds since the bout started
    bout_speed: float = 0.0
    bout_turn: float = 0.0  # signed turning rate of a turn bout, rad/s
    bout_bend: float = 0.0
    goal: tuple[float, float] | None = None  # point a goal-directed turn turns towards

    def start(self, state: int, fps: float, rng: np.random.Generator) -> None:
        """Begin a bout of ``state`` with a random duration and random bout parameters."""
        low, high = _DURATION_S[state]
        self.state = state
        self.frames_left = max(1, round(rng.uniform(low, high) * fps))
        self.clock = 0.0
        self.goal = None
        self.bout_speed = rng.uniform(0.8, 1.6) if state == WALK else 0.0
        sign = rng.choice((-1.0, 1.0))
        self.bout_turn = sign * rng.uniform(2.0, 3.5)
        self.bout_bend = sign * rng.uniform(0.3, 0.8) if state == REST else 0.0

    def turn_towards(self, goal: tuple[float, float], fps: float) -> None:
        """Begin a turn that lasts until the animal faces ``goal`` (pixels)."""
        self.state = TURN
        self.frames_left = round(_MAX_GOAL_TURN_S * fps)
        self.clock = 0.0
        self.goal = goal
        self.bout_turn = math.copysign(3.0, self._angle_to(goal))

    def _angle_to(self, goal: tuple[float, float]) -> float:
        """Signed angle from the heading to the direction of ``goal``, radians."""
        return _wrap(math.atan2(goal[1] - self.y, goal[0] - self.x) - self.heading)

    def next_bout(self, fps: float, rng: np.random.Generator) -> None:
        """Count down the bout; start the next behaviour when it is over."""
        self.frames_left -= 1
        goal_reached = self.goal is not None and abs(self._angle_to(self.goal)) < 0.5
        if goal_reached or self.frames_left <= 0:
            self.start(int(rng.choice(len(BEHAVIOUR_NAMES), p=_TRANSITIONS[self.state])), fps, rng)

    def targets(self) -> dict[str, float]:
        """Targets of speed (body lengths/s), turning rate (rad/s) and posture for the bout."""
        zero = dict.fromkeys(("speed", "omega", "bend", "lift", "groom", "tuck", "gait"), 0.0)
        if self.state == WALK:
            bend = max(-1.0, min(1.0, self.wander / self.bout_speed))
            gait = min(1.0, self.bout_speed / 1.2)
            walk = {"speed": self.bout_speed, "omega": self.wander, "bend": bend, "gait": gait}
            return zero | walk
        if self.state == TURN:
            bend = math.copysign(1.0, self.bout_turn)
            return zero | {"speed": 0.25, "omega": self.bout_turn, "bend": bend, "gait": 0.6}
        if self.state == REAR:
            return zero | {"lift": 1.0}
        if self.state == GROOM:
            return zero | {"speed": 0.05, "omega": 0.3 * self.wander, "lift": 0.25, "groom": 1.0}
        return zero | {"bend": self.bout_bend, "tuck": 1.0}

    def advance(self, dt: float, rng: np.random.Generator) -> None:
        """Move the body parameters one frame of ``dt`` seconds towards the bout's targets."""
        self.clock += dt
        self.wander += -self.wander * dt / 0.7 + 1.2 * math.sqrt(dt) * rng.standard_normal()
        self.sniff += -self.sniff * dt / 0.3 + 0.25 * math.sqrt(dt) * rng.standard_normal()
        for i in range(2):
            self.tail[i] += -self.tail[i] * dt / 1.5 + 0.3 * math.sqrt(dt) * rng.standard_normal()
        posture = 1 - math.exp(-dt / _POSTURE_TAU_S)
        motion = 1 - math.exp(-dt / _MOTION_TAU_S)
        for name, target in self.targets().items():
            rate = motion if name in ("speed", "omega") else posture
            setattr(self, name, getattr(self, name) + rate * (target - getattr(self, name)))
        steps_per_s = self.speed / _STRIDE_LENGTHS + 1.5 * abs(self.omega) / (2 * math.pi)
        self.gait_phase = (self.gait_phase + 2 * math.pi * steps_per_s * dt) % (2 * math.pi)
        self.tail_phase = (self.tail_phase + math.pi * steps_per_s * dt) % (2 * math.pi)
        self.heading = _wrap(self.heading + self.omega * dt)

    def move(self, dt: float, length: float) -> None:
        """Translate the body along its heading by one frame of ``dt`` seconds."""
        self.x += self.speed * length * dt * math.cos(self.heading)
        self.y += self.speed * length * dt * math.sin(self.heading)

    def pose(self) -> Pose:
        """Body parameters for :func:`joints_from_pose`, with grooming strokes and sniffing."""
        stroke = 2 * math.pi * _GROOM_HZ * self.clock
        return Pose(
            x=self.x,
            y=self.y,
            heading=self.heading,
            bend=self.bend,
            lift=min(1.0, self.lift + 0.12 * self.groom * (0.5 + 0.5 * math.sin(stroke))),
            groom=self.groom * (0.85 + 0.15 * math.sin(2 * stroke)),
            tuck=self.tuck,
            gait=self.gait,
            gait_phase=self.gait_phase,
            head_yaw=self.groom * 0.35 * math.sin(stroke) + (1 - self.groom) * self.sniff,
            tail_near=0.25 * self.gait * math.sin(self.tail_phase) + self.tail[0],
            tail_far=0.35 * self.gait * math.sin(self.tail_phase - 0.9) + self.tail[1],
        )


def _place(
    n_animals: int, length: float, floor: FloorBox, rng: np.random.Generator, fps: float
) -> list[_Animal]:
    """Animals at random places on the floor, apart from each other where there is room."""
    margin = 0.9 * length
    animals: list[_Animal] = []
    for _ in range(n_animals):
        for _attempt in range(200):
            x = rng.uniform(floor.x0 + margin, max(floor.x0 + margin, floor.x1 - margin))
            y = rng.uniform(floor.y0 + margin, max(floor.y0 + margin, floor.y1 - margin))
            if all(math.hypot(x - a.x, y - a.y) >= 1.5 * length for a in animals):
                break
        heading = rng.uniform(-math.pi, math.pi)
        animal = _Animal(x=x, y=y, heading=heading, state=WALK, frames_left=1)
        animal.start(int(rng.choice((WALK, GROOM, REST))), fps, rng)
        animals.append(animal)
    return animals


def _avoid(
    animal: _Animal, others: np.ndarray, length: float, floor: FloorBox, fps: float
) -> None:
    """Start a turn when a walking animal heads into a wall or another animal.

    ``others`` holds the spine points ``(n, 2)`` of the other animals in the last frame.
    """
    if animal.state != WALK:
        return
    ahead_x = animal.x + _LOOK_AHEAD * length * math.cos(animal.heading)
    ahead_y = animal.y + _LOOK_AHEAD * length * math.sin(animal.heading)
    if not floor.contains(ahead_x, ahead_y, _WALL_MARGIN * length):
        animal.turn_towards(floor.centre, fps)
        return
    if len(others):
        dist = np.hypot(others[:, 0] - ahead_x, others[:, 1] - ahead_y)
        nearest = others[np.argmin(dist)]
        if dist.min() < 0.5 * length:
            away = (2 * animal.x - nearest[0], 2 * animal.y - nearest[1])
            animal.turn_towards(away, fps)


def _keep_apart(animals: list[_Animal], joints: np.ndarray, length: float) -> None:
    """Push animals whose spines come closer than the body gap apart (joints in place)."""
    gap = _BODY_GAP * length
    for i in range(len(animals)):
        for j in range(i + 1, len(animals)):
            a, b = joints[i, _AXIS], joints[j, _AXIS]
            diff = a[:, None, :] - b[None, :, :]
            dist = np.hypot(diff[..., 0], diff[..., 1])
            k = np.unravel_index(np.argmin(dist), dist.shape)
            if dist[k] >= gap:
                continue
            direction = diff[k] / max(dist[k], 1e-6)
            push = direction * (gap - dist[k]) / 2
            _shift(animals[i], joints[i], push)
            _shift(animals[j], joints[j], -push)


def _keep_inside(animal: _Animal, joints: np.ndarray, floor: FloorBox, margin: float) -> None:
    """Shift an animal (and its joints ``(J, 2)``, in place) back inside the floor."""
    low = joints.min(axis=0)
    high = joints.max(axis=0)
    dx = max(0.0, floor.x0 + margin - low[0]) - max(0.0, high[0] - (floor.x1 - margin))
    dy = max(0.0, floor.y0 + margin - low[1]) - max(0.0, high[1] - (floor.y1 - margin))
    if dx or dy:
        _shift(animal, joints, np.array([dx, dy]))


def _shift(animal: _Animal, joints: np.ndarray, offset: np.ndarray) -> None:
    """Translate an animal and its joints ``(J, 2)`` (in place) by ``offset`` pixels."""
    animal.x += float(offset[0])
    animal.y += float(offset[1])
    joints += offset


def _stack_poses(poses: list[Pose]) -> Pose:
    """One :class:`Pose` with a leading animal axis from one pose per animal."""
    return Pose(**{name: np.array([vars(p)[name] for p in poses]) for name in vars(poses[0])})


def simulate_motion(
    n_frames: int,
    fps: float,
    n_animals: int,
    length: float,
    floor: FloorBox,
    rng: np.random.Generator,
) -> Motion:
    """Simulate the behaviour and joints of ``n_animals`` animals for ``n_frames`` frames.

    Parameters
    ----------
    n_frames : int
        Number of frames ``T``.
    fps : float
        Frame rate, frames per second (sets how far the animals move per frame).
    n_animals : int
        Number of animals ``A``.
    length : float
        Body length in pixels, snout to tail base.
    floor : FloorBox
        Where the animals may go, in pixels.
    rng : numpy.random.Generator
        Source of randomness; the same state gives the same motion.

    Returns
    -------
    Motion
        Joints ``(T, A, J, 2)``, behaviour codes ``(T, A)``, rearing and grooming ``(T, A)``.
    """
    dt = 1.0 / fps
    animals = _place(n_animals, length, floor, rng, fps)
    joints = np.empty((n_frames, n_animals, len(JOINT_NAMES), 2), dtype=np.float32)
    behaviour = np.empty((n_frames, n_animals), dtype=np.int8)
    lift = np.empty((n_frames, n_animals), dtype=np.float32)
    groom = np.empty((n_frames, n_animals), dtype=np.float32)
    frame_joints = joints_from_pose(_stack_poses([a.pose() for a in animals]), length)
    for t in range(n_frames):
        for i, animal in enumerate(animals):
            others = np.delete(frame_joints, i, axis=0)[:, _AXIS].reshape(-1, 2)
            _avoid(animal, others, length, floor, fps)
            animal.advance(dt, rng)
            animal.move(dt, length)
        frame_joints = joints_from_pose(_stack_poses([a.pose() for a in animals]), length)
        _keep_apart(animals, frame_joints, length)
        for animal, animal_joints in zip(animals, frame_joints, strict=True):
            _keep_inside(animal, animal_joints, floor, _WALL_MARGIN * length)
        joints[t] = frame_joints
        behaviour[t] = [a.state for a in animals]
        lift[t] = [a.lift for a in animals]
        groom[t] = [a.groom for a in animals]
        for animal in animals:
            animal.next_bout(fps, rng)
    return Motion(joints=joints, behaviour=behaviour, lift=lift, groom=groom)
