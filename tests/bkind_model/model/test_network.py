"""The B-KinD network and its keypoint geometry on real (small) torch modules."""

import math

import pytest
import torch

from bkind_model.config import Config
from bkind_model.errors import CheckpointError
from bkind_model.model.keypoints import normalised_grid, render_gaussians, soft_argmax
from bkind_model.model.network import BKinD, load_pretrained_state

#: The network's parts on the small encoder (EfficientNet-Lite0: test_efficientnet.py).
TINY = dict(
    encoder="small", image_size=64, batch_size=4, n_keypoints=4, width=16, threads=2, frame_gap=4
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors: one thread is fastest, and fair to other work on the machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(seed=0, **changes):
    torch.manual_seed(seed)
    return BKinD(Config(**(TINY | changes)))


def _frames(batch, height, width, seed=1):
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def _check_keypoints(kp, batch, k, heatmap_size):
    assert kp.mean.shape == (batch, k, 2)
    assert kp.covariance.shape == (batch, k, 2, 2)
    assert kp.confidence.shape == (batch, k)
    assert kp.probability.shape == (batch, k, *heatmap_size)
    assert torch.isfinite(kp.mean).all() and torch.isfinite(kp.covariance).all()
    assert (kp.mean.abs() <= 1).all()
    # the confidence is the peak relative to a uniform map: never below 1
    assert (kp.confidence >= 1 - 1e-4).all()
    assert (kp.probability >= 0).all()
    sums = kp.probability.sum((-1, -2))
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-4)
    cov = kp.covariance.double()
    assert torch.allclose(cov, cov.transpose(-1, -2))
    assert (torch.linalg.eigvalsh(cov) >= -1e-7).all()  # positive semi-definite


@pytest.mark.parametrize("stride", [2, 4])
@pytest.mark.parametrize("size", [(64, 64), (64, 96), (96, 64)])
def test_keypoints_have_the_documented_shapes_and_ranges(size, stride):
    model = _model(heatmap_stride=stride).eval()
    with torch.no_grad():
        kp = model.keypoints(_frames(3, *size))
    _check_keypoints(kp, 3, 4, (size[0] // stride, size[1] // stride))


@pytest.mark.parametrize("size", [(64, 64), (64, 96)])
def test_forward_reconstructs_at_the_input_size(size):
    model = _model().eval()
    a, b = _frames(2, *size, seed=1), _frames(2, *size, seed=2)
    with torch.no_grad():
        out = model(a, b)
        alone_a, alone_b = model.keypoints(a), model.keypoints(b)
    assert out.reconstruction.shape == (2, 1, *size)
    assert torch.isfinite(out.reconstruction).all()
    for kp in (out.keypoints_a, out.keypoints_b):
        _check_keypoints(kp, 2, 4, (size[0] // 4, size[1] // 4))
    # eval-mode BatchNorm: each half of the joint batch gives that frame's own keypoints
    assert torch.allclose(out.keypoints_a.mean, alone_a.mean, atol=1e-5)
    assert torch.allclose(out.keypoints_b.mean, alone_b.mean, atol=1e-5)
    assert not torch.allclose(out.keypoints_a.probability, out.keypoints_b.probability)


def test_eval_keypoints_of_a_frame_do_not_depend_on_its_batch():
    model = _model().eval()
    frames = _frames(4, 64, 64)
    with torch.no_grad():
        together = model.keypoints(frames).mean
        one = model.keypoints(frames[2:3]).mean
    assert torch.allclose(together[2:3], one, atol=1e-5)


def test_reconstruction_loss_trains_the_keypoint_head_and_the_encoder():
    model = _model().train()
    a, b = _frames(2, 64, 64, seed=1), _frames(2, 64, 64, seed=2)
    out = model(a, b)
    target = (a - b).abs().mean(1, keepdim=True)
    torch.nn.functional.mse_loss(out.reconstruction, target).backward()
    # the head's last layer feeds only the keypoints: a gradient there went through
    # the decoder, the rendered Gaussians and the soft-argmax
    head = model.head.out.weight.grad
    assert head is not None and torch.isfinite(head).all() and head.abs().sum() > 0
    first = model.encoder.levels[0][0][0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0


def test_gradient_reaches_the_head_through_the_keypoint_means_alone():
    model = _model().train()
    kp = model.keypoints(_frames(2, 64, 64))
    kp.mean[:, 0, 0].sum().backward()
    assert model.head.out.weight.grad.abs().sum() > 0


def test_heatmap_scale_sharpens_the_heatmaps():
    frames = _frames(2, 64, 64)
    with torch.no_grad():
        soft = _model(heatmap_scale=1.0).eval().keypoints(frames)
        sharp = _model(heatmap_scale=50.0).eval().keypoints(frames)  # same weights
    # the peak of a softmax grows with the logits' scale; the peak pixel stays the same
    assert (sharp.confidence > soft.confidence).all()
    assert torch.equal(
        soft.probability.flatten(2).argmax(-1), sharp.probability.flatten(2).argmax(-1)
    )


def test_resnet_encoder_gives_the_same_interface():
    model = _model(encoder="resnet18").eval()
    with torch.no_grad():
        out = model(_frames(1, 64, 96, seed=1), _frames(1, 64, 96, seed=2))
    assert out.reconstruction.shape == (1, 1, 64, 96)
    _check_keypoints(out.keypoints_a, 1, 4, (16, 24))


def test_normalised_grid_puts_pixel_centres_inside_the_edges():
    xs, ys = normalised_grid(3, 4)
    assert torch.allclose(xs, torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert torch.allclose(ys, torch.tensor([-2 / 3, 0.0, 2 / 3]))


@pytest.mark.parametrize(("row", "col"), [(0, 0), (5, 17), (11, 23), (7, 0)])
def test_soft_argmax_of_a_sharp_peak_lands_on_its_pixel(row, col):
    height, width = 12, 24
    logits = torch.full((1, 2, height, width), -30.0)
    logits[0, 0, row, col] = 30.0
    logits[0, 1, height - 1 - row, width - 1 - col] = 30.0
    kp = soft_argmax(logits)
    # u = 2 * (x + 0.5) / W - 1 (see bkind_model.model.keypoints)
    u, v = 2 * (col + 0.5) / width - 1, 2 * (row + 0.5) / height - 1
    assert kp.mean[0, 0].tolist() == pytest.approx([u, v], abs=1e-5)
    assert kp.mean[0, 1].tolist() == pytest.approx([-u, -v], abs=1e-5)  # mirrored peak
    assert kp.covariance.abs().max() < 1e-6
    assert kp.confidence[0].tolist() == pytest.approx([height * width] * 2, rel=1e-4)


def test_soft_argmax_of_a_uniform_map_is_the_centre_with_uniform_spread():
    height, width = 8, 16
    kp = soft_argmax(torch.zeros(2, 3, height, width))
    assert torch.allclose(kp.mean, torch.zeros(2, 3, 2), atol=1e-6)
    assert torch.allclose(kp.confidence, torch.ones(2, 3))
    # variance of pixel centres spaced 2/n apart: (n^2 - 1) / 12 * (2/n)^2
    var = lambda n: (n * n - 1) / 12 * (2 / n) ** 2  # noqa: E731
    cov = kp.covariance[0, 0]
    assert cov[0, 0].item() == pytest.approx(var(width), rel=1e-5)
    assert cov[1, 1].item() == pytest.approx(var(height), rel=1e-5)
    assert abs(cov[0, 1].item()) < 1e-7 and abs(cov[1, 0].item()) < 1e-7


def test_soft_argmax_reads_back_a_rendered_gaussian():
    mean = torch.tensor([[[0.3, -0.4], [-0.55, 0.1]]])
    std = 0.05
    maps = render_gaussians(mean, std, 64, 96)
    assert maps.shape == (1, 2, 64, 96)
    assert maps.max() <= 1.0 and maps.max() > 0.95
    # the log of a Gaussian is a quadratic: softmax of it is the Gaussian itself
    kp = soft_argmax(torch.log(maps.clamp_min(1e-30)))
    assert torch.allclose(kp.mean, mean, atol=1e-4)
    diag = kp.covariance[0].diagonal(dim1=-2, dim2=-1)
    assert torch.allclose(diag, torch.full_like(diag, std**2), rtol=0.05)
    assert kp.covariance[0, :, 0, 1].abs().max() < 1e-6


def test_render_gaussians_peaks_at_its_centre_with_the_given_width():
    height, width, std = 20, 40, 0.1
    xs, ys = normalised_grid(height, width)
    row, col = 13, 9
    maps = render_gaussians(torch.tensor([[[xs[col].item(), ys[row].item()]]]), std, height, width)
    assert maps[0, 0, row, col].item() == pytest.approx(1.0)
    assert divmod(int(maps[0, 0].argmax()), width) == (row, col)
    step = xs[col + 1] - xs[col]
    expected = math.exp(-(step.item() ** 2) / (2 * std**2))
    assert maps[0, 0, row, col + 1].item() == pytest.approx(expected, rel=1e-5)


def test_pretrained_weights_are_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(CheckpointError, match="never downloads"):
        load_pretrained_state("resnet18", "torch-cache")
    with pytest.raises(CheckpointError, match="not found"):
        load_pretrained_state("resnet18", str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_text("not weights")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_pretrained_state("resnet18", str(bad))


def test_pretrained_weights_are_read_from_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    state = {"conv1.weight": torch.arange(6.0).view(1, 1, 2, 3)}
    torch.save(state, cache / "resnet18-0000.pth")
    loaded = load_pretrained_state("resnet18", "torch-cache")
    assert torch.equal(loaded["conv1.weight"], state["conv1.weight"])
