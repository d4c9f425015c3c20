"""The Train widget's step hook: keypoints on the viewed frame, from the training thread."""

import numpy as np
import pytest

from bkind_model.config import Config
from bkind_model.synthetic import SyntheticConfig, write_sample
from bkind_model.train.loop import Trainer
from napari_bkind._focus import FocusHook

TINY = dict(image_size=64, batch_size=4, frame_gap=4, n_keypoints=4, width=16, threads=2)


@pytest.mark.slow
def test_the_focus_frame_is_previewed_when_it_changes(tmp_path):
    video = tmp_path / "tiny.mp4"
    write_sample(video, SyntheticConfig(height=96, width=96, n_frames=60, seed=2))
    trainer = Trainer([video], tmp_path / "run", Config(steps=4, **TINY))
    hook = FocusHook(every_s=1e9)  # no refresh by time in this test
    run = trainer.run(hooks=[hook])
    assert "focus" not in next(run).extras  # nothing asked for
    hook.focus = (0, int(trainer.preview_index[3]))
    focused = next(run).extras["focus"]
    assert (focused.video, focused.frame) == hook.focus
    assert "focus" not in next(run).extras  # same frame, within every_s
    hook.focus = (0, 5)
    assert next(run).extras["focus"].frame == 5  # a new frame is previewed at once
    # the preview of a preview frame is the model's keypoints on it, in source pixels
    _, on_preview_frames = trainer.check_convergence()
    # The same frame in a batch of 1 or of 16: float rounding differs (1e-5 px), nothing else.
    np.testing.assert_allclose(
        trainer.keypoints_on(0, [focused.frame])[0], on_preview_frames[3], atol=1e-3
    )
    assert np.isfinite(focused.keypoints).all() and focused.keypoints.shape == (4, 2)


@pytest.mark.slow
def test_an_unchanged_frame_is_refreshed_after_every_s(tmp_path):
    video = tmp_path / "tiny.mp4"
    write_sample(video, SyntheticConfig(height=96, width=96, n_frames=60, seed=2))
    trainer = Trainer([video], tmp_path / "run", Config(steps=3, **TINY))
    hook = FocusHook(every_s=0.0)
    hook.focus = (0, 7)
    frames = [event.extras["focus"].frame for event in trainer.run(hooks=[hook])]
    assert frames == [7, 7, 7]
