"""*Discover* on every open video at once: a real dask LocalCluster from the widget."""

import shutil

import numpy as np
import pytest

from bkind_model.infer.extraction import extract
from bkind_model.io.results import KeypointResult
from bkind_model.synthetic import SyntheticConfig, write_sample
from napari_bkind._discover_widget import DiscoverWidget

pytest.importorskip("distributed")

WAIT_MS = 60_000


@pytest.fixture
def two_videos(video, tmp_path):
    """Two different videos of the checkpoint's frame size (60 and 90 frames)."""
    first = tmp_path / "a.mp4"
    shutil.copy(video, first)
    second = tmp_path / "b.mp4"
    write_sample(second, SyntheticConfig(height=128, width=128, n_frames=90, seed=2))
    return [first, second]


def _all_videos_widget(viewer, videos, checkpoint, chunk_frames):
    for path in videos:
        viewer.open(str(path), plugin="napari-bkind")
    widget = DiscoverWidget(viewer)
    widget.checkpoint.value = checkpoint
    widget.all_videos.value = True
    widget.chunk_frames = chunk_frames
    return widget


def _reference(checkpoint, video, folder) -> KeypointResult:
    """Keypoints of one plain sequential pass of ``extract``."""
    for step in extract(checkpoint, video, folder / f"{video.stem}.bkind.h5"):
        if step.path is not None:
            return KeypointResult.load(step.path)
    raise AssertionError("extract gave no results file")


@pytest.mark.slow
def test_all_open_videos_are_extracted_on_a_cluster(
    viewer, two_videos, checkpoint, qtbot, tmp_path
):
    widget = _all_videos_widget(viewer, two_videos, checkpoint, chunk_frames=40)
    assert not widget.output.enabled and not widget.heatmaps.enabled
    assert "Not used" in widget.output.tooltip and "Not stored" in widget.heatmaps.tooltip
    widget.run()
    assert widget.task.running and not widget.run_button.enabled
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    reference_folder = tmp_path / "reference"
    for video in two_videos:
        out = video.with_name(f"{video.stem}.bkind.h5")
        result = KeypointResult.load(out)
        reference = _reference(checkpoint, video, reference_folder)
        assert result.n_frames == reference.n_frames == len(result.keypoints)
        assert np.isfinite(result.keypoints).all()
        assert np.allclose(result.keypoints, reference.keypoints, atol=1e-4)
        assert np.array_equal(result.on_animal, reference.on_animal)
    names = [layer.name for layer in viewer.layers]
    for stem in ("a", "b"):
        assert f"{stem}.bkind keypoints" in names and f"{stem}.bkind trajectories" in names
    assert not any(name.endswith("heatmaps") for name in names)
    assert not list(tmp_path.glob(".*.chunks"))  # merged and removed
    written = [
        video.with_name(f"{video.stem}.bkind.h5").stat().st_mtime_ns for video in two_videos
    ]
    widget.run()  # finished by this checkpoint: shown again, not extracted again
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert [v.with_name(f"{v.stem}.bkind.h5").stat().st_mtime_ns for v in two_videos] == written

    widget.all_videos.value = False  # back to one video: its fields apply again
    assert widget.output.enabled and widget.heatmaps.enabled and widget.video.enabled


@pytest.mark.slow
def test_cancel_stops_the_cluster_run_without_a_half_written_results_file(
    viewer, two_videos, checkpoint, qtbot, tmp_path
):
    widget = _all_videos_widget(viewer, two_videos, checkpoint, chunk_frames=10)
    outs = [video.with_name(f"{video.stem}.bkind.h5") for video in two_videos]
    widget.run()
    qtbot.waitUntil(lambda: any(tmp_path.glob(".*.chunks/*.npz")), timeout=WAIT_MS)
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert not all(out.exists() for out in outs)  # stopped before the end (15 chunks)
    for out, video in zip(outs, two_videos, strict=True):
        if out.exists():  # a video merged before the cancel is complete
            assert KeypointResult.load(out).n_frames == (60 if video.stem == "a" else 90)
    assert not [p for p in tmp_path.glob("*.h5") if p not in outs]
    kept = {p.name for p in tmp_path.glob(".*.chunks/*.npz")}
    assert kept  # finished chunks stay for a resumed run
    widget.run()  # runnable again: the run continues and finishes
    qtbot.waitUntil(lambda: not widget.task.running, timeout=WAIT_MS)
    assert [KeypointResult.load(out).n_frames for out in outs] == [60, 90]
    assert not list(tmp_path.glob(".*.chunks"))
