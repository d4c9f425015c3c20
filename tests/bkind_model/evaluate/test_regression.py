"""Regression evaluation and its baselines."""

import numpy as np
import pytest

from bkind_model.evaluate.baselines import blob_features
from bkind_model.evaluate.regression import (
    k_folds,
    keypoint_features,
    regression_score,
    ridge_fit,
    ridge_predict,
    split_halves,
)
from bkind_model.frames.background import median_background


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) * [1, 10, 100, 1, 1, 1]
    w = rng.normal(size=(6, 4))
    y = x @ w + 3.0
    weights = ridge_fit(x, y, alpha=1e-9)
    assert np.allclose(ridge_predict(weights, x), y, atol=1e-4)


def test_features_that_determine_the_pose_beat_the_mean_pose():
    rng = np.random.default_rng(1)
    n = 120
    centre = rng.uniform(50, 200, size=(n, 1, 2))
    joints = centre + np.array([[0, 0], [10, 0], [0, 10]])  # rigid, translated
    keypoints = centre + np.array([[5, 5], [-5, 0]]) + rng.normal(0, 0.5, size=(n, 2, 2))
    folds = split_halves(n)
    good = regression_score(keypoint_features(keypoints), joints, folds, body_length=10.0)
    mean_pose = regression_score(np.zeros((n, 0)), joints, folds, body_length=10.0)
    assert good.error_px < 1.5
    assert mean_pose.error_px > 20
    assert good.normalised == pytest.approx(good.error_px / 10)
    assert good.per_joint_px.shape == (3,)


def test_keypoint_features_with_uncertainty():
    kp = np.zeros((5, 3, 2))
    conf = np.ones((5, 3))
    cov = np.tile(np.array([[4.0, 1.0], [1.0, 9.0]]), (5, 3, 1, 1))
    feats = keypoint_features(kp, conf, cov)
    assert feats.shape == (5, 3 * 2 + 3 + 3 * 3)
    assert feats[0, -3:].tolist() == [4.0, 1.0, 9.0]


def test_folds_cover_every_frame_once():
    for folds in (split_halves(11), k_folds(11, 4)):
        tested = np.concatenate([test for _, test in folds])
        assert sorted(tested.tolist()) == list(range(11))
        for train, test in folds:
            assert not set(train) & set(test)


def test_blob_features_measure_an_ellipse():
    frames = np.full((2, 100, 120, 3), 200, np.uint8)
    ys, xs = np.mgrid[0:100, 0:120]
    for i, (cx, cy) in enumerate([(40, 50), (80, 30)]):
        inside = ((xs - cx) / 20.0) ** 2 + ((ys - cy) / 6.0) ** 2 <= 1
        frames[i][inside] = 20
    background = median_background(np.full((3, 100, 120, 3), 200, np.uint8)).gray
    feats = blob_features(frames, background)
    assert np.allclose(feats[:, :2], [[40, 50], [80, 30]], atol=0.5)
    assert abs(feats[0, 2]) > 5 * abs(feats[0, 3])  # major axis along x
    assert feats[0, 6] > 2.5 * feats[0, 7]  # length > width
