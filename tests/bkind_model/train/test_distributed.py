"""DDP training under torchrun: two gloo processes on the CPU train like one process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from bkind_model.cli.main import main
from bkind_model.config import Config
from bkind_model.errors import ConfigError
from bkind_model.io.checkpoint import load_checkpoint
from bkind_model.train.distributed import RENDEZVOUS_VARIABLE, Ranks, rendezvous_timeout
from bkind_model.train.loop import Trainer

TINY = dict(image_size=64, batch_size=8, frame_gap=4, n_keypoints=4)
ARGS = ["--image-size", "64", "--batch", "8", "--gap", "4", "--keypoints", "4"]
ARGS += ["--checkpoint-every", "1000"]
#: The loss curve of two ranks must match one process with the same global batch within
#: this fraction (mean total loss over steps 21-60: the pairs differ, and so do BatchNorm's
#: per-rank statistics, so the curves agree in level, not value by value).
LOSS_TOLERANCE = 0.2


def _torchrun(video, run, *args: str, ranks: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={ranks}",
        "-m",
        "bkind_model",
        "train",
        str(video),
        "--out",
        str(run),
        "--distributed",
        *ARGS,
        *args,
    ]


def _train_ranks(video, run, *args: str, ranks: int = 2) -> subprocess.CompletedProcess:
    done = subprocess.run(
        _torchrun(video, run, *args, ranks=ranks), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _losses(run) -> np.ndarray:
    return np.array([step["total"] for step in load_checkpoint(run)["history"]["losses"]])


@pytest.fixture(scope="module")
def two_ranks(tiny_video, tmp_path_factory):
    """60 steps on two gloo ranks (global batch 8, 4 pairs each), and what they printed."""
    run = tmp_path_factory.mktemp("ddp") / "run"
    done = _train_ranks(tiny_video, run, "--steps", "60")
    return run, done.stderr


@pytest.mark.slow
def test_two_ranks_train_like_one_process_with_the_same_global_batch(
    tiny_video, tmp_path, two_ranks
):
    run, printed = two_ranks
    trainer = Trainer([tiny_video], tmp_path / "one", Config(steps=60, threads=2, **TINY))
    for _ in trainer.run():
        pass
    trainer.close()
    alone, together = _losses(tmp_path / "one"), _losses(run)
    assert len(together) == 60
    gap = abs(together[20:].mean() / alone[20:].mean() - 1)
    assert gap < LOSS_TOLERANCE, (alone[20:].mean(), together[20:].mean())
    assert together[20:].mean() < together[:5].mean() / 2  # and it learns
    saved = load_checkpoint(run)
    assert saved["world_size"] == 2 and saved["config"]["batch_size"] == 8
    # rank 0 alone writes the checkpoint and speaks
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]  # no lock left
    assert printed.count("Training 4 keypoints") == 1
    assert "on 2 processes (cpu, 4 pairs each)" in printed


@pytest.mark.slow
def test_a_signal_stops_every_rank_at_one_step_and_the_run_resumes_exactly(
    tiny_video, tmp_path, two_ranks
):
    straight, _ = two_ranks
    run = tmp_path / "run"
    process = subprocess.Popen(
        _torchrun(tiny_video, run, "--steps", "60"),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # printed after the first 21 steps
            if "steps/s" in line:
                break
        process.send_signal(signal.SIGTERM)  # torchrun hands it to both ranks
        _, rest = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode != 0, rest
    saved = load_checkpoint(run)
    assert 21 <= saved["step"] < 60, rest
    assert len(saved["history"]["losses"]) == saved["step"]  # saved at a step boundary
    _train_ranks(tiny_video, run, "--steps", "60")
    first, second = load_checkpoint(straight)["model"], load_checkpoint(run)["model"]
    assert all(torch.equal(first[key], second[key]) for key in first)  # every pair again


@pytest.mark.slow
def test_a_run_resumes_on_another_number_of_processes(tiny_video, tmp_path, two_ranks):
    run = tmp_path / "run"
    shutil.copytree(two_ranks[0], run)
    with pytest.warns(UserWarning, match="trained on 2 process"):
        alone = Trainer([tiny_video], run, Config(steps=70, threads=1, **TINY))
    assert alone.step == 60
    for _ in alone.run():
        pass
    alone.close()
    assert load_checkpoint(run)["world_size"] == 1
    again = _train_ranks(tiny_video, run, "--steps", "80")
    assert "resuming a run trained on 1 process(es) on 2" in again.stderr
    saved = load_checkpoint(run)
    assert saved["step"] == 80 and saved["world_size"] == 2
    assert len(saved["history"]["losses"]) == 80


@pytest.mark.slow
def test_ranks_agree_on_the_steps_a_time_budget_fits(tiny_video, tmp_path):
    budget = tmp_path / "budget"
    _train_ranks(tiny_video, budget, "--minutes", "0.1")  # a disagreement would hang a rank
    planned = load_checkpoint(budget)
    assert planned["step"] == planned["config"]["steps"] > 20


def test_the_global_batch_must_split_evenly_over_the_ranks():
    ranks = Ranks(rank=0, world_size=3, local_rank=0, device=torch.device("cpu"))
    assert Ranks(0, 2, 0, torch.device("cpu")).local_batch(16) == 8
    with pytest.raises(ConfigError, match="batch 16 does not split evenly over 3 processes"):
        ranks.local_batch(16)


def test_distributed_outside_torchrun_says_how_to_start_it(tiny_video, tmp_path, capsys):
    code = main(["train", str(tiny_video), "--out", str(tmp_path / "run"), "--distributed"])
    assert code == 2
    err = capsys.readouterr().err
    assert "torchrun --nproc_per_node N -m bkind_model train" in err
    assert not (tmp_path / "run").exists()  # refused before touching anything


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _fake_rank(monkeypatch, rank: int, port: int, timeout_s: float) -> None:
    environment = dict(RANK=rank, WORLD_SIZE=2, LOCAL_RANK=rank, MASTER_ADDR="127.0.0.1")
    for name, value in (environment | dict(MASTER_PORT=port)).items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv(RENDEZVOUS_VARIABLE, str(timeout_s))


@pytest.mark.parametrize(
    ("rank", "missing"), [(1, "nothing answered within 1 s; start rank 0"), (0, "the other ranks")]
)
def test_a_rendezvous_nobody_comes_to_fails_in_one_line_after_its_timeout(
    tiny_video, tmp_path, monkeypatch, capsys, rank, missing
):
    port = _closed_port()
    _fake_rank(monkeypatch, rank, port, timeout_s=1)
    started = time.monotonic()
    assert main(["train", str(tiny_video), "--out", str(tmp_path / "run"), "--distributed"]) == 2
    assert time.monotonic() - started < 10
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"MASTER_ADDR:MASTER_PORT 127.0.0.1:{port}: " in line and missing in line
    assert f"{RENDEZVOUS_VARIABLE}=SECONDS" in line
    assert not torch.distributed.is_initialized()


@pytest.mark.parametrize("value", ["0", "-3", "nan", "soon"])
def test_the_rendezvous_timeout_must_be_a_positive_number(monkeypatch, value):
    monkeypatch.setenv(RENDEZVOUS_VARIABLE, value)
    with pytest.raises(ConfigError, match=f"{RENDEZVOUS_VARIABLE}='{value}' is not a number"):
        rendezvous_timeout()


@pytest.mark.slow
def test_sigterm_during_the_rendezvous_stops_at_once(tiny_video, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        silent.settimeout(120)
        environment = dict(RANK="1", WORLD_SIZE="2", LOCAL_RANK="1", MASTER_ADDR="127.0.0.1")
        environment |= {"MASTER_PORT": str(silent.getsockname()[1]), RENDEZVOUS_VARIABLE: "600"}
        command = [sys.executable, "-m", "bkind_model", "train", str(tiny_video), "--distributed"]
        process = subprocess.Popen(
            [*command, "--out", str(tmp_path / "run")],
            env=os.environ | environment,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            silent.accept()[0].close()  # the rank checks that something listens
            held = silent.accept()[0]  # torch's client, now waiting for an answer
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=15)
            held.close()
        finally:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "bkind: stopped by SIGTERM" in err
