"""Frame pairs ``(t, t + gap)`` drawn across the training videos, seen through one window.

Every step's batch is a pure function of (seed, rank, step) (:class:`StepPairs`): a run
resumed at step ``s`` draws what an uninterrupted one drew, the ranks of a distributed
run draw different pairs, and DataLoader worker processes can prepare the next steps'
batches ahead on a GPU machine (:func:`batch_stream`) without changing them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from bkind_model.frames.pipeline import Inputs, PreparedVideo

#: DataLoader worker processes preparing batches ahead when training on CUDA (at most).
CUDA_LOADER_WORKERS = 4


@dataclass
class PairBatch:
    """A batch of training pairs.

    Attributes
    ----------
    first, second : Tensor
        ``(B, 3, H, W)`` the frames ``t`` and ``t + gap``, in [0, 1].
    animals : tuple of Tensor or None
        ``(B, 1, H, W)`` animal masks of both frames (1 on the animal); None unmasked.
    features : list of Tensor or None
        The frozen encoder's features of ``first`` then ``second`` (``(2B, C, h, w)`` per
        level) when they were computed ahead (:mod:`bkind_model.train.cached`); else None.
    """

    first: torch.Tensor
    second: torch.Tensor
    animals: tuple[torch.Tensor, torch.Tensor] | None
    features: list[torch.Tensor] | None = None

    def _map(self, move) -> PairBatch:
        animals = None if self.animals is None else (move(self.animals[0]), move(self.animals[1]))
        features = None if self.features is None else [move(f) for f in self.features]
        return PairBatch(move(self.first), move(self.second), animals, features)

    def pin_memory(self) -> PairBatch:
        """The batch in page-locked memory, for an asynchronous copy to a GPU."""
        return self._map(lambda tensor: tensor.pin_memory())

    def to(self, device: torch.device | str) -> PairBatch:
        """The batch on ``device`` (asynchronous from pinned memory)."""
        return self._map(lambda tensor: tensor.to(device, non_blocking=True))


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
    """

    def __init__(self, videos: Sequence[PreparedVideo], batch_size: int, jitter_px: int) -> None:
        self.videos = list(videos)
        self.batch_size = batch_size
        self.jitter_px = jitter_px

    def sample(self, generator: torch.Generator) -> PairBatch:
        """Draw ``batch_size`` pairs from ``generator`` (on the CPU: :meth:`PairBatch.to`)."""
        counts = torch.tensor(self._pairs_per_video(), dtype=torch.float64)
        which = torch.multinomial(counts, self.batch_size, True, generator=generator)
        firsts, seconds, animals_first, animals_second = [], [], [], []
        levels: list[list[torch.Tensor]] = []
        for index, video in enumerate(self.videos):
            n = int((which == index).sum())
            if n == 0:
                continue
            starts, jitter, features = self._draw(index, n, generator)
            first, second = self._inputs(video, starts, jitter)
            firsts.append(first.images)
            seconds.append(second.images)
            if first.animal is not None and second.animal is not None:
                animals_first.append(first.animal)
                animals_second.append(second.animal)
            if features is not None:
                levels.append(features)
        animals = None
        if animals_first:
            animals = (torch.cat(animals_first), torch.cat(animals_second))
        features = None
        if levels:  # per level: the first frames of every pair, then the second ones
            stacked = [torch.cat(level).float() for level in zip(*levels, strict=True)]
            features = [torch.cat([f[:, 0], f[:, 1]]) for f in stacked]
        return PairBatch(torch.cat(firsts), torch.cat(seconds), animals, features)

    def _pairs_per_video(self) -> list[int]:
        """How many pairs each video offers (videos are drawn in proportion)."""
        return [len(v.frames) - v.gap for v in self.videos]

    def _draw(
        self, index: int, n: int, generator: torch.Generator
    ) -> tuple[np.ndarray, np.ndarray, list[torch.Tensor] | None]:
        """``n`` pairs of video ``index``.

        Returns
        -------
        starts : ndarray
            ``(n,)`` first frame of each pair.
        jitter : ndarray
            ``(n, 2)`` window shift of each pair, pixels at model scale.
        features : list of Tensor or None
            ``(n, 2, C, h, w)`` encoder features per level when known ahead, else None.
        """
        video, jitter_px = self.videos[index], self.jitter_px
        starts = torch.randint(0, len(video.frames) - video.gap, (n,), generator=generator)
        jitter = torch.randint(-jitter_px, jitter_px + 1, (n, 2), generator=generator)
        return starts.numpy(), jitter.numpy(), None

    @staticmethod
    def _inputs(
        video: PreparedVideo, starts: np.ndarray, jitter: np.ndarray
    ) -> tuple[Inputs, Inputs]:
        """Model inputs of frames ``starts`` and ``starts + gap``, both in the first's window.

        Parameters
        ----------
        video : PreparedVideo
            The video.
        starts : ndarray
            ``(n,)`` first frame of each pair.
        jitter : ndarray
            ``(n, 2)`` window shift of each pair, pixels at model scale.
        """
        first = video.inputs(starts, jitter)
        second = video.inputs(starts + video.gap, jitter, centres=video.centres[starts])
        return first, second


def pair_seed(seed: int, rank: int, step: int) -> int:
    """The 64-bit seed of the pairs of ``rank`` at ``step`` of a run seeded with ``seed``."""
    words = np.random.SeedSequence([seed % 2**63, rank, step]).generate_state(2)
    return int(words[0]) << 32 | int(words[1])


@dataclass
class StepBatch:
    """What one training step draws.

    Attributes
    ----------
    step : int
        Steps done before this one.
    pairs : PairBatch
        The frame pairs (on the CPU).
    quarter_turns : int
        Rotation, 1-3 quarter turns, of the equivariance term.
    """

    step: int
    pairs: PairBatch
    quarter_turns: int

    def pin_memory(self) -> StepBatch:
        """The batch in page-locked memory (DataLoader's ``pin_memory`` calls this)."""
        return StepBatch(self.step, self.pairs.pin_memory(), self.quarter_turns)


class StepPairs(torch.utils.data.Dataset):
    """The batch of every step, indexed by step: ``pairs[step]`` is a :class:`StepBatch`.

    Parameters
    ----------
    sampler : PairSampler
        Draws the pairs.
    seed : int
        The run's seed.
    rank : int
        This process's rank in a distributed run (0 alone).
    """

    def __init__(self, sampler: PairSampler, seed: int, rank: int = 0) -> None:
        self.sampler = sampler
        self.seed = seed
        self.rank = rank

    def __getitem__(self, step: int) -> StepBatch:
        """The pairs and rotation of ``step``, the same every time it is asked for."""
        generator = torch.Generator().manual_seed(pair_seed(self.seed, self.rank, step))
        pairs = self.sampler.sample(generator)
        turns = int(torch.randint(1, 4, (1,), generator=generator))
        return StepBatch(step, pairs, turns)


def batch_stream(
    batches: StepPairs, start: int, workers: int = 0, pin: bool = False
) -> Iterator[StepBatch]:
    """The batches of steps ``start``, ``start + 1`` ... without end.

    Parameters
    ----------
    batches : StepPairs
        What each step draws.
    start : int
        The first step.
    workers : int
        DataLoader worker processes preparing the next batches while the model trains
        (0: in this thread, when asked).
    pin : bool
        Put the batches in page-locked memory (for a GPU).
    """
    if workers == 0 and not pin:
        return (batches[step] for step in itertools.count(start))
    loader = torch.utils.data.DataLoader(
        batches,
        batch_size=None,
        sampler=itertools.count(start),
        num_workers=workers,
        pin_memory=pin,
        prefetch_factor=4 if workers else None,
    )
    return iter(loader)


def loader_workers(device: torch.device) -> int:
    """DataLoader workers for training on ``device``: some on CUDA, none elsewhere.

    On the CPU the cores are the model's; on a GPU, batches prepared ahead keep it busy.
    """
    if device.type != "cuda":
        return 0
    per_gpu = (os.cpu_count() or 2) // max(1, torch.cuda.device_count())
    return max(1, min(CUDA_LOADER_WORKERS, per_gpu - 1))
