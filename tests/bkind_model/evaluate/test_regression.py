"""Regression evaluation and its baselines."""

import json

import numpy as np
import pandas as pd
import pytest

from bkind_model.errors import ConfigError
from bkind_model.evaluate.baselines import blob_features
from bkind_model.evaluate.regression import (
    choose_alpha,
    evaluate_results,
    k_folds,
    keypoint_features,
    make_folds,
    regression_score,
    ridge_fit,
    ridge_predict,
    split_halves,
)
from bkind_model.frames.background import median_background
from bkind_model.io.labels import LabelsError, labels_from_joints
from bkind_model.io.results import KeypointResult
from bkind_model.synthetic import ground_truth_path, load_ground_truth


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


# --- missing labels, folds, JSON-valid results --------------------------------------------


def _linear_problem(n=200, n_features=6, n_joints=5, seed=2):
    """Features and joints that are an exact affine function of them, px."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, n_features)) * 20 + 100
    weights = rng.normal(size=(n_features, n_joints * 2))
    joints = (features @ weights + 50.0).reshape(n, n_joints, 2)
    return features, joints


def test_nan_aware_regression_recovers_a_linear_map_with_30_percent_missing():
    features, joints = _linear_problem()
    rng = np.random.default_rng(3)
    missing = rng.random(joints.shape[:2]) < 0.3
    holes = joints.copy()
    holes[missing] = np.nan
    holes[0, 0, 0] = 1.0  # only y missing: the joint is missing as a whole
    holes[0, 0, 1] = np.nan
    missing[0, 0] = True
    score = regression_score(features, holes, split_halves(len(holes)), 40.0, alpha=1e-9)
    assert score.error_px < 1e-3
    assert np.isfinite(score.per_joint_px).all() and (score.per_joint_px < 1e-3).all()
    assert score.skipped_per_joint.tolist() == missing.sum(axis=0).tolist()
    assert score.skipped_total == int(missing.sum())
    assert score.n_scored == int((~missing).sum())
    as_dict = score.to_dict()
    assert as_dict["skipped_total"] == int(missing.sum())
    assert set(as_dict) >= {"error_px", "per_joint_px", "normalised"}
    json.dumps(as_dict, allow_nan=False)


def test_missing_labels_do_not_pull_the_fit():
    """A wrong fit would be dragged by NaN-as-zero; the NaN-aware one keeps the truth."""
    features, joints = _linear_problem(n=120)
    holes = joints.copy()
    holes[::3, 2] = np.nan
    folds = k_folds(len(holes), 4)
    score = regression_score(features, holes, folds, alpha=1e-9)
    assert score.per_joint_px[2] < 1e-3
    assert score.skipped_per_joint.tolist() == [0, 0, 40, 0, 0]


def test_without_missing_labels_the_score_is_the_single_fit_score():
    features, joints = _linear_problem(n=90)
    rng = np.random.default_rng(4)
    joints = joints + rng.normal(0, 3, size=joints.shape)
    folds = split_halves(len(joints))
    score = regression_score(features, joints, folds, body_length=10.0)
    errors = []
    for train, test in folds:
        w = ridge_fit(features[train], joints[train].reshape(len(train), -1))
        predicted = ridge_predict(w, features[test]).reshape(len(test), -1, 2)
        errors.append(np.linalg.norm(predicted - joints[test], axis=-1))
    errors = np.concatenate(errors)
    assert score.error_px == pytest.approx(errors.mean())
    np.testing.assert_allclose(score.per_joint_px, errors.mean(axis=0))
    assert score.normalised == pytest.approx(errors.mean() / 10.0)
    assert score.skipped_total == 0


def test_a_joint_without_any_label_scores_none():
    features, joints = _linear_problem(n=40)
    joints[:, 1] = np.nan
    score = regression_score(features, joints, split_halves(40))
    assert np.isnan(score.per_joint_px[1]) and np.isfinite(score.per_joint_px[[0, 2, 3, 4]]).all()
    assert score.to_dict()["per_joint_px"][1] is None
    assert score.skipped_per_joint[1] == 40
    json.dumps(score.to_dict(), allow_nan=False)


def test_nan_features_are_refused_with_their_frames():
    features, joints = _linear_problem(n=30)
    features[[4, 17]] = np.nan
    with pytest.raises(ConfigError, match=r"2 of 30 frames \(4, 17\)"):
        regression_score(features, joints, split_halves(30))
    features[4] = np.inf
    with pytest.raises(ConfigError, match="NaN or infinite"):
        regression_score(features, joints, split_halves(30))


def test_make_folds_validates_the_number_of_folds():
    halves = make_folds(10, 2)
    assert [t.tolist() for _, t in halves] == [t.tolist() for _, t in split_halves(10)]
    assert len(make_folds(10, 5)) == 5 and len(make_folds(10, 10)) == 10
    for bad in (0, 1, -3, 11, 2.5, True, "3"):
        with pytest.raises(ConfigError, match="2 to 10"):
            make_folds(10, bad)
    with pytest.raises(ConfigError, match="at least 2"):
        make_folds(1, 2)
    with pytest.raises(ConfigError):
        k_folds(5, 6)


# --- evaluate_results on a real results file, video and DeepLabCut labels ------------------


def _dlc_labels(joints, names, path):
    """Write ``(T, J, 2)`` joints as a DeepLabCut ``CollectedData`` file."""
    columns = pd.MultiIndex.from_product(
        [["synthetic"], names, ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    index = [f"labeled-data/tiny/img{i:04d}.png" for i in range(len(joints))]
    frame = pd.DataFrame(joints.reshape(len(joints), -1), index=index, columns=columns)
    frame.to_hdf(path, key="df_with_missing", format="table")
    return path


@pytest.fixture(scope="module")
def tiny_results(tiny_video, tmp_path_factory):
    """A results file of the tiny video: keypoints = 4 true joints plus noise."""
    truth = load_ground_truth(tiny_video)
    joints = truth.joints[:, 0].astype(np.float64)
    rng = np.random.default_rng(5)
    keypoints = joints[:, [0, 3, 6, 12]] + rng.normal(0, 0.5, size=(len(joints), 4, 2))
    t, k = keypoints.shape[:2]
    result = KeypointResult(
        keypoints.astype(np.float32),
        np.ones((t, k), np.float32),
        np.tile(np.eye(2, dtype=np.float32), (t, k, 1, 1)),
        {"video_path": str(tiny_video)},
    )
    path = result.save(tmp_path_factory.mktemp("results") / "tiny.bkind.h5")
    return path, joints, list(truth.joint_names)


def test_evaluate_results_is_json_valid_with_a_never_labelled_bodypart(tiny_results, tmp_path):
    path, joints, names = tiny_results
    labels = joints.copy()
    rng = np.random.default_rng(6)
    labels[rng.random(labels.shape[:2]) < 0.2] = np.nan
    labels[:, 5] = np.nan  # never labelled
    labels[10] = np.nan  # a frame without any label
    missing = np.isnan(labels).any(axis=-1).sum(axis=0)
    summary = evaluate_results(path, _dlc_labels(labels, names, tmp_path / "CollectedData.h5"))
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text) == summary
    expected = {"keypoints", "keypoints_uncertainty", "blob", "mean_pose", "ratio_to_blob"}
    assert expected | {"body_length_px", "n_frames", "joint_names"} <= set(summary)
    assert summary["n_frames"] == len(joints) and summary["joint_names"] == names
    assert summary["skipped_labels"] == dict(zip(names, missing.tolist(), strict=True))
    assert summary["skipped_labels"][names[5]] == len(joints)
    assert summary["skipped_total"] == int(missing.sum())
    assert summary["unlabelled_bodyparts"] == [names[5]]
    for name in ("keypoints", "keypoints_uncertainty", "blob", "mean_pose"):
        per_joint = summary[name]["per_joint_px"]
        assert per_joint[5] is None and all(
            v is not None for i, v in enumerate(per_joint) if i != 5
        )
    assert summary["keypoints"]["error_px"] < summary["mean_pose"]["error_px"]


def test_evaluate_results_refuses_bad_folds_and_nan_keypoints(tiny_results, tmp_path):
    path, joints, names = tiny_results
    labels = labels_from_joints(joints, names, [f"f{i}" for i in range(len(joints))])
    for folds in (1, len(joints) + 1):
        with pytest.raises(ConfigError, match=f"2 to {len(joints)}"):
            evaluate_results(path, labels, folds=folds)
    result = KeypointResult.load(path)
    result.keypoints[[7, 9]] = np.nan
    with pytest.raises(LabelsError, match=r"keypoints features .* \(f7, f9\)"):
        evaluate_results(result, labels)


def test_evaluate_results_against_the_synthetic_ground_truth(tiny_results, tiny_video):
    path = tiny_results[0]
    summary = evaluate_results(path, ground_truth_path(tiny_video), folds=3)
    json.dumps(summary, allow_nan=False)
    assert summary["skipped_total"] == 0 and summary["unlabelled_bodyparts"] == []
    assert summary["keypoints"]["error_px"] < summary["blob"]["error_px"]


def test_labels_of_images_of_another_size_are_refused_naming_the_file(tiny_results, tmp_path):
    path, joints, names = tiny_results
    result = KeypointResult.load(path)
    result.metadata["frame_size"] = [128, 128]
    labels = _dlc_labels(joints * 3 + 40, names, tmp_path / "CollectedData_big.h5")
    with pytest.raises(
        LabelsError,
        match=r"CollectedData_big\.h5: \d+ of \d+ labelled points lie outside the 128x128",
    ):
        evaluate_results(result, labels)
    assert evaluate_results(result, _dlc_labels(joints, names, tmp_path / "ok.h5"))["n_frames"]


def test_labels_of_other_images_are_refused_naming_the_folder(tiny_results, tmp_path):
    path, joints, names = tiny_results
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(len(joints)):
        (folder / f"frame_{i:05d}.png").write_bytes(b"")
    result = KeypointResult.load(path)
    result.metadata["video_path"] = str(folder)
    labels = _dlc_labels(joints, names, tmp_path / "CollectedData_fly.h5")
    with pytest.raises(
        LabelsError, match=r"none of its \d+ labelled images \(e.g. img0000.png\) is in .*frames"
    ):
        evaluate_results(result, labels)


def test_a_feature_constant_in_training_cannot_throw_a_test_frame_away():
    features, joints = _linear_problem(n=80, n_features=6, n_joints=3)[:2]
    folds = split_halves(len(features))
    baseline = regression_score(features, joints, folds).error_px
    stuck = np.column_stack([features, np.full(len(features), 50.0)])
    stuck[: len(features) // 2, -1] += np.random.default_rng(0).normal(0, 1e-4, len(features) // 2)
    stuck[-1, -1] = 120.0  # the stuck keypoint moves in one test frame
    score = regression_score(stuck, joints, folds)
    assert score.error_px < 1.5 * baseline + 1.0


def test_the_penalty_is_chosen_inside_the_training_frames():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(60, 30))  # many useless features, few frames
    targets = rng.normal(size=(60, 2))
    assert choose_alpha(features, targets) >= 1.0
    useful = rng.normal(size=(60, 2))
    assert choose_alpha(useful, useful * 10 + rng.normal(0, 0.01, (60, 2))) <= 0.01
