"""Shared fixtures: small real synthetic videos on disk, isolated caches."""

from pathlib import Path

import pytest

from bkind_model.synthetic import SyntheticConfig, write_sample

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "dlc_openfield"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Frame indexes and frame caches go to a per-session temporary folder."""
    monkeypatch.setenv("BKIND_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "bkind-cache"))


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory) -> Path:
    """A 240-frame 128x128 synthetic mp4 with its ground truth beside it."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.mp4"
    write_sample(path, SyntheticConfig(height=128, width=128, n_frames=240, seed=3))
    return path
