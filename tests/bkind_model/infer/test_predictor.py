"""A Predictor loaded from a real 2-step checkpoint, run on real decoded frames."""

import numpy as np
import pytest
import torch

from bkind_model.config import Config
from bkind_model.errors import CheckpointError
from bkind_model.infer.predictor import Predictor
from bkind_model.io.checkpoint import file_hash, load_checkpoint, save_checkpoint
from bkind_model.io.video import open_video
from bkind_model.train.loop import Trainer

TINY = dict(image_size=64, batch_size=4, n_keypoints=4, width=16, threads=2, frame_gap=4)
K = TINY["n_keypoints"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Prediction on a few small frames: one thread is fastest on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run_dir(tiny_video, tmp_path_factory):
    out = tmp_path_factory.mktemp("predictor-run")
    trainer = Trainer([tiny_video], out, Config(steps=2, **TINY))
    for _ in trainer.run():
        pass
    assert trainer.checkpoint_path.is_file()
    return out


@pytest.fixture(scope="module")
def frames(tiny_video):
    return open_video(tiny_video)[10:18]


@pytest.mark.slow
def test_loads_from_the_run_folder_or_the_file(run_dir):
    from_dir = Predictor(run_dir, device="cpu")
    from_file = Predictor(run_dir / "checkpoint.pt", device="cpu")
    assert from_dir.path == from_file.path == run_dir / "checkpoint.pt"
    assert from_dir.step == from_file.step == 2
    assert from_dir.config == from_file.config
    assert from_dir.config.n_keypoints == K
    assert from_dir.source_size == (128, 128)
    assert not from_dir.model.training  # eval mode: BatchNorm uses its running stats
    assert from_dir.sha256 == from_file.sha256 == file_hash(run_dir / "checkpoint.pt")
    assert len(from_dir.sha256) == 64


@pytest.mark.slow
def test_prediction_shapes_and_source_pixel_coordinates(run_dir, frames):
    predictor = Predictor(run_dir, device="cpu")
    out = predictor.predict(frames)
    n = len(frames)
    assert out.keypoints.shape == (n, K, 2) and out.keypoints.dtype == np.float32
    assert out.confidence.shape == (n, K)
    assert out.covariance.shape == (n, K, 2, 2)
    assert out.heatmaps is None  # only when asked
    assert out.offsets.shape == (n, 2)
    assert np.isfinite(out.keypoints).all() and (out.confidence >= 1 - 1e-4).all()
    # keypoints lie on the frame, inside each frame's input window
    assert (out.keypoints >= -0.5).all() and (out.keypoints <= 127.5).all()
    box = predictor.letterbox
    side = np.array([box.input_size[1], box.input_size[0]])
    low = (out.offsets + 0.5) / box.scale - 0.5
    high = (out.offsets + side - 0.5) / box.scale - 0.5
    assert (out.keypoints >= low[:, None] - 1e-3).all()
    assert (out.keypoints <= high[:, None] + 1e-3).all()
    cov = out.covariance.astype(np.float64)
    assert np.allclose(cov, np.swapaxes(cov, -1, -2))
    assert (np.linalg.eigvalsh(cov) >= -1e-6).all()


@pytest.mark.slow
def test_heatmaps_when_asked_place_the_keypoints(run_dir, frames):
    predictor = Predictor(run_dir, device="cpu")
    plain = predictor.predict(frames)
    out = Predictor(run_dir, device="cpu").predict(frames, heatmaps=True)
    stride = predictor.config.heatmap_stride
    h, w = (side // stride for side in predictor.letterbox.input_size)
    assert out.heatmaps.shape == (len(frames), K, h, w)
    assert np.allclose(out.heatmaps.sum((-1, -2)), 1, atol=1e-4)
    assert np.array_equal(out.keypoints, plain.keypoints)  # asking changes nothing else
    # the heatmaps' mean over the window gives back the keypoints in source pixels
    ys, xs = np.mgrid[0:h, 0:w]
    u = (out.heatmaps * (2 * (xs + 0.5) / w - 1)).sum((-1, -2))
    v = (out.heatmaps * (2 * (ys + 0.5) / h - 1)).sum((-1, -2))
    again = predictor.letterbox.to_source(np.stack([u, v], -1), out.offsets[:, None, :])
    assert np.allclose(again, out.keypoints, atol=1e-2)


@pytest.mark.slow
def test_predictions_are_deterministic(run_dir, tiny_video, frames):
    first = Predictor(run_dir, device="cpu").predict(frames)
    second = Predictor(run_dir, device="cpu").predict(frames)
    assert np.array_equal(first.keypoints, second.keypoints)
    assert np.array_equal(first.covariance, second.covariance)

    source = open_video(tiny_video)
    predictor = Predictor(run_dir, device="cpu")
    predictor.use_background_of(source)
    a = predictor.predict(frames)
    predictor.predict(open_video(tiny_video)[100:104])  # the stream moves on
    predictor.use_background_of(source)  # ... and is reset
    b = predictor.predict(frames)
    assert np.array_equal(a.keypoints, b.keypoints)
    assert np.array_equal(a.offsets, b.offsets)


@pytest.mark.slow
def test_batches_give_the_same_keypoints_as_one_call(run_dir, frames):
    whole = Predictor(run_dir, device="cpu").predict(frames)
    predictor = Predictor(run_dir, device="cpu")
    parts = [predictor.predict(frames[i : i + 3]) for i in range(0, len(frames), 3)]
    joined = np.concatenate([p.keypoints for p in parts])
    assert np.allclose(joined, whole.keypoints, atol=1e-3)


@pytest.mark.slow
def test_wrong_frame_size_names_both_sizes(run_dir):
    predictor = Predictor(run_dir, device="cpu")
    with pytest.raises(ValueError, match=r"96x64 px.*128x128 px"):
        predictor.predict(np.zeros((2, 64, 96, 3), np.uint8))


@pytest.mark.slow
def test_truncated_checkpoint_is_refused(run_dir, tmp_path):
    data = (run_dir / "checkpoint.pt").read_bytes()
    damaged = tmp_path / "checkpoint.pt"
    damaged.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt") as caught:
        Predictor(damaged, device="cpu")
    assert str(damaged) in str(caught.value)
    with pytest.raises(CheckpointError):
        Predictor(tmp_path, device="cpu")  # the folder holding it


@pytest.mark.slow
def test_checkpoint_without_geometry_or_with_foreign_weights_is_refused(run_dir, tmp_path):
    state = load_checkpoint(run_dir)
    no_geometry = {k: v for k, v in state.items() if k != "letterbox"}
    save_checkpoint(tmp_path / "a.pt", no_geometry)
    with pytest.raises(CheckpointError, match="geometry"):
        Predictor(tmp_path / "a.pt", device="cpu")

    other = dict(state, config=state["config"] | {"n_keypoints": K + 2})
    save_checkpoint(tmp_path / "b.pt", other)
    with pytest.raises(CheckpointError, match="do not fit"):
        Predictor(tmp_path / "b.pt", device="cpu")


@pytest.mark.slow
def test_sha256_follows_the_file(run_dir, tmp_path):
    state = load_checkpoint(run_dir)
    state["model"] = {k: v.clone() for k, v in state["model"].items()}
    weight = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][weight] += 1.0
    path = save_checkpoint(tmp_path / "changed.pt", state)
    original, changed = Predictor(run_dir, device="cpu"), Predictor(path, device="cpu")
    assert changed.sha256 == file_hash(path) != original.sha256
    assert not torch.equal(changed.model.state_dict()[weight], original.model.state_dict()[weight])
