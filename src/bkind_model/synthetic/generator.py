"""Synthetic videos of animals with ground truth: configuration, whole clips, chunk streams."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy import ndimage

from bkind_model.synthetic.motion import BEHAVIOUR_NAMES, Motion, simulate_motion
from bkind_model.synthetic.render import FrameRenderer, ShadowSpec, make_arena
from bkind_model.synthetic.skeleton import BONES, JOINT_NAMES


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. The same configuration always gives the same video.

    Parameters
    ----------
    height, width : int
        Frame size in pixels (at least 32; even sizes are needed to write H.264).
    n_frames : int
        Number of frames.
    fps : float
        Frame rate, frames per second; the animals move in seconds, not frames.
    seed : int
        Seed of every random choice (arena, behaviour, noise, flicker).
    n_animals : int
        Number of animals; each has a slightly different look.
    animal_length : float, optional
        Body length, snout to tail base, in pixels (the tail adds 0.8 of it). Default:
        a fifth of the frame's short side.
    shadow : bool
        Whether the animals cast a shadow on the floor.
    shadow_gain : float
        Factor (0-1) by which a shadow scales the floor's RGB; the hue is kept.
    shadow_angle : float
        Direction in which shadows fall, degrees from ``+x`` towards ``+y`` (down-right: 45).
    shadow_distance : float
        Shift of the shadow from the animal on four paws, in body lengths (twice as far for a
        rearing animal).
    noise_sigma : float
        Standard deviation of Gaussian sensor noise, in grey levels (0-255).
    flicker : float
        Relative amplitude of the lighting's brightness changes over time (0.05: about 5 %).
    wheel_hz : float
        0: none. Otherwise a spoked wheel (a moving background object, like a running wheel
        or a rotating lever) in the top-left corner, behind the animals, turning at this
        many revolutions per second; its 8 spokes repeat every 1/8 revolution.
    """

    height: int = 256
    width: int = 256
    n_frames: int = 300
    fps: float = 30.0
    seed: int = 0
    n_animals: int = 1
    animal_length: float | None = None
    shadow: bool = False
    shadow_gain: float = 0.6
    shadow_angle: float = 45.0
    shadow_distance: float = 0.2
    noise_sigma: float = 2.0
    flicker: float = 0.0
    wheel_hz: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if min(self.height, self.width) < 32:
            problems.append(f"frame size {self.width}x{self.height} is below 32 pixels")
        if self.n_frames < 1 or self.n_animals < 1:
            problems.append("n_frames and n_animals must be at least 1")
        if not self.fps > 0:
            problems.append(f"fps must be positive, not {self.fps}")
        if self.animal_length is not None and not 4 <= self.animal_length <= 0.6 * min(
            self.height, self.width
        ):
            problems.append(
                f"animal_length {self.animal_length} must be 4 px to 0.6 of the short side"
            )
        if not 0 < self.shadow_gain < 1:
            problems.append(f"shadow_gain must be between 0 and 1, not {self.shadow_gain}")
        if self.noise_sigma < 0 or not 0 <= self.flicker <= 0.5:
            problems.append("noise_sigma must be >= 0 and flicker between 0 and 0.5")
        if not 0 <= self.wheel_hz <= 100:
            problems.append(f"wheel_hz must be between 0 and 100, not {self.wheel_hz}")
        if problems:
            raise ValueError("SyntheticConfig: " + "; ".join(problems) + ".")

    @property
    def body_length(self) -> float:
        """Body length in pixels, snout to tail base."""
        if self.animal_length is not None:
            return float(self.animal_length)
        return 0.2 * min(self.height, self.width)

    def to_dict(self) -> dict:
        """The configuration as a JSON-compatible dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SyntheticConfig:
        """The configuration from :meth:`to_dict`'s output (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class SyntheticVideo:
    """A synthetic clip and its ground truth.

    Coordinates are pixels ``(x, y)`` with the origin at the centre of the top-left pixel:
    pixel ``frames[t, row, col]`` has its centre at ``x = col, y = row``.

    Attributes
    ----------
    frames : ndarray or None
        ``(T, H, W, 3)`` uint8 RGB frames; None when not kept (ground truth loaded from disk).
    joints : ndarray
        ``(T, A, J, 2)`` float32 joint positions ``(x, y)`` in pixels, ``A`` animals,
        ``J`` joints named by ``joint_names``. Joints hidden under the body or under another
        animal are still given (every joint lies inside the union of the animals' masks).
    behaviour : ndarray
        ``(T, A)`` int8 behaviour of each animal per frame, indices into ``behaviour_names``.
    animal_labels : ndarray or None
        ``(T, H, W)`` uint8: 0 where no animal is, ``i + 1`` where animal ``i`` is on top.
        None when masks were not asked for.
    shadow_mask : ndarray or None
        ``(T, H, W)`` bool: cast shadow not covered by an animal; all False without shadows.
        None when masks were not asked for.
    background : ndarray
        ``(H, W, 3)`` uint8 RGB: the empty arena, without noise or flicker.
    joint_names : tuple of str
        Names of the ``J`` joints.
    bones : tuple of (int, int)
        Pairs of joint indices to draw as a skeleton.
    behaviour_names : tuple of str
        Names of the behaviour codes.
    fps : float
        Frame rate, frames per second.
    config : SyntheticConfig
        The configuration that made the clip.
    """

    frames: np.ndarray | None
    joints: np.ndarray
    behaviour: np.ndarray
    animal_labels: np.ndarray | None
    shadow_mask: np.ndarray | None
    background: np.ndarray
    joint_names: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    behaviour_names: tuple[str, ...]
    fps: float
    config: SyntheticConfig

    @property
    def animal_mask(self) -> np.ndarray | None:
        """``(T, H, W)`` bool: where any animal is; None when masks were not asked for."""
        return None if self.animal_labels is None else self.animal_labels > 0

    @property
    def n_frames(self) -> int:
        """Number of frames ``T``."""
        return len(self.joints)


@dataclass
class SyntheticChunk:
    """Consecutive frames ``start .. start + n - 1`` of a synthetic video (see SyntheticVideo).

    Attributes
    ----------
    start : int
        Index of the chunk's first frame in the video.
    frames : ndarray
        ``(n, H, W, 3)`` uint8 RGB.
    joints : ndarray
        ``(n, A, J, 2)`` float32 pixels.
    behaviour : ndarray
        ``(n, A)`` int8 codes.
    animal_labels, shadow_mask : ndarray or None
        ``(n, H, W)`` uint8 and bool masks, None when not asked for.
    """

    start: int
    frames: np.ndarray
    joints: np.ndarray
    behaviour: np.ndarray
    animal_labels: np.ndarray | None
    shadow_mask: np.ndarray | None


class Scene:
    """Everything fixed before the first frame is drawn: arena, motion, flicker, noise.

    Parameters
    ----------
    config : SyntheticConfig
        What to generate.
    """

    def __init__(self, config: SyntheticConfig) -> None:
        arena_seed, motion_seed, noise_seed, light_seed = np.random.SeedSequence(
            config.seed
        ).spawn(4)
        length = config.body_length
        self.config = config
        arena = make_arena(config.height, config.width, np.random.default_rng(arena_seed))
        self.background = np.rint(arena.image).astype(np.uint8)
        self.motion: Motion = simulate_motion(
            config.n_frames,
            config.fps,
            config.n_animals,
            length,
            arena.floor,
            np.random.default_rng(motion_seed),
        )
        shadow = None
        if config.shadow:
            angle = math.radians(config.shadow_angle)
            distance = config.shadow_distance * length
            shadow = ShadowSpec(
                config.shadow_gain, (distance * math.cos(angle), distance * math.sin(angle))
            )
        self.renderer = FrameRenderer(
            arena,
            length,
            config.n_animals,
            shadow,
            config.noise_sigma,
            np.random.default_rng(noise_seed),
        )
        light_rng = np.random.default_rng(light_seed)
        self.gains = _flicker(config, light_rng)
        self.noise_starts = light_rng.integers(0, self.renderer.noise_windows, config.n_frames)

    def render(
        self,
        start: int,
        frames: np.ndarray,
        labels: np.ndarray | None,
        shadow_mask: np.ndarray | None,
    ) -> None:
        """Draw frames ``start .. start + len(frames) - 1`` into the given output arrays."""
        if self.config.wheel_hz and labels is None:
            labels = np.empty(frames.shape[:3], np.uint8)  # where the wheel is hidden
        for i in range(len(frames)):
            t = start + i
            self.renderer.render(
                self.motion.joints[t],
                self.motion.lift[t],
                self.motion.groom[t],
                float(self.gains[t]),
                int(self.noise_starts[t]),
                frames[i],
                None if labels is None else labels[i],
                None if shadow_mask is None else shadow_mask[i],
            )
            if self.config.wheel_hz:
                assert labels is not None
                _draw_wheel(frames[i], labels[i], t / self.config.fps * self.config.wheel_hz)

    def chunks(self, chunk: int, with_masks: bool) -> Iterator[SyntheticChunk]:
        """Draw the video in chunks of ``chunk`` frames (see :func:`iter_frames`)."""
        config = self.config
        for start in range(0, config.n_frames, chunk):
            stop = min(start + chunk, config.n_frames)
            frames = np.empty((stop - start, config.height, config.width, 3), dtype=np.uint8)
            labels, shadow_mask = _masks(stop - start, config, with_masks)
            self.render(start, frames, labels, shadow_mask)
            yield SyntheticChunk(
                start=start,
                frames=frames,
                joints=self.motion.joints[start:stop],
                behaviour=self.motion.behaviour[start:stop],
                animal_labels=labels,
                shadow_mask=shadow_mask,
            )

    def video(
        self,
        frames: np.ndarray | None,
        labels: np.ndarray | None,
        shadow_mask: np.ndarray | None,
    ) -> SyntheticVideo:
        """A :class:`SyntheticVideo` of this scene with the given frames and masks."""
        return SyntheticVideo(
            frames=frames,
            joints=self.motion.joints,
            behaviour=self.motion.behaviour,
            animal_labels=labels,
            shadow_mask=shadow_mask,
            background=self.background,
            joint_names=JOINT_NAMES,
            bones=BONES,
            behaviour_names=BEHAVIOUR_NAMES,
            fps=self.config.fps,
            config=self.config,
        )


WHEEL_SPOKES = 8


def _draw_wheel(frame: np.ndarray, labels: np.ndarray, turns: float) -> None:
    """Paint the wheel, turned by ``turns`` revolutions, where no animal is on top.

    Parameters
    ----------
    frame : ndarray
        ``(H, W, 3)`` uint8 frame, drawn in place.
    labels : ndarray
        ``(H, W)`` animal labels of the frame (0: no animal).
    """
    height, width = labels.shape
    radius = 0.18 * min(height, width)
    centre = 1.1 * radius
    size = int(2.2 * radius) + 1
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - centre
    inside = (np.hypot(x, y) <= radius) & (labels[:size, :size] == 0)
    angle = np.arctan2(y, x) / (2 * np.pi) - turns
    spoke = np.cos(2 * np.pi * WHEEL_SPOKES * angle) > 0.3
    rim = np.hypot(x, y) > 0.85 * radius
    shade = np.where(spoke | rim, 40, 200).astype(np.uint8)
    frame[:size, :size][inside] = shade[inside, None]


def _flicker(config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness factor per frame ``(T,)``: a slow beat plus smooth random drift."""
    times = np.arange(config.n_frames) / config.fps
    beat = np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * times + rng.uniform(0, 2 * np.pi))
    drift = ndimage.gaussian_filter1d(rng.standard_normal(config.n_frames), 0.1 * config.fps)
    drift /= max(float(drift.std()), 1e-6)
    return (1 + config.flicker * (0.7 * beat + 0.3 * drift)).astype(np.float32)


def _masks(n: int, config: SyntheticConfig, with_masks: bool) -> tuple:
    """Empty label ``(n, H, W)`` uint8 and shadow ``(n, H, W)`` bool arrays, or Nones."""
    if not with_masks:
        return None, None
    shape = (n, config.height, config.width)
    return np.zeros(shape, dtype=np.uint8), np.zeros(shape, dtype=bool)


def iter_frames(
    config: SyntheticConfig, chunk: int = 64, *, with_masks: bool = True
) -> Iterator[SyntheticChunk]:
    """Generate a synthetic video chunk by chunk, never holding more than ``chunk`` frames.

    Parameters
    ----------
    config : SyntheticConfig
        What to generate.
    chunk : int
        Frames per chunk (the last one may be shorter).
    with_masks : bool
        Whether to draw the animal labels and shadow masks too.

    Returns
    -------
    iterator of SyntheticChunk
        Consecutive chunks; together they equal :func:`generate`'s arrays.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 frame, not {chunk}.")
    return Scene(config).chunks(chunk, with_masks)


def generate(config: SyntheticConfig, *, with_masks: bool = True) -> SyntheticVideo:
    """Generate a whole synthetic video in memory.

    Parameters
    ----------
    config : SyntheticConfig
        What to generate.
    with_masks : bool
        Whether to draw the animal labels and shadow masks too.

    Returns
    -------
    SyntheticVideo
        Frames ``(T, H, W, 3)`` uint8 and the ground truth.
    """
    scene = Scene(config)
    frames = np.empty((config.n_frames, config.height, config.width, 3), dtype=np.uint8)
    labels, shadow_mask = _masks(config.n_frames, config, with_masks)
    scene.render(0, frames, labels, shadow_mask)
    return scene.video(frames, labels, shadow_mask)
