"""Shared fixtures of the plugin tests: a small video, a tiny trained run, its results.

pytest-xvfb starts a virtual X server when ``Xvfb`` is installed, so napari draws with
OpenGL as on a desktop. Without any display Qt must use its offscreen platform (no
OpenGL: the widgets are then tested on napari's headless viewer model), set before the
first Qt import, or Qt aborts the whole test process.
"""

import os
from pathlib import Path

import pytest
from npe2 import PluginManager

from bkind_model.config import Config
from bkind_model.infer.extraction import extract_to_result
from bkind_model.synthetic import SyntheticConfig, write_sample
from bkind_model.train.loop import Trainer


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """After pytest-xvfb had its chance to provide a display, fall back to offscreen Qt."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def has_opengl() -> bool:
    """Whether napari can draw: a display, and not Qt's offscreen platform.

    napari 0.9 needs OpenGL even to add a layer to a window.
    """
    return bool(os.environ.get("DISPLAY")) and os.environ.get("QT_QPA_PLATFORM") != "offscreen"


#: A configuration that trains in about a second on a CPU.
TINY = dict(image_size=64, batch_size=4, n_keypoints=4, frame_gap=3, width=16, threads=2)


@pytest.fixture
def plugins():
    """Plugin discovery, as napari does at start-up (readers and writers by name)."""
    PluginManager.instance().discover()


@pytest.fixture
def viewer(request, plugins, qtbot):
    """A napari viewer: the window where OpenGL is available, else the same model headless.

    The widgets use only the model's API (layers, dims), so they are tested either way.
    """
    if has_opengl():
        return request.getfixturevalue("make_napari_viewer")()
    from napari.components import ViewerModel

    return ViewerModel()


@pytest.fixture
def tiny() -> dict:
    """The tiny training settings, for widget tests."""
    return dict(TINY)


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
