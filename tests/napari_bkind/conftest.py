"""Shared fixtures of the plugin tests: a small video, a tiny trained run, its results.

Without a display Qt must use the offscreen platform, set before any Qt import, or it
aborts the whole test process.
"""

import os

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest

from bkind_model.config import Config
from bkind_model.extraction import extract_to_result
from bkind_model.synthetic import SyntheticConfig, write_sample
from bkind_model.training import Trainer

#: A configuration that trains in about a second on a CPU.
TINY = dict(image_size=64, batch_size=4, n_keypoints=4, frame_gap=3, width=16, threads=2)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Frame indexes and caches go to this session's temporary folder, not the home folder.

    Session-wide (set before the session fixtures below decode or train anything).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BKIND_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "bkind-cache"))
        yield


@pytest.fixture(scope="session")
def video(tmp_path_factory) -> Path:
    """A 60-frame 128x128 synthetic mp4."""
    path = tmp_path_factory.mktemp("video") / "mouse.mp4"
    write_sample(path, SyntheticConfig(height=128, width=128, n_frames=60, seed=1))
    return path


@pytest.fixture(scope="session")
def checkpoint(video, tmp_path_factory) -> Path:
    """A checkpoint trained for two steps (headless), for the extraction and reader tests."""
    trainer = Trainer([video], tmp_path_factory.mktemp("run"), Config(steps=2, **TINY))
    for _ in trainer.run():
        pass
    return trainer.checkpoint_path


@pytest.fixture(scope="session")
def results(video, checkpoint) -> Path:
    """A results file of the video, with heatmaps, beside the video."""
    path = video.with_name("mouse.bkind.h5")
    extract_to_result(checkpoint, video, path, heatmaps=True)
    return path
