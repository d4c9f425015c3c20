"""Frame pairs ``(t, t + gap)`` drawn across the training videos, seen through one window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from bkind_model.frames.pipeline import PreparedVideo


@dataclass
class PairBatch:
    """A batch of training pairs.

    Attributes
    ----------
    first, second : Tensor
        ``(B, 3, H, W)`` the frames ``t`` and ``t + gap``, in [0, 1].
    animals : tuple of Tensor or None
        ``(B, 1, H, W)`` animal masks of both frames (1 on the animal); None unmasked.
    """

    first: torch.Tensor
    second: torch.Tensor
    animals: tuple[torch.Tensor, torch.Tensor] | None


class PairSampler:
    """Draws frame pairs across videos, in proportion to the pairs each video holds.

    Both frames of a pair are seen through the same window: the animal's position in
    frame ``t``, shifted by up to ``jitter_px`` pixels, so the background stays still
    between them (as B-KinD needs).

    Parameters
    ----------
    videos : sequence of PreparedVideo
        The training videos.
    batch_size : int
        Pairs per batch.
    jitter_px : int
        Largest window shift, pixels at model scale.
    generator : torch.Generator
        The random stream (saved in checkpoints, so a resumed run draws the same pairs).
    """

    def __init__(
        self,
        videos: Sequence[PreparedVideo],
        batch_size: int,
        jitter_px: int,
        generator: torch.Generator,
    ) -> None:
        self.videos = list(videos)
        self.batch_size = batch_size
        self.jitter_px = jitter_px
        self.generator = generator

    def sample(self, device: torch.device | str = "cpu") -> PairBatch:
        """Draw ``batch_size`` pairs onto ``device``."""
        counts = torch.tensor([len(v.frames) - v.gap for v in self.videos], dtype=torch.float64)
        which = torch.multinomial(counts, self.batch_size, True, generator=self.generator)
        firsts, seconds, animals_first, animals_second = [], [], [], []
        jitter_px = self.jitter_px
        for index, video in enumerate(self.videos):
            n = int((which == index).sum())
            if n == 0:
                continue
            starts = torch.randint(
                0, len(video.frames) - video.gap, (n,), generator=self.generator
            )
            jitter = torch.randint(-jitter_px, jitter_px + 1, (n, 2), generator=self.generator)
            t, shift = starts.numpy(), jitter.numpy()
            first = video.inputs(t, shift, device)
            second = video.inputs(t + video.gap, shift, device, centres=video.centres[t])
            firsts.append(first.images)
            seconds.append(second.images)
            if first.animal is not None and second.animal is not None:
                animals_first.append(first.animal)
                animals_second.append(second.animal)
        animals = None
        if animals_first:
            animals = (torch.cat(animals_first), torch.cat(animals_second))
        return PairBatch(torch.cat(firsts), torch.cat(seconds), animals)
