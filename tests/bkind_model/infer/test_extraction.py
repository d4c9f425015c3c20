"""Extraction over a real video: shapes, metadata, resume, pixel coordinates."""

import h5py
import numpy as np
import pytest

from bkind_model.infer.extraction import extract, extract_to_result
from bkind_model.io.results import KeypointResult, ResultsError, video_fingerprint
from bkind_model.io.video import open_video


@pytest.mark.slow
def test_extraction_shapes_and_metadata(checkpoint, tiny_video, tmp_path):
    result = extract_to_result(
        checkpoint, tiny_video, tmp_path / "r.h5", batch_size=50, heatmaps=True
    )
    n = open_video(tiny_video).n_frames
    assert result.keypoints.shape == (n, 5, 2)
    assert result.confidence.shape == (n, 5)
    assert result.covariance.shape == (n, 5, 2, 2)
    assert np.isfinite(result.keypoints).all()
    # A window that hangs over the frame's edge is padded, and soft-argmax may put a
    # keypoint a little into the padding: at most about one heatmap cell beyond the frame.
    assert (result.keypoints >= -8).all() and (result.keypoints <= 128 + 8).all()
    assert np.allclose(result.covariance, np.swapaxes(result.covariance, -1, -2))
    assert result.on_animal.shape == (n, 5) and result.on_animal.dtype == bool
    assert result.likelihood.shape == (n, 5)
    assert np.isfinite(result.likelihood).all()
    assert "foreground" in result.metadata["likelihood_meaning"]
    meta = result.metadata
    assert meta["video_path"] == str(tiny_video)
    assert meta["frame_size"] == [128, 128]
    assert meta["config"]["n_keypoints"] == 5
    assert len(meta["checkpoint_sha256"]) == 64
    assert meta["fps"] == pytest.approx(30.0)
    assert "version" in meta
    # taken from the frames streaming by, the same as reading them by random access
    assert np.array_equal(meta["video_fingerprint"], video_fingerprint(open_video(tiny_video)))
    with_maps = KeypointResult.load(tmp_path / "r.h5", heatmaps=True)
    assert with_maps.heatmaps.shape == (n, 5, 16, 16)
    assert np.allclose(with_maps.heatmaps.astype(np.float32).sum((-1, -2)), 1, atol=0.02)


@pytest.mark.slow
def test_batch_size_does_not_change_results(checkpoint, tiny_video, tmp_path):
    # eval-mode BatchNorm: a frame's keypoints do not depend on its batch
    a = extract_to_result(checkpoint, tiny_video, tmp_path / "a.h5", batch_size=7)
    b = extract_to_result(checkpoint, tiny_video, tmp_path / "b.h5", batch_size=64)
    assert np.allclose(a.keypoints, b.keypoints, atol=1e-3)


@pytest.mark.slow
def test_interrupted_extraction_resumes(checkpoint, tiny_video, tmp_path):
    out = tmp_path / "r.h5"
    steps = extract(checkpoint, tiny_video, out, batch_size=32)
    next(steps)
    next(steps)
    steps.close()  # interrupted after 64 frames
    assert not out.exists()
    part = out.with_name(f".{out.name}.part")
    with h5py.File(part, "r") as f:
        assert f.attrs["frames_done"] == 64
    events = list(extract(checkpoint, tiny_video, out, batch_size=32))
    assert events[0].frames_done == 96  # continued, not restarted
    full = extract_to_result(checkpoint, tiny_video, tmp_path / "full.h5", batch_size=32)
    resumed = KeypointResult.load(out)
    assert np.allclose(resumed.keypoints, full.keypoints, atol=1e-4)
    # frames done before the resume were read back for the fingerprint
    assert np.array_equal(
        resumed.metadata["video_fingerprint"], full.metadata["video_fingerprint"]
    )


def test_unfinished_or_foreign_results_give_clear_errors(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        KeypointResult.load(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ResultsError, match="HDF5"):
        KeypointResult.load(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ResultsError, match="not a bkind results file"):
        KeypointResult.load(tmp_path / "other.h5")
