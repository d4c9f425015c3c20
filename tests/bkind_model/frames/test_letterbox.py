"""Soft-argmax, covariance, confidence, Gaussian rendering and letterboxing."""

import numpy as np
import pytest
import torch

from bkind_model.frames.letterbox import Letterbox
from bkind_model.model.keypoints import normalised_grid, render_gaussians, soft_argmax


def _gaussian_logits(height, width, centre_xy, std_px):
    """Log of an isotropic Gaussian heatmap centred at pixel ``centre_xy``."""
    ys, xs = np.mgrid[0:height, 0:width]
    d2 = (xs - centre_xy[0]) ** 2 + (ys - centre_xy[1]) ** 2
    return torch.tensor(-d2 / (2 * std_px**2), dtype=torch.float32)[None, None]


def test_soft_argmax_finds_the_centre_of_a_gaussian():
    logits = _gaussian_logits(40, 60, (20.0, 12.0), std_px=2.0)
    kp = soft_argmax(logits)
    u, v = kp.mean[0, 0].tolist()
    assert u == pytest.approx((20.5) * 2 / 60 - 1, abs=1e-4)
    assert v == pytest.approx((12.5) * 2 / 40 - 1, abs=1e-4)


def test_covariance_of_an_anisotropic_heatmap():
    height, width = 64, 64
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    sx, sy = 4.0, 2.0  # pixels
    logits = -((xs - 32) ** 2) / (2 * sx**2) - (ys - 30) ** 2 / (2 * sy**2)
    kp = soft_argmax(torch.tensor(logits, dtype=torch.float32)[None, None])
    cov = kp.covariance[0, 0].numpy()
    px = 2.0 / width  # normalised units per pixel
    assert cov[0, 0] == pytest.approx((sx * px) ** 2, rel=1e-3)
    assert cov[1, 1] == pytest.approx((sy * px) ** 2, rel=1e-3)
    assert abs(cov[0, 1]) < 1e-6
    assert np.allclose(cov, cov.T)


def test_covariance_sign_follows_the_tilt():
    ys, xs = np.mgrid[0:48, 0:48].astype(np.float64)
    a, b = xs - 24, ys - 24
    along, across = (a + b) / np.sqrt(2), (a - b) / np.sqrt(2)  # tilted down-right
    logits = -(along**2) / (2 * 6.0**2) - across**2 / (2 * 1.5**2)
    cov = soft_argmax(torch.tensor(logits, dtype=torch.float32)[None, None]).covariance[0, 0]
    assert cov[0, 1] > 0


def test_confidence_is_one_for_uniform_and_grows_with_sharpness():
    flat = soft_argmax(torch.zeros(1, 1, 32, 32)).confidence.item()
    broad = soft_argmax(_gaussian_logits(32, 32, (16, 16), 6.0)).confidence.item()
    sharp = soft_argmax(_gaussian_logits(32, 32, (16, 16), 1.0)).confidence.item()
    assert flat == pytest.approx(1.0)
    assert 1.0 < broad < sharp


def test_probability_maps_sum_to_one():
    kp = soft_argmax(torch.randn(2, 3, 16, 24))
    assert torch.allclose(kp.probability.sum((-1, -2)), torch.ones(2, 3))


def test_render_gaussians_peaks_at_the_keypoint():
    xs, ys = normalised_grid(20, 30)
    mean = torch.tensor([[[xs[7].item(), ys[11].item()]]])
    maps = render_gaussians(mean, std=0.1, height=20, width=30)
    assert maps.shape == (1, 1, 20, 30)
    assert maps[0, 0, 11, 7] == pytest.approx(1.0)
    assert maps[0, 0].argmax().item() == 11 * 30 + 7
    assert maps[0, 0, 11, 0] < maps[0, 0, 11, 6]


@pytest.mark.parametrize("source", [(480, 640), (640, 480), (256, 256), (101, 333)])
def test_letterbox_keeps_aspect_ratio_and_round_trips(source):
    box = Letterbox.fit(source, long_side=96)
    assert all(side % 16 == 0 for side in box.input_size)
    resized = box.resized_size
    assert abs(resized[1] / resized[0] - source[1] / source[0]) < 0.05
    # The input's centre is the frame's centre (padding splits evenly, within a pixel).
    centre = box.to_source(np.zeros(2))
    assert np.allclose(centre, [(source[1] - 1) / 2, (source[0] - 1) / 2], atol=1 / box.scale)
    # The resized frame's corners (inside the padding) are the source's outer edges.
    size = np.array([box.input_size[1], box.input_size[0]])
    pad = np.array([box.pad[1], box.pad[0]])
    corners = (np.stack([pad, pad + resized[::-1]]) * 2.0 / size) - 1.0
    assert np.allclose(box.to_source(corners), [[-0.5, -0.5], [source[1] - 0.5, source[0] - 0.5]])


def test_letterbox_maps_frame_content_to_the_right_input_pixels():
    source = (48, 96)
    frame = torch.zeros(1, 1, *source)
    frame[..., 30, 70] = 1.0  # a bright pixel at x=70, y=30
    frame = frame.repeat(1, 1, 1, 1)
    box = Letterbox.fit(source, long_side=192)  # upscale x2: no antialias blur loss
    image = box.apply(frame)
    kp = soft_argmax(image.log().clamp(min=-50))  # a delta's soft-argmax is its pixel
    xy = box.to_source(kp.mean[0, 0].numpy())
    assert np.allclose(xy, [70, 30], atol=0.5)


def test_covariance_to_source_scales_by_pixels_per_unit():
    box = Letterbox.fit((480, 640), long_side=64)
    cov = np.eye(2) * 0.01
    px = box.covariance_to_source(cov)
    # 1 normalised unit = half the input width = 320 source px along x
    assert px[0, 0] == pytest.approx(0.01 * 320**2, rel=0.02)
