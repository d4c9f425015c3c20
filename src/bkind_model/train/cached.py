"""Features of a frozen encoder computed once per training pair, not once per step.

When every level of the pretrained encoder is frozen (``frozen_levels == 4``) its
features of a window never change, and computing them is half of a CPU step. A
:class:`CachedPairSampler` fixes a set of training pairs (frame ``t``, frame ``t + gap``,
one window shift each), runs the encoder over them once, keeps the features in float16,
and draws its batches from that set: a step then trains only the keypoint head and the
decoder. The frames themselves are still cut per step (the reconstruction target needs
them), through the same windows as :class:`~bkind_model.frames.pairs.PairSampler`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from bkind_model.frames.pairs import PairSampler
from bkind_model.frames.pipeline import PreparedVideo
from bkind_model.frames.sampling import evenly_spaced

#: Memory the cached features may take, bytes (1,700 pairs at 128 px, 190 KB each).
CACHE_BYTES = 320 * 2**20
#: Pairs per encoder call while the cache is built (32 windows: ~150 MB of activations).
_CHUNK = 16


@dataclass
class _VideoPairs:
    """The cached pairs of one video.

    Attributes
    ----------
    starts : ndarray
        ``(P,)`` first frame of each pair.
    jitter : ndarray
        ``(P, 2)`` window shift of each pair, pixels at model scale.
    features : list of Tensor
        Per encoder level, ``(P, 2, C, h, w)`` float16 features of both frames.
    """

    starts: np.ndarray
    jitter: np.ndarray
    features: list[Tensor]


class CachedPairSampler(PairSampler):
    """Draws batches from a fixed set of pairs whose encoder features are cached.

    Parameters
    ----------
    videos, batch_size, jitter_px
        As :class:`~bkind_model.frames.pairs.PairSampler`'s (each cached pair's window
        shift is drawn once).
    encoder : nn.Module
        The frozen encoder: ``(B, 3, H, W)`` in [0, 1] -> a list of level features.
    seed : int
        Seed of the pairs' window shifts.
    device : torch.device or str
        Where the encoder runs.
    progress : callable, optional
        ``f(done, total, message)`` while the features are computed.
    """

    def __init__(
        self,
        videos: Sequence[PreparedVideo],
        batch_size: int,
        jitter_px: int,
        encoder: nn.Module,
        seed: int,
        device: torch.device | str = "cpu",
        progress: Callable[[int, int, str], None] | None = None,
    ) -> None:
        super().__init__(videos, batch_size, jitter_px)
        available = np.array([len(v.frames) - v.gap for v in self.videos])
        shapes = self._level_shapes(encoder, device)
        pair_bytes = 2 * 2 * sum(int(np.prod(shape)) for shape in shapes)  # float16, 2 frames
        most = max(1, CACHE_BYTES // pair_bytes)
        share = np.maximum(1, available * most // max(1, int(available.sum())))
        counts = np.minimum(available, share)
        rng = np.random.default_rng(seed)
        total, done = int(counts.sum()), 0
        self.cached: list[_VideoPairs] = []
        for video, count in zip(self.videos, counts, strict=True):
            starts = evenly_spaced(len(video.frames) - video.gap, int(count))
            jitter = rng.integers(-jitter_px, jitter_px + 1, (len(starts), 2))
            # Filled in place: no chunk list beside the whole (it would double the peak).
            features = [
                torch.empty((len(starts), 2, *shape), dtype=torch.float16) for shape in shapes
            ]
            for lo in range(0, len(starts), _CHUNK):
                t, shift = starts[lo : lo + _CHUNK], jitter[lo : lo + _CHUNK]
                first, second = self._inputs(video, t, shift)
                with torch.no_grad():
                    out = encoder(torch.cat([first.images, second.images]).to(device))
                n = len(t)
                for level, f in zip(features, out, strict=True):
                    level[lo : lo + n, 0] = f[:n].to("cpu", torch.float16)
                    level[lo : lo + n, 1] = f[n:].to("cpu", torch.float16)
                done += n
                if progress is not None:
                    # Counted in frames (two per pair), as the frame cache's progress is.
                    progress(2 * done, 2 * total, "computing the frozen encoder's features")
            self.cached.append(_VideoPairs(starts, jitter, features))

    def _level_shapes(
        self, encoder: nn.Module, device: torch.device | str
    ) -> list[tuple[int, ...]]:
        """``(C, h, w)`` of each level's features of one window (the encoder run once)."""
        window = self.videos[0].inputs(np.zeros(1, dtype=int)).images
        with torch.no_grad():
            levels = encoder(window.to(device))
        return [tuple(level.shape[1:]) for level in levels]

    def _pairs_per_video(self) -> list[int]:
        """The cached pairs of each video."""
        return [len(cached.starts) for cached in self.cached]

    def _draw(
        self, index: int, n: int, generator: torch.Generator
    ) -> tuple[np.ndarray, np.ndarray, list[Tensor] | None]:
        """``n`` of the cached pairs of video ``index``, with their features."""
        cached = self.cached[index]
        rows = torch.randint(0, len(cached.starts), (n,), generator=generator).numpy()
        return cached.starts[rows], cached.jitter[rows], [f[rows] for f in cached.features]
