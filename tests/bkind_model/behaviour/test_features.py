import numpy as np
import pytest

from bkind_model.behaviour.features import (
    fill_missing,
    frame_features,
    result_features,
    window_features,
    window_lengths,
)
from bkind_model.behaviour.synthetic import ground_truth_result


def _rotated(keypoints: np.ndarray, angle: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return keypoints @ np.array([[c, s], [-s, c]]) + np.array(shift)


def test_features_do_not_depend_on_where_the_animal_is_or_faces(samples):
    keypoints = ground_truth_result(samples[0]).keypoints[:300].astype(np.float64)
    features, shape = frame_features(keypoints, 30.0)
    moved, _ = frame_features(_rotated(keypoints, 1.1, (40.0, -25.0)), 30.0)
    n_keypoints = keypoints.shape[1]
    assert features.shape == (300, 4 * n_keypoints + 5 + n_keypoints * (n_keypoints - 1) // 2)
    assert shape.reference.shape == (n_keypoints, 2)
    assert shape.rigidity.shape == (n_keypoints,)
    again, _ = frame_features(_rotated(keypoints, -0.4, (3.0, 9.0)), 30.0, shape=shape)
    np.testing.assert_allclose(again, features, atol=2e-3)  # given the shape: the same axes
    np.testing.assert_allclose(moved, features, atol=2e-3)


def test_scaling_the_video_keeps_the_features_in_body_sizes(samples):
    keypoints = ground_truth_result(samples[0]).keypoints[:200].astype(np.float64)
    features, _ = frame_features(keypoints, 30.0)
    larger, _ = frame_features(2.5 * keypoints, 30.0)
    np.testing.assert_allclose(larger, features, atol=2e-3)


def test_missing_keypoints_are_interpolated_and_never_seen_ones_sit_at_the_centre(samples):
    keypoints = ground_truth_result(samples[0]).keypoints[:200].astype(np.float64)
    holed = keypoints.copy()
    holed[50:53, 2] = np.nan  # hand-deleted for three frames
    filled = fill_missing(holed)
    assert np.isfinite(filled).all()
    assert np.abs(filled[50:53, 2] - keypoints[50:53, 2]).max() < 3.0  # px: smooth motion
    holed[:, 4] = np.nan  # never placed
    features, _ = frame_features(holed, 30.0)
    assert np.isfinite(features).all()


def test_window_statistics_of_a_ramp(samples):
    ramp = np.arange(100, dtype=np.float32)[:, None]
    windowed = window_features(ramp, 9)
    long, short = window_lengths(9)
    assert (long, short) == (9, 3)
    assert windowed.shape == (100, 5)
    np.testing.assert_allclose(
        windowed[50], [50, 50, np.std(np.arange(46, 55)), 50, np.std([49, 50, 51])], rtol=1e-4
    )


@pytest.mark.parametrize("window_s", [0.2, 1.0])
def test_result_features_use_the_video_frame_rate(samples, window_s):
    result = ground_truth_result(samples[0])
    features, _ = result_features(result, window_s)
    assert features.shape[0] == result.n_frames
    assert features.dtype == np.float32
