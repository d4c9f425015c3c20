"""Two small synthetic samples on disk, their true joints as results files and their states."""

from pathlib import Path

import pytest

from bkind_model.behaviour.synthetic import ground_truth_result
from bkind_model.synthetic import SyntheticConfig, write_sample

N_FRAMES = 1500  # 50 s at 30 fps: every behaviour several times


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> list[Path]:
    """Two 1500-frame 128x128 synthetic videos (seeds 11, 12) with their ground truth."""
    folder = tmp_path_factory.mktemp("behaviour")
    videos = []
    for seed in (11, 12):
        path = folder / f"mouse{seed}.mp4"
        config = SyntheticConfig(height=128, width=128, n_frames=N_FRAMES, seed=seed)
        write_sample(path, config, with_masks=False, keep_frames=False)
        videos.append(path)
    return videos


@pytest.fixture(scope="session")
def result_files(samples) -> list[Path]:
    """The true joints of each sample saved as a results file beside it."""
    return [ground_truth_result(v).save(v.with_suffix(".joints.h5")) for v in samples]
