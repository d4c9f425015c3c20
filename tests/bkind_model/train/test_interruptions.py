"""Kills, signals, concurrent runs and changed settings never lose or corrupt a run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from bkind_model.config import Config
from bkind_model.errors import CheckpointError, RunLockedError
from bkind_model.io.checkpoint import load_checkpoint
from bkind_model.synthetic import SyntheticConfig, write_sample
from bkind_model.train.loop import Trainer

#: A signal must land mid-run: the small encoder's steps are slow enough for that.
TINY = dict(
    encoder="small", image_size=64, batch_size=4, frame_gap=4, n_keypoints=3, width=16, threads=1
)
ARGS = [
    "--encoder",
    "small",
    "--image-size",
    "64",
    "--batch",
    "4",
    "--gap",
    "4",
    "--keypoints",
    "3",
]
ARGS += ["--threads", "1", "--checkpoint-every", "1000"]


def _bkind(*args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from bkind_model.cli import main; sys.exit(main())",
        *args,
    ]


def _same_weights(a, b) -> bool:
    first, second = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    return all(torch.equal(first[key], second[key]) for key in first)


@pytest.fixture(scope="module")
def straight(tiny_video, tmp_path_factory):
    """An uninterrupted 30-step run: what every interrupted one must end equal to."""
    out = tmp_path_factory.mktemp("straight")
    done = subprocess.run(
        _bkind("train", str(tiny_video), "--out", str(out), "--steps", "30", *ARGS),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_training_saves_at_a_step_boundary_and_resumes_bit_exactly(
    tiny_video, tmp_path, straight, sig
):
    steps = ["--steps", "30"]
    run = tmp_path / "stopped"
    process = subprocess.Popen(
        _bkind("train", str(tiny_video), "--out", str(run), *steps, *ARGS),
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = ""
    while "step/s" not in seen and process.poll() is None:  # training has started
        seen += process.stderr.read(64)
    time.sleep(0.3)
    process.send_signal(sig)
    _, rest = process.communicate(timeout=120)
    assert process.returncode == 128 + sig, seen + rest
    assert f"stopped by {signal.Signals(sig).name} at step" in rest and "resume" in rest
    assert "Traceback" not in rest
    stopped_at = load_checkpoint(run)["step"]
    assert 0 < stopped_at < 30
    again = subprocess.run(
        _bkind("train", str(tiny_video), "--out", str(run), *steps, *ARGS),
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(run)["step"] == 30
    assert _same_weights(run, straight)


@pytest.mark.slow
def test_a_second_run_on_the_same_folder_is_refused_naming_the_first(tiny_video, tmp_path):
    trainer = Trainer([tiny_video], tmp_path / "run", Config(steps=2, **TINY))
    other = subprocess.run(
        _bkind("train", str(tiny_video), "--out", str(tmp_path / "run"), "--steps", "2", *ARGS),
        capture_output=True,
        text=True,
    )
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert f"in use by bkind train (pid {os.getpid()}" in other.stderr
    trainer.close()  # released: the other process may now train there
    after = subprocess.run(
        _bkind("train", str(tiny_video), "--out", str(tmp_path / "run"), "--steps", "2", *ARGS),
        capture_output=True,
        text=True,
    )
    assert after.returncode == 0, after.stderr


def test_the_lock_names_its_holder_and_is_shared_within_a_process(tmp_path):
    from bkind_model.io.lock import RunLock

    code = (
        "import sys, time; from bkind_model.io.lock import RunLock; "
        "lock = RunLock(sys.argv[1]); print('held', flush=True); time.sleep(30)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"in use by bkind train \\(pid {holder.pid} "):
            RunLock(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    first = RunLock(tmp_path)  # the holder died: its lock went with it
    second = RunLock(tmp_path)  # this process may reopen its own run
    first.release()
    second.release()


@pytest.mark.slow
def test_resuming_with_other_settings_or_videos_is_refused(tiny_video, tmp_path):
    trainer = Trainer([tiny_video], tmp_path / "run", Config(steps=2, **TINY))
    for _ in trainer.run():
        pass
    trainer.close()
    with pytest.raises(CheckpointError, match=r"lr: checkpoint 0\.002 vs requested 0\.01"):
        Trainer([tiny_video], tmp_path / "run", Config(steps=4, **TINY, lr=0.01))
    other = tmp_path / "other.mp4"
    write_sample(other, SyntheticConfig(height=128, width=128, n_frames=60, seed=8))
    with pytest.raises(CheckpointError, match="other videos") as refused:
        Trainer([other], tmp_path / "run", Config(steps=4, **TINY))
    # The refused trainer (alive while its traceback is kept, as a GUI keeps the error it
    # shows) has let go of the folder: another process can train there at once.
    take = f"from bkind_model.io.lock import RunLock; RunLock({str(tmp_path / 'run')!r})"
    assert subprocess.run([sys.executable, "-c", take], capture_output=True).returncode == 0
    assert refused.traceback is not None
    resumed = Trainer([tiny_video], tmp_path / "run", Config(**(TINY | {"threads": 2}), steps=4))
    assert resumed.step == 2 and resumed.config.threads == 2  # allowed, and recorded
    resumed.close()


@pytest.mark.slow
def test_orphans_of_a_killed_run_are_removed_and_the_folder_checked_first(tiny_video, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = run / ".checkpoint.pt.999999999.1.tmp"
    dead.write_bytes(b"x" * 1000)
    Trainer([tiny_video], run, Config(steps=2, **TINY)).close()
    assert not dead.exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(Exception, match="cannot use this run folder"):
        Trainer([tiny_video], blocker / "run", Config(steps=2, **TINY))


@pytest.mark.slow
def test_sigterm_while_frames_are_cached_stops_cleanly(tmp_path):
    video = tmp_path / "long.mp4"
    write_sample(video, SyntheticConfig(height=256, width=256, n_frames=900, seed=4))
    env = {**os.environ, "BKIND_CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen(
        _bkind("train", str(video), "--out", str(tmp_path / "run"), "--steps", "2", *ARGS),
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    seen = ""
    while "Caching frames" not in seen and process.poll() is None:
        seen += process.stderr.read(16)
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, seen + rest
    assert "stopped by SIGTERM" in rest and "Traceback" not in rest
    assert not list((tmp_path / "cache").rglob("*.tmp*"))  # no half-written cache left
