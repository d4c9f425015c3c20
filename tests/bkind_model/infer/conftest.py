"""A checkpoint trained for a few steps on the tiny video, shared by the extraction tests."""

import pytest

from bkind_model.config import Config
from bkind_model.train.loop import Trainer


@pytest.fixture(scope="session")
def checkpoint(tiny_video, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = Config(image_size=64, batch_size=4, frame_gap=4, n_keypoints=5, width=16, steps=3)
    trainer = Trainer([tiny_video], out, config)
    for _ in trainer.run():
        pass
    trainer.close()
    return trainer.checkpoint_path
