"""A frozen encoder's features computed once per pair: the same as computed per step."""

import torch

from bkind_model.config import Config
from bkind_model.io.checkpoint import load_checkpoint
from bkind_model.train.cached import CachedPairSampler
from bkind_model.train.loop import Trainer

FROZEN = dict(
    encoder="efficientnet-lite0",
    pretrained="imagenet",
    frozen_levels=4,
    image_size=64,
    batch_size=4,
    frame_gap=4,
    n_keypoints=4,
    threads=2,
)


def test_cached_features_are_the_encoders_features_of_the_batch_frames(tiny_video, tmp_path):
    trainer = Trainer([tiny_video], tmp_path / "run", Config(steps=2, **FROZEN))
    assert isinstance(trainer.pairs, CachedPairSampler)
    batch = trainer.pairs.sample(torch.Generator().manual_seed(3))
    encoder = trainer.model.encoder.eval()
    with torch.no_grad():
        live = encoder(torch.cat([batch.first, batch.second]))
        assert batch.features is not None
        for cached, fresh in zip(batch.features, live, strict=True):
            assert cached.shape == fresh.shape
            torch.testing.assert_close(cached, fresh, atol=0.02, rtol=0.01)  # float16
        trainer.model.eval()
        a = trainer.model(batch.first, batch.second, batch.features).reconstruction
        b = trainer.model(batch.first, batch.second).reconstruction
    torch.testing.assert_close(a, b, atol=0.02, rtol=0.02)


def test_a_cached_run_trains_the_head_and_resumes_exactly(tiny_video, tmp_path):
    config = Config(steps=4, checkpoint_every=2, **FROZEN)

    def run(out, stop_after=None):
        trainer = Trainer([tiny_video], out, config)
        for event in trainer.run():
            if event.step == stop_after:
                trainer.cancel()
        return trainer

    untrained = Trainer([tiny_video], tmp_path / "none", config).model.state_dict()
    straight = run(tmp_path / "a")
    run(tmp_path / "b", stop_after=2)
    assert load_checkpoint(tmp_path / "b")["step"] == 2
    resumed = run(tmp_path / "b")
    state = straight.model.state_dict()
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(state[name], value), name
    assert not torch.equal(untrained["head.out.weight"], state["head.out.weight"])
    for name in ("encoder.net._conv_stem.weight", "encoder.net._blocks.15._bn2.running_var"):
        assert torch.equal(untrained[name], state[name]), name  # frozen
