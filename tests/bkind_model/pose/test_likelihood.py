import numpy as np

from bkind_model.pose.likelihood import (
    LIKELIHOOD_MEANING,
    MIN_FRAMES,
    calibrated_likelihood,
    calibration_report,
    stability,
)


def _rotation(angles):
    c, s = np.cos(angles), np.sin(angles)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def _walk(n_frames=400, seed=0):
    """An animal walking and turning: 6 keypoints on its body, px."""
    rng = np.random.default_rng(seed)
    shape = np.array([[40.0, 0], [20, 8], [0, 0], [-20, -8], [-45, 0], [5, 14]])
    heading = np.cumsum(rng.normal(0, 0.05, n_frames))
    step = np.stack([np.cos(heading), np.sin(heading)], -1) * 3.0
    centre = 300 + np.cumsum(step, axis=0)
    points = np.einsum("tij,kj->tki", _rotation(heading), shape) + centre[:, None]
    return points + rng.normal(0, 0.7, points.shape), rng


def _heatmap_stats(points, rng, sharp=200.0):
    n, k = points.shape[:2]
    confidence = rng.uniform(0.8, 1.2, (n, k)) * sharp
    covariance = np.broadcast_to(np.eye(2) * 4.0, (n, k, 2, 2)).copy()
    return confidence, covariance


def _with_bad_keypoints():
    points, rng = _walk()
    n = len(points)
    # keypoint 6 sits on the background; keypoint 7 jumps between two places on the body
    background = np.broadcast_to([[120.0, 80.0]], (n, 2)) + rng.normal(0, 0.7, (n, 2))
    flicker = np.where(rng.random((n, 1)) < 0.5, points[:, 0], points[:, 4])
    points = np.concatenate([points, background[:, None], flicker[:, None]], axis=1)
    confidence, covariance = _heatmap_stats(points, rng)
    return points, confidence, covariance


def test_body_keypoints_are_likely_and_off_body_or_jumping_ones_are_not():
    points, confidence, covariance = _with_bad_keypoints()
    likelihood = calibrated_likelihood(points, confidence, covariance)
    assert likelihood.shape == confidence.shape
    assert ((likelihood >= 0) & (likelihood <= 1)).all()
    below = (likelihood < 0.6).mean(axis=0)
    assert below[:6].max() < 0.1, below
    assert below[6] > 0.5 and below[7] > 0.5, below


def test_a_keypoint_following_the_animal_off_its_body_is_unlikely_given_the_foreground():
    points, rng = _walk()
    # keypoint 6 keeps a fixed place 60 px beside the body: stable, but not on the animal
    beside = points[:, 2] + (points[:, 1] - points[:, 2]) * 3
    points = np.concatenate([points, beside[:, None]], axis=1)
    confidence, covariance = _heatmap_stats(points, rng)
    on_animal = np.ones(confidence.shape, bool)
    on_animal[:, 6] = rng.random(len(points)) < 0.1
    without = calibrated_likelihood(points, confidence, covariance)
    assert (without[:, 6] < 0.6).mean() < 0.1  # stability alone cannot tell
    with_foreground = calibrated_likelihood(points, confidence, covariance, on_animal=on_animal)
    assert (with_foreground[:, 6] < 0.6).mean() > 0.9
    assert (with_foreground[:, :6] < 0.6).mean() < 0.1
    # a foreground that misses most keypoints (the animal is in the background) is ignored
    mostly_off = np.zeros_like(on_animal)
    ignored = calibrated_likelihood(points, confidence, covariance, on_animal=mostly_off)
    np.testing.assert_allclose(ignored, without)


def test_the_likelihood_is_calibrated_on_held_out_frames():
    report = calibration_report(*_with_bad_keypoints())
    assert report.expected_calibration_error < 0.1
    assert report.auc > 0.8
    assert 0.5 < report.stable_share < 1.0
    assert set(report.to_dict()) == {
        "expected_calibration_error",
        "auc",
        "stable_share",
        "below_0.6",
    }


def test_stability_is_measured_in_the_body_frame():
    points, _ = _walk()
    measured = stability(points)
    # walking and turning do not make body keypoints unstable
    assert measured.stable.mean() > 0.95
    assert 40 < measured.length < 120  # twice the RMS radius of a 85 px long shape


def test_hand_placed_points_are_certain_and_missing_ones_have_none():
    points, confidence, covariance = _with_bad_keypoints()
    points[10, 2] = np.nan
    confidence[20, 3] = np.nan  # placed by hand
    likelihood = calibrated_likelihood(points, confidence, covariance)
    assert np.isnan(likelihood[10, 2])
    assert likelihood[20, 3] == 1.0
    assert np.isfinite(np.delete(likelihood.reshape(-1), 10 * 8 + 2)).all()


def test_a_few_unrelated_frames_fall_back_to_the_heatmap_peak():
    points, confidence, covariance = _with_bad_keypoints()
    few = slice(0, MIN_FRAMES - 1)
    confidence[0, 0] = 1.0  # a uniform heatmap
    confidence[1, 0] = 576.0  # all mass in one of 576 cells
    likelihood = calibrated_likelihood(points[few], confidence[few], covariance[few], 576)
    assert likelihood[0, 0] < 0.01 and likelihood[1, 0] == 1.0
    np.testing.assert_allclose(likelihood[2:], np.clip(confidence[2 : MIN_FRAMES - 1] / 576, 0, 1))
    assert "stable" in LIKELIHOOD_MEANING
