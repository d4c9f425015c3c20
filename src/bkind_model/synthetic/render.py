"""Drawing the synthetic video: a static textured arena, the animals, their shadows, sensor noise.

Every animal is a stack of smooth parts (tapered capsules and discs along its bones) drawn
with antialiased edges and a rounded shading, only inside each part's bounding box. Pixel
centres sit at integer coordinates, as in :mod:`bkind_model.synthetic.skeleton`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from bkind_model.synthetic.motion import FloorBox
from bkind_model.synthetic.skeleton import (
    FORE_LEFT,
    FORE_RIGHT,
    HIND_LEFT,
    HIND_RIGHT,
    HIP,
    LEFT_EAR,
    NECK,
    RIGHT_EAR,
    SNOUT,
    SPINE_MID,
    TAIL_BASE,
    TAIL_MID,
    TAIL_TIP,
)

FLOOR_RGB = np.array([188.0, 180.0, 164.0], dtype=np.float32)
WALL_RGB = np.array([112.0, 118.0, 128.0], dtype=np.float32)
_MIN_RADIUS = 1.0  # pixels: the pixel nearest any joint is always covered by its part


@dataclass(frozen=True)
class AnimalLook:
    """Colours ``(r, g, b)`` (0-255) of an animal's fur, ears, paws and tail."""

    body: tuple[float, float, float]
    ears: tuple[float, float, float]
    paws: tuple[float, float, float]
    tail: tuple[float, float, float]


#: A dark mouse, a brown one and a grey one; more animals reuse them a little lighter.
ANIMAL_LOOKS: tuple[AnimalLook, ...] = (
    AnimalLook(body=(46, 43, 42), ears=(132, 102, 102), paws=(198, 150, 144), tail=(112, 98, 96)),
    AnimalLook(
        body=(98, 80, 66), ears=(156, 116, 106), paws=(206, 158, 146), tail=(148, 124, 112)
    ),
    AnimalLook(
        body=(78, 80, 88), ears=(144, 112, 114), paws=(200, 154, 150), tail=(130, 118, 120)
    ),
)


def animal_look(index: int) -> AnimalLook:
    """The look of animal ``index``: :data:`ANIMAL_LOOKS` in turn, lighter on each reuse."""
    base = ANIMAL_LOOKS[index % len(ANIMAL_LOOKS)]
    if index < len(ANIMAL_LOOKS):
        return base
    scale = 1 + 0.25 * (index // len(ANIMAL_LOOKS))
    lighter = {name: tuple(min(255.0, c * scale) for c in rgb) for name, rgb in vars(base).items()}
    return AnimalLook(**lighter)


@dataclass
class Arena:
    """The empty arena.

    Attributes
    ----------
    image : ndarray
        ``(H, W, 3)`` float32 RGB, 0-255, without noise or flicker.
    floor : FloorBox
        The floor inside the walls, in pixels.
    """

    image: np.ndarray
    floor: FloorBox


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth random field ``shape`` with unit spread and features about ``scale`` pixels wide."""
    step = max(1, int(scale // 6))
    coarse_shape = (-(-shape[0] // step), -(-shape[1] // step))
    coarse = ndimage.gaussian_filter(
        rng.standard_normal(coarse_shape), scale / step / 2, mode="wrap"
    )
    field = ndimage.zoom(coarse, step, order=1)[: shape[0], : shape[1]]
    return (field - field.mean()) / max(field.std(), 1e-6)


def _marks(
    rng: np.random.Generator, floor: FloorBox, yy: np.ndarray, xx: np.ndarray
) -> np.ndarray:
    """Brightness factor ``(H, W)`` of a few fixed stains and dots on the floor."""
    factor = np.ones(np.broadcast_shapes(yy.shape, xx.shape), dtype=np.float32)
    short = min(floor.x1 - floor.x0, floor.y1 - floor.y0)
    for _ in range(int(rng.integers(4, 8))):
        cx, cy = rng.uniform(floor.x0, floor.x1), rng.uniform(floor.y0, floor.y1)
        radius = short * rng.choice([rng.uniform(0.004, 0.01), rng.uniform(0.02, 0.05)])
        aspect, angle = rng.uniform(0.4, 1.0), rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
        v = ((yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle)) / aspect
        inside = np.clip((radius - np.hypot(u, v)) / max(1.0, 0.3 * radius) + 0.5, 0, 1)
        factor *= 1 - rng.uniform(0.04, 0.15) * inside
    return factor


def make_arena(height: int, width: int, rng: np.random.Generator) -> Arena:
    """Draw a static open-field arena: textured floor, a few marks, walls all round.

    Parameters
    ----------
    height, width : int
        Frame size in pixels.
    rng : numpy.random.Generator
        Source of randomness; the same state gives the same arena.

    Returns
    -------
    Arena
        The image ``(H, W, 3)`` float32 and the floor's box.
    """
    short = min(height, width)
    wall = max(2, round(0.04 * short))
    floor = FloorBox(wall, wall, width - 1 - wall, height - 1 - wall)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 1 + 0.07 * _smooth_noise(rng, (height, width), short / 3)
    light += 0.03 * _smooth_noise(rng, (height, width), short / 15)
    light *= 1 - 0.08 * (
        ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
    )
    inside = np.minimum(
        np.minimum(xx - floor.x0, floor.x1 - xx), np.minimum(yy - floor.y0, floor.y1 - yy)
    )
    light *= 1 - 0.18 * np.exp(-np.maximum(inside, 0) / (0.02 * short))  # dim along the walls
    light *= _marks(rng, floor, yy, xx)
    image = FLOOR_RGB * light[..., None]
    image += rng.normal(0, 2.5, (height, width, 1)) + rng.normal(0, 1.0, (height, width, 3))
    depth = np.clip(-inside / wall, 0, 1)  # 0 at the wall's inner edge, 1 at the frame edge
    wall_image = WALL_RGB * (1.15 - 0.35 * depth)[..., None] + rng.normal(
        0, 2.0, (height, width, 1)
    )
    image = np.where((inside < 0)[..., None], wall_image, image)
    image[inside == -1] *= 1.25  # the lit top edge of the walls
    return Arena(image=np.clip(image, 0, 255).astype(np.float32), floor=floor)


@dataclass
class _Part:
    """One smooth part of an animal: tapered capsules (or discs) of one colour.

    ``segments`` is ``(n, 2, 2)`` (segment, end, xy) in pixels, ``radii`` ``(n, 2)`` the
    radius at either end in pixels, ``colour`` ``(3,)`` RGB.
    """

    segments: np.ndarray
    radii: np.ndarray
    colour: np.ndarray


def _parts(
    joints: np.ndarray, lift: float, groom: float, length: float, look: AnimalLook
) -> list[_Part]:
    """The parts of one animal with joints ``(J, 2)``, bottom to top in drawing order.

    Radii below are in body lengths. ``lift`` (rearing, 0-1) widens the raised front body and
    head, which come closer to the camera; while rearing or grooming (``lift + groom > 0.5``)
    the forelegs are drawn above the head instead of under the body.
    """
    j = joints.astype(np.float32)
    shoulder = j[NECK] + 0.3 * (j[SPINE_MID] - j[NECK])
    haunch = j[HIP] + 0.2 * (j[SPINE_MID] - j[HIP])
    front, middle, head = 1 + 0.4 * lift, 1 + 0.15 * lift, 1 + 0.3 * lift
    tail = (
        look.tail,
        [
            (j[TAIL_BASE], j[TAIL_MID], 0.05, 0.03),
            (j[TAIL_MID], j[TAIL_TIP], 0.03, 0.012),
        ],
    )
    hind_legs = (look.body, [(haunch, j[k], 0.06, 0.035) for k in (HIND_LEFT, HIND_RIGHT)])
    hind_paws = (look.paws, [(j[k], j[k], 0.032, 0.032) for k in (HIND_LEFT, HIND_RIGHT)])
    fore_legs = (look.body, [(shoulder, j[k], 0.045, 0.03) for k in (FORE_LEFT, FORE_RIGHT)])
    fore_paws = (look.paws, [(j[k], j[k], 0.032, 0.032) for k in (FORE_LEFT, FORE_RIGHT)])
    body = (
        look.body,
        [
            (j[NECK], j[SPINE_MID], 0.12 * front, 0.17 * middle),
            (j[SPINE_MID], j[HIP], 0.17 * middle, 0.16),
            (j[HIP], j[TAIL_BASE], 0.16, 0.065),
        ],
    )
    snout = (look.body, [(j[NECK], j[SNOUT], 0.11 * head, 0.035 * head)])
    ears = (look.ears, [(j[k], j[k], 0.055, 0.055) for k in (LEFT_EAR, RIGHT_EAR)])
    if lift + groom > 0.5:
        layout = [tail, hind_legs, hind_paws, body, snout, ears, fore_legs, fore_paws]
    else:
        layout = [tail, hind_legs, hind_paws, fore_legs, fore_paws, body, snout, ears]
    return [
        _Part(
            segments=np.array([(a, b) for a, b, _, _ in segments], dtype=np.float32),
            radii=np.maximum(
                np.array([(ra, rb) for _, _, ra, rb in segments], dtype=np.float32) * length,
                _MIN_RADIUS,
            ),
            colour=np.array(colour, dtype=np.float32),
        )
        for colour, segments in layout
    ]


Box = tuple[int, int, int, int]  # (y0, y1, x0, x1) pixel rows and columns, end-exclusive


def _pixel_box(low: np.ndarray, high: np.ndarray, height: int, width: int) -> Box | None:
    """Pixels whose centres lie in ``[low, high]`` (``(x, y)``), within the frame, or None."""
    x0, y0 = max(math.ceil(low[0]), 0), max(math.ceil(low[1]), 0)
    x1, y1 = min(math.floor(high[0]) + 1, width), min(math.floor(high[1]) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, y1, x0, x1


def _segment_boxes(part: _Part, height: int, width: int) -> list[Box | None]:
    """The pixels each segment of a part can touch (its antialiased edge included)."""
    reach = part.radii.max(axis=1) + 1.5
    low = part.segments.min(axis=1) - reach[:, None]
    high = part.segments.max(axis=1) + reach[:, None]
    return [_pixel_box(lo, hi, height, width) for lo, hi in zip(low, high, strict=True)]


def _union(boxes: list[Box]) -> Box:
    """The smallest box holding all ``boxes``."""
    return (
        min(b[0] for b in boxes),
        max(b[1] for b in boxes),
        min(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _rasterise(part: _Part, boxes: list[Box | None], box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Coverage and rounded height of a part over ``box``, each segment over its own box.

    Returns
    -------
    alpha : ndarray
        ``(h, w)`` float32 coverage 0-1 (antialiased over about one pixel).
    height : ndarray
        ``(h, w)`` float32, 1 on a part's axis falling to 0 at its outline (a round profile).
    """
    y0, y1, x0, x1 = box
    sdf = np.full((y1 - y0, x1 - x0), np.inf, dtype=np.float32)
    relative = np.full_like(sdf, np.inf)
    for (a, b), (ra, rb), seg_box in zip(part.segments, part.radii, boxes, strict=True):
        if seg_box is None:
            continue
        sy0, sy1, sx0, sx1 = seg_box
        px = np.arange(sx0, sx1, dtype=np.float32)[None, :] - a[0]
        py = np.arange(sy0, sy1, dtype=np.float32)[:, None] - a[1]
        ab = b - a
        length2 = float(ab @ ab)
        if length2 < 1e-6:  # a disc
            dist, radius = np.hypot(px, py), ra
        else:
            t = (px * (ab[0] / length2) + py * (ab[1] / length2)).clip(0, 1)
            dist = np.hypot(px - t * ab[0], py - t * ab[1])
            radius = ra + t * (rb - ra)
        window = (slice(sy0 - y0, sy1 - y0), slice(sx0 - x0, sx1 - x0))
        np.minimum(sdf[window], dist - radius, out=sdf[window])
        np.minimum(relative[window], dist / radius, out=relative[window])
    alpha = (0.5 - sdf).clip(0, 1)
    height = np.sqrt((1 - relative * relative).clip(0, 1))
    return alpha, height


class _Drawn(NamedTuple):
    """A rasterised part: its pixel box, coverage, rounded height and colour."""

    box: Box
    alpha: np.ndarray
    height: np.ndarray
    colour: np.ndarray


@dataclass(frozen=True)
class ShadowSpec:
    """A cast shadow: the silhouette, shifted away from the light, darkening the floor.

    Parameters
    ----------
    gain : float
        Factor by which the shadow scales the floor's RGB (hue kept), 0-1.
    offset : tuple of float
        Shift ``(dx, dy)`` of the shadow in pixels for an animal on four paws; a rearing
        animal casts it up to twice as far.
    """

    gain: float
    offset: tuple[float, float]


class FrameRenderer:
    """Draws frames of the arena with animals, shadows, flicker and sensor noise.

    Parameters
    ----------
    arena : Arena
        The empty arena.
    length : float
        Body length of the animals in pixels.
    n_animals : int
        Number of animals.
    shadow : ShadowSpec or None
        Cast shadows, or None for none.
    noise_sigma : float
        Standard deviation of the Gaussian sensor noise, in grey levels (0-255).
    rng : numpy.random.Generator
        Source of the noise pattern.

    Attributes
    ----------
    noise_windows : int
        Number of different noise patterns: a frame's ``noise_start`` is below it.
    """

    def __init__(
        self,
        arena: Arena,
        length: float,
        n_animals: int,
        shadow: ShadowSpec | None,
        noise_sigma: float,
        rng: np.random.Generator,
    ) -> None:
        self.arena = arena
        self.length = length
        self.looks = [animal_look(i) for i in range(n_animals)]
        self.shadow = shadow
        self.height, self.width = arena.image.shape[:2]
        self._canvas = np.empty_like(arena.image)
        size = arena.image.size
        # A strip of noise twice a frame long; each frame reads a window of it (no copy).
        # The 0.5 rounds the final conversion to uint8.
        self._noise = rng.standard_normal(2 * size, dtype=np.float32) * noise_sigma + 0.5
        self.noise_windows = size

    def render(
        self,
        joints: np.ndarray,
        lift: np.ndarray,
        groom: np.ndarray,
        gain: float,
        noise_start: int,
        frame: np.ndarray,
        labels: np.ndarray | None = None,
        shadow_mask: np.ndarray | None = None,
        length: float | None = None,
    ) -> None:
        """Draw one frame into ``frame`` (and its masks into ``labels`` and ``shadow_mask``).

        Parameters
        ----------
        joints : ndarray
            ``(A, J, 2)`` joint positions in pixels.
        lift, groom : ndarray
            ``(A,)`` rearing and grooming amounts, 0-1.
        gain : float
            Global brightness factor of this frame (lighting flicker).
        noise_start : int
            Where this frame's window starts in the noise strip, below ``noise_windows``.
        frame : ndarray
            ``(H, W, 3)`` uint8 output.
        labels : ndarray, optional
            ``(H, W)`` uint8 output: 0 background, ``i + 1`` where animal ``i`` is on top.
        shadow_mask : ndarray, optional
            ``(H, W)`` bool output: cast shadow not covered by an animal.
        length : float, optional
            Body length of the animals in this frame, pixels (default: the renderer's). A
            camera that sees the animals from changing distances scales them per frame.
        """
        length = self.length if length is None else length
        canvas = self._canvas
        np.multiply(self.arena.image, gain, out=canvas)
        drawn = [
            self._rasterise_animal(i, joints[i], float(lift[i]), float(groom[i]), length)
            for i in range(len(joints))
        ]
        if labels is not None:
            labels.fill(0)
        if shadow_mask is not None:
            shadow_mask.fill(False)
        if self.shadow is not None:
            for parts, animal_lift in zip(drawn, lift, strict=True):
                if parts:
                    self._cast_shadow(self.shadow, parts, float(animal_lift), shadow_mask)
        for index, parts in enumerate(drawn):
            self._paint(parts, gain, index + 1, labels)
        if shadow_mask is not None and labels is not None:
            shadow_mask &= labels == 0
        canvas += self._noise[noise_start : noise_start + canvas.size].reshape(canvas.shape)
        np.clip(canvas, 0, 255, out=canvas)
        np.copyto(frame, canvas, casting="unsafe")

    def _rasterise_animal(
        self, index: int, joints: np.ndarray, lift: float, groom: float, length: float
    ) -> list[_Drawn]:
        """Coverage and shading of every part of animal ``index`` (``length`` px) in the frame."""
        drawn = []
        for part in _parts(joints, lift, groom, length, self.looks[index]):
            boxes = _segment_boxes(part, self.height, self.width)
            present = [b for b in boxes if b is not None]
            if present:
                box = _union(present)
                alpha, height = _rasterise(part, boxes, box)
                drawn.append(_Drawn(box, alpha, height, part.colour))
        return drawn

    def _paint(
        self, drawn: list[_Drawn], gain: float, label: int, labels: np.ndarray | None
    ) -> None:
        """Composite an animal's parts onto the canvas, with a rounded shading and sheen."""
        for (y0, y1, x0, x1), alpha, height, colour in drawn:
            crop = self._canvas[y0:y1, x0:x1]
            height2 = height * height
            sheen = (30 * gain) * (height2 * height2 * height2)
            shade = ((0.72 * gain) + (0.45 * gain) * height)[..., None] * colour
            shade += sheen[..., None]
            shade -= crop
            shade *= alpha[..., None]
            crop += shade
            if labels is not None:
                labels[y0:y1, x0:x1][alpha >= 0.5] = label

    def _cast_shadow(
        self,
        shadow: ShadowSpec,
        drawn: list[_Drawn],
        lift: float,
        shadow_mask: np.ndarray | None,
    ) -> None:
        """Darken the canvas under one animal's silhouette, shifted away from the light."""
        y0, y1, x0, x1 = _union([d.box for d in drawn])
        y0, x0 = y0 - 1, x0 - 1  # a margin for the blur of the shadow's edge
        silhouette = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.float32)
        for d in drawn:
            by0, by1, bx0, bx1 = d.box
            sub = silhouette[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0]
            np.maximum(sub, d.alpha, out=sub)
        silhouette = ndimage.uniform_filter(silhouette, 3, mode="constant")
        dx, dy = (round(v * (1 + lift)) for v in shadow.offset)
        box = _pixel_box(
            np.array([x0 + dx, y0 + dy]), np.array([x1 + dx, y1 + dy]), self.height, self.width
        )
        if box is None:
            return
        ty0, ty1, tx0, tx1 = box
        cover = silhouette[ty0 - dy - y0 : ty1 - dy - y0, tx0 - dx - x0 : tx1 - dx - x0]
        self._canvas[ty0:ty1, tx0:tx1] *= (1 - (1 - shadow.gain) * cover)[..., None]
        if shadow_mask is not None:
            shadow_mask[ty0:ty1, tx0:tx1] |= cover >= 0.5
