"""Equivariance, separation, reconstruction losses and the dissimilarity target."""

import pytest
import torch

from bkind_model.frames.dissimilarity import structural_dissimilarity
from bkind_model.model.keypoints import soft_argmax
from bkind_model.train.losses import (
    equivariance_loss,
    reconstruction_loss,
    rotate_points,
    separation_loss,
)


def _blob_heatmaps(batch=2, k=3, size=(24, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    height, width = size
    logits = torch.full((batch, k, height, width), -20.0)
    for b in range(batch):
        for j in range(k):
            y = torch.randint(2, height - 2, (1,), generator=g).item()
            x = torch.randint(2, width - 2, (1,), generator=g).item()
            logits[b, j, y, x] = 10.0
    return logits


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_equivariance_loss_is_zero_for_an_equivariant_map(turns):
    # The identity "detector" (heatmap = image) is rotation equivariant.
    images = _blob_heatmaps()
    original = soft_argmax(images)
    rotated = soft_argmax(torch.rot90(images, turns, dims=(2, 3)))
    assert equivariance_loss(original, rotated, turns).item() == pytest.approx(0, abs=1e-8)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_equivariance_loss_is_positive_for_a_fixed_map(turns):
    # A detector that ignores the image and always answers the same place is not.
    images = _blob_heatmaps()
    original = soft_argmax(images)
    assert equivariance_loss(original, original, turns).item() > 1e-3


def test_rotate_points_four_quarter_turns_is_identity():
    uv = torch.randn(5, 2)
    assert torch.allclose(rotate_points(uv, 4), uv)
    assert torch.allclose(rotate_points(rotate_points(uv, 1), 3), uv)


def test_separation_loss_is_high_for_close_and_low_for_far_keypoints():
    close = torch.tensor([[[0.0, 0.0], [0.01, 0.0], [0.0, 0.01]]])
    far = torch.tensor([[[-0.8, -0.8], [0.8, -0.8], [0.0, 0.8]]])
    assert separation_loss(close, 0.08).item() > 0.9
    assert separation_loss(far, 0.08).item() < 1e-6


def test_separation_loss_has_gradient_pushing_apart():
    mean = torch.tensor([[[0.0, 0.0], [0.05, 0.0]]], requires_grad=True)
    separation_loss(mean, 0.08).backward()
    assert mean.grad[0, 0, 0] > 0 and mean.grad[0, 1, 0] < 0  # descent moves them apart


def test_dissimilarity_is_zero_for_identical_and_lighting_changes():
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(1, 3, 40, 40, generator=g) * 0.5
    assert structural_dissimilarity(frame, frame).abs().max() < 1e-4
    brighter = frame + 0.2  # a global brightness change leaves the structure alone
    assert structural_dissimilarity(frame, brighter).abs().max() < 1e-4


def test_dissimilarity_lights_up_where_something_moved():
    g = torch.Generator().manual_seed(0)
    floor = torch.rand(1, 3, 64, 64, generator=g) * 0.3
    a, b = floor.clone(), floor.clone()
    a[..., 10:20, 10:20] = 1.0
    b[..., 12:22, 14:24] = 1.0
    d = structural_dissimilarity(a, b)[0, 0]
    assert d[8:26, 8:26].mean() > 5 * d[40:, 40:].mean()


@pytest.mark.parametrize("kind", ["mse", "ssim", "random_features", "perceptual"])
def test_reconstruction_losses_are_zero_on_target_and_differentiable(kind):
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 1, 32, 32, generator=g) * 2
    assert reconstruction_loss(kind, target, target).item() == pytest.approx(0, abs=1e-5)
    prediction = torch.zeros_like(target, requires_grad=True)
    loss = reconstruction_loss(kind, prediction, target)
    loss.backward()
    assert loss.item() > 0 and prediction.grad.abs().sum() > 0
