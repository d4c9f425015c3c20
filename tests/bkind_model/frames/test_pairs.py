"""Every step's pairs are a function of (seed, rank, step), in this thread or in workers."""

import torch

from bkind_model.config import Config
from bkind_model.frames.pairs import StepPairs, batch_stream
from bkind_model.train.loop import Trainer


def _same(a, b) -> bool:
    return (
        a.step == b.step
        and a.quarter_turns == b.quarter_turns
        and torch.equal(a.pairs.first, b.pairs.first)
        and torch.equal(a.pairs.second, b.pairs.second)
    )


def test_a_step_draws_the_same_pairs_again_and_dataloader_workers_change_nothing(
    tiny_video, tmp_path
):
    config = Config(image_size=64, batch_size=4, frame_gap=4, n_keypoints=3, width=16, steps=1)
    trainer = Trainer([tiny_video], tmp_path / "run", config)
    trainer.close()
    batches = trainer.batches
    assert _same(batches[5], batches[5])
    assert not torch.equal(batches[5].pairs.first, batches[6].pairs.first)
    other_rank = StepPairs(batches.sampler, batches.seed, rank=1)
    assert not torch.equal(batches[5].pairs.first, other_rank[5].pairs.first)
    assert batches[5].pairs.first.shape == (4, 3, 64, 64)

    in_thread = batch_stream(batches, 3)
    in_workers = batch_stream(batches, 3, workers=2)  # real worker processes, as on CUDA
    for step in (3, 4, 5):
        here, there = next(in_thread), next(in_workers)
        assert here.step == step and _same(here, there)
