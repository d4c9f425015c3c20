import numpy as np
import pytest

from bkind_model.io.labels import LabelsError, labels_from_joints
from bkind_model.io.results import KeypointResult
from bkind_model.naming.bodyparts import Bodyparts
from bkind_model.naming.mapping import (
    MIN_FRAMES,
    NamedMap,
    NamingError,
    fit_map,
    labelled_frames,
)


def _errors(named, sample, frames):
    return np.linalg.norm(named.keypoints[frames] - sample.joints[frames], axis=-1)


def test_twenty_labels_name_every_frame_within_a_tenth_of_a_body(sample):
    result = KeypointResult.load(sample.results)
    labelled = np.arange(0, 240, 12)  # 20 frames
    labels = sample.labels(labelled)
    fitted = fit_map(result, labels, labelled_frames(result, labels, "labels"))
    named = fitted.predict(result)
    others = np.setdiff1d(np.arange(240), labelled)
    error = _errors(named, sample, others).mean() / labels.body_length
    # Without the body frame, the mean pose is off by the animal's whole travel.
    mean_pose = np.linalg.norm(labels.joints.mean(0) - sample.joints[others], axis=-1).mean()
    assert error < 0.1
    assert error * labels.body_length < mean_pose / 5
    assert named.keypoints.shape == (240, len(sample.names), 2)
    assert np.isnan(named.confidence).all()
    assert named.likelihood is not None and named.likelihood.shape == (240, len(sample.names))
    assert ((named.likelihood >= 0) & (named.likelihood <= 1)).all()
    assert named.metadata["kind"] == "named"
    assert named.metadata["keypoint_names"] == sample.names
    assert named.metadata["named_from"] == str(sample.results)
    assert named.metadata["video_path"] == str(sample.video)
    # so overlay can tell a replaced video from the named file too
    assert np.array_equal(
        named.metadata["video_fingerprint"], result.metadata["video_fingerprint"]
    )


def test_covariance_and_likelihood_follow_the_errors(sample):
    result = KeypointResult.load(sample.results)
    labelled = np.arange(0, 240, 8)
    fitted = fit_map(result, sample.labels(labelled), labelled)
    named = fitted.predict(result)
    others = np.setdiff1d(np.arange(240), labelled)
    errors = _errors(named, sample, others)
    predicted = np.trace(named.covariance[others], axis1=-2, axis2=-1)  # px^2
    # The predicted variance is of the size of the squared errors (within a factor 3).
    ratio = predicted.mean() / (errors**2).mean()
    assert 1 / 3 < ratio < 3
    # The stated probability of an error below the radius matches the observed share.
    hits = (errors < fitted.radius_px).mean()
    assert abs(named.likelihood[others].mean() - hits) < 0.2


def test_map_and_named_results_round_trip(sample, tmp_path):
    result = KeypointResult.load(sample.results)
    labelled = np.arange(0, 240, 10)
    parts = Bodyparts(("snout", "tail_base"), (("snout", "tail_base"),))
    fitted = fit_map(result, sample.labels(labelled), labelled, parts)
    again = NamedMap.load(fitted.save(tmp_path / "m.map.npz"))
    named = fitted.predict(result)
    np.testing.assert_allclose(again.predict(result).keypoints, named.keypoints)
    loaded = KeypointResult.load(named.save(tmp_path / "named.bkind.h5"))
    assert loaded.keypoint_names == ["snout", "tail_base"]
    assert loaded.metadata["skeleton"] == [["snout", "tail_base"]]
    np.testing.assert_allclose(loaded.likelihood, named.likelihood)


def test_a_corrected_label_improves_the_refit(sample):
    result = KeypointResult.load(sample.results)
    labelled = np.arange(0, 240, 12)
    labels = sample.labels(labelled)
    wrong = labels.joints.copy()
    wrong[3, 0] += 40.0  # one snout clicked far off
    bad = labels_from_joints(wrong, labels.names, labels.frames)
    snout = sample.names.index("snout")
    others = np.setdiff1d(np.arange(240), labelled)
    before = _errors(fit_map(result, bad, labelled).predict(result), sample, others)[:, snout]
    after = _errors(fit_map(result, labels, labelled).predict(result), sample, others)[:, snout]
    assert after.mean() < before.mean()


def test_labels_outside_the_frame_are_refused(sample):
    result = KeypointResult.load(sample.results)
    labels = sample.labels(np.arange(10))
    joints = labels.joints.copy()
    joints[2, 1] = (500.0, 20.0)
    with pytest.raises(LabelsError, match=r"CollectedData.h5: 1 labelled points lie outside"):
        fit_map(
            result,
            labels_from_joints(joints, labels.names, labels.frames),
            np.arange(10),
            source="CollectedData.h5",
        )


def test_a_bodypart_never_labelled_or_too_rarely(sample):
    result = KeypointResult.load(sample.results)
    labels = sample.labels(np.arange(10))
    with pytest.raises(NamingError, match="never labelled: whisker"):
        fit_map(result, labels, np.arange(10), Bodyparts(("snout", "whisker")))
    joints = labels.joints.copy()
    joints[MIN_FRAMES - 1 :, 0] = np.nan  # the snout in 2 frames only
    rare = labels_from_joints(joints, labels.names, labels.frames)
    with pytest.raises(NamingError, match=r"'snout' is labelled in 2 frame\(s\).*1 more"):
        fit_map(result, rare, np.arange(10))


def test_fewer_frames_than_features_still_fit(sample):
    """3 frames, 16 features: the penalty chosen by leave-one-out keeps the fit sound."""
    result = KeypointResult.load(sample.results)
    labelled = np.array([10, 100, 200])
    named = fit_map(result, sample.labels(labelled), labelled).predict(result)
    assert np.isfinite(named.keypoints).all()
    length = sample.labels(labelled).body_length
    assert _errors(named, sample, np.arange(240)).mean() < 0.5 * length


def test_labels_of_another_video_or_longer_video(sample):
    result = KeypointResult.load(sample.results)
    labels = sample.labels(np.arange(5))
    other = labels_from_joints(
        labels.joints, labels.names, [f.replace("/tiny/", "/other/") for f in labels.frames]
    )
    with pytest.raises(LabelsError, match="labels of video\\(s\\) other but the keypoints"):
        labelled_frames(result, other, "CollectedData_x.h5")
    late = labels_from_joints(
        labels.joints, labels.names, [f.replace("img00", "img90") for f in labels.frames]
    )
    with pytest.raises(LabelsError, match="frame 900 is beyond the 240 frames"):
        labelled_frames(result, late, "CollectedData_x.h5")


def test_a_map_refuses_keypoints_of_another_model(sample):
    result = KeypointResult.load(sample.results)
    fitted = fit_map(result, sample.labels(np.arange(0, 240, 20)), np.arange(0, 240, 20))
    fewer = KeypointResult(
        result.keypoints[:, :5],
        result.confidence[:, :5],
        result.covariance[:, :5],
        result.metadata,
    )
    with pytest.raises(NamingError, match="5 discovered keypoints but the map was fitted on 8"):
        fitted.predict(fewer)
    other = KeypointResult(
        result.keypoints,
        result.confidence,
        result.covariance,
        result.metadata | {"checkpoint_sha256": "1" * 64},
    )
    with pytest.raises(NamingError, match="another checkpoint"):
        fitted.predict(other)


def test_results_of_an_image_folder_match_rows_by_file_name(sample, tmp_path):
    """Keypoints extracted on the labelled images themselves (as bench/real.py links them)."""
    from PIL import Image

    from bkind_model.naming.mapping import frame_rows

    folder = tmp_path / "labelled"
    folder.mkdir()
    for i, name in enumerate(["img0003.png", "img0001.png", "img0002.png"]):
        Image.new("RGB", (8, 8)).save(folder / f"{i:05d}_{name}")
    result = KeypointResult.load(sample.results)
    result.metadata["video_path"] = str(folder)
    rows = ["labeled-data/m4s1/img0001.png", "labeled-data/m4s1/img0003.png"]
    labels = labels_from_joints(sample.joints[:2], sample.names, rows)
    np.testing.assert_array_equal(labelled_frames(result, labels, "labels"), [1, 0])
    assert frame_rows(result, np.array([2])) == ["labeled-data/labelled/00002_img0002.png"]
    missing = labels_from_joints(sample.joints[:2], sample.names, ["a/b/img0009.png"] * 2)
    with pytest.raises(LabelsError, match=r"img0009\.png\) are not in"):
        labelled_frames(result, missing, "labels")


def test_every_feature_set_fits_and_round_trips(sample, tmp_path):
    from bkind_model.naming.features import FeatureSet

    result = KeypointResult.load(sample.results)
    labelled = np.arange(0, 240, 12)
    labels = sample.labels(labelled)
    others = np.setdiff1d(np.arange(240), labelled)
    for i, features in enumerate(
        [FeatureSet(), FeatureSet(uncertainty=True), FeatureSet(blob=True, fusion=True)]
    ):
        fitted = fit_map(result, labels, labelled, features=features)
        named = fitted.predict(result)
        error = _errors(named, sample, others).mean() / labels.body_length
        assert error < 0.15, (features, error)
        again = NamedMap.load(fitted.save(tmp_path / f"{i}.map.npz"))
        assert again.features == features
        assert (again.blob_fits is None) == (not features.fusion)
        np.testing.assert_allclose(again.predict(result).keypoints, named.keypoints)


def test_a_damaged_map_file_is_one_line(tmp_path):
    with pytest.raises(NamingError, match="map file not found"):
        NamedMap.load(tmp_path / "none.map.npz")
    bad = tmp_path / "bad.map.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(NamingError, match=r"bad\.map\.npz: not a map of named bodyparts"):
        NamedMap.load(bad)
