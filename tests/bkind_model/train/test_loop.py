"""Real (short) training runs: loss falls, keypoints find the animal, exact resume."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from bkind_model.config import Config
from bkind_model.errors import CheckpointError, ConfigError
from bkind_model.io.checkpoint import load_checkpoint
from bkind_model.synthetic import load_ground_truth
from bkind_model.train import loop
from bkind_model.train.loop import PLAN_STEPS, Trainer, TrainingDiverged, train

#: The loop's mechanics on the small encoder learnt from scratch; the pretrained default
#: is trained in test_cached.py and end to end in the CLI tests.
TINY = dict(
    encoder="small", image_size=64, batch_size=8, frame_gap=4, n_keypoints=4, width=16, threads=2
)


@pytest.mark.slow
def test_short_training_lowers_the_loss_and_puts_sharp_keypoints_on_the_animal(
    tiny_video, tmp_path
):
    config = Config(steps=100, checkpoint_every=100, curriculum_steps=1000, **TINY)
    trainer = Trainer([tiny_video], tmp_path / "run", config)
    before, _ = trainer.check_convergence()
    losses = [event.losses["reconstruction"] for event in trainer.run()]
    after, keypoints = trainer.check_convergence()
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert after.spread_px < 0.5 * before.spread_px  # heatmaps sharpened
    truth = load_ground_truth(tiny_video)
    mask = truth.animal_labels[trainer.preview_index] > 0
    near = ndimage.binary_dilation(mask, np.ones((1, 7, 7), bool))  # 3 px
    rows = np.clip(np.round(keypoints[..., 1]).astype(int), 0, 127)
    cols = np.clip(np.round(keypoints[..., 0]).astype(int), 0, 127)
    assert near[np.arange(len(mask))[:, None], rows, cols].mean() >= 0.5


def _run(video, out, steps, stop_after=None):
    config = Config(
        steps=steps, checkpoint_every=3, curriculum_steps=2, equivariance_weight=0.1, **TINY
    )
    trainer = Trainer([video], out, config)
    for event in trainer.run():
        if stop_after is not None and event.step == stop_after:
            trainer.cancel()
    return trainer


def test_resume_gives_the_same_state_as_uninterrupted_training(tiny_video, tmp_path):
    straight = _run(tiny_video, tmp_path / "a", steps=8)
    interrupted = _run(tiny_video, tmp_path / "b", steps=8, stop_after=5)
    assert load_checkpoint(tmp_path / "b")["step"] == 5  # cancel kept the work
    resumed = _run(tiny_video, tmp_path / "b", steps=8)
    assert resumed.step == straight.step == 8
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert interrupted.step == 5


@pytest.mark.slow
def test_resume_refuses_an_incompatible_checkpoint(tiny_video, tmp_path):
    _run(tiny_video, tmp_path / "run", steps=3)
    other = Config(steps=6, **(TINY | {"n_keypoints": 6}))
    with pytest.raises(CheckpointError, match="n_keypoints"):
        Trainer([tiny_video], tmp_path / "run", other)


@pytest.mark.slow
def test_corrupt_checkpoint_gives_a_clear_error(tiny_video, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        Trainer([tiny_video], run, Config(steps=3, **TINY))


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "bkind-checkpoint-1", "payload": Evil()}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_video, tmp_path, monkeypatch):
    config = Config(steps=10, checkpoint_every=2, **TINY)
    trainer = Trainer([tiny_video], tmp_path / "run", config)
    events = trainer.run()
    for _ in range(4):
        next(events)
    good = load_checkpoint(tmp_path / "run")
    assert good["step"] == 4
    monkeypatch.setattr(
        "bkind_model.train.objective.reconstruction_loss", lambda *a: torch.tensor(float("nan"))
    )
    with pytest.raises(TrainingDiverged, match="lr"):
        next(events)
    after = load_checkpoint(tmp_path / "run")
    assert after["step"] == 4
    for key, value in good["model"].items():
        assert torch.equal(value, after["model"][key])


@pytest.mark.slow
def test_gap_longer_than_the_video_is_refused(tiny_video, tmp_path):
    with pytest.raises(ConfigError, match="gap"):
        Trainer([tiny_video], tmp_path / "run", Config(**(TINY | {"frame_gap": 500})))


@pytest.mark.slow
def test_train_generator_and_progress_events(tiny_video, tmp_path):
    config = Config(steps=4, checkpoint_every=2, **TINY)
    events = list(train([tiny_video], tmp_path / "run", config))
    assert [e.step for e in events] == [1, 2, 3, 4]
    assert events[1].checkpoint is not None and events[-1].checkpoint is not None
    assert events[-1].convergence is not None
    assert events[-1].preview_keypoints.shape == (16, 4, 2)
    assert all(e.eta_s >= 0 for e in events)


@pytest.mark.slow
def test_step_hooks_ride_on_events_and_status_is_a_snapshot(tiny_video, tmp_path):
    trainer = Trainer([tiny_video], tmp_path / "run", Config(steps=3, **TINY))
    seen = []

    class EveryOther:
        name = "other"

        def __call__(self, trainer, event):
            seen.append(event.step)
            return {"step": event.step} if event.step % 2 else None

    events = list(trainer.run(hooks=[EveryOther()]))
    assert seen == [1, 2, 3]
    assert [e.extras.get("other") for e in events] == [{"step": 1}, None, {"step": 3}]
    status = trainer.status()
    assert (status.step, status.total_steps, status.verdict) == (
        3,
        3,
        events[-1].convergence.verdict,
    )
    assert status.checkpoint == trainer.checkpoint_path and status.keypoint_names[0] == "kp0"
    assert status.videos[0].n_frames == 240 and status.videos[0].gap == 4
    status.preview_frames[0] = -1  # a copy: the trainer's preview frames are untouched
    assert trainer.preview_index[0] == 0


FAST = dict(image_size=64, batch_size=2, n_keypoints=4, frame_gap=3, checkpoint_every=1000)


class _Clock:
    """A fake ``time`` module whose clock advances one second per training step."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


def _one_second_steps(monkeypatch, trainer):
    clock = _Clock()
    monkeypatch.setattr(loop, "time", clock)
    step = trainer.train_step

    def timed():
        clock.now += 1.0
        return step()

    monkeypatch.setattr(trainer, "train_step", timed)


def test_time_budget_sets_the_steps_from_the_measured_speed(tiny_video, tmp_path, monkeypatch):
    run = tmp_path / "run"
    trainer = Trainer([tiny_video], run, Config(minutes=0.5, **FAST))
    assert trainer.planning
    _one_second_steps(monkeypatch, trainer)
    events = list(trainer.run())
    planned = [e for e in events if e.planned]
    assert len(planned) == 1 and planned[0].step == 1 + PLAN_STEPS
    # 1 step/s, 21 s trained when planning, 30 s budget: 9 more steps
    assert trainer.config.steps == planned[0].total_steps == 30 == events[-1].step
    assert trainer.history.seconds == 30.0
    saved = load_checkpoint(run / "checkpoint.pt")
    assert saved["config"]["steps"] == 30 and saved["history"]["planned_for"] == 0.5
    trainer.close()
    # resuming with the same budget keeps the plan: nothing left to do
    again = Trainer([tiny_video], run, Config(minutes=0.5, **FAST))
    assert not again.planning and again.config.steps == 30
    assert list(again.run()) == []
    again.close()
    # a larger budget on resume plans again, for the time that is left
    more = Trainer([tiny_video], run, Config(minutes=1.0, **FAST))
    assert more.planning
    _one_second_steps(monkeypatch, more)
    more_events = list(more.run())
    # planned at step 51 (30 s + 21 s), 9 s left of 60
    assert more.config.steps == 60 == more_events[-1].step
    more.close()
