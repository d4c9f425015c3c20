"""Behaviour with missing or damaged keypoints, odd frame rates and labels rows that are no
interval: unknown frames stay unknown, one bad frame stays local, the rest is one error."""

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from bkind_model.behaviour import BehaviourError
from bkind_model.behaviour.classifier import train_classifier
from bkind_model.behaviour.ethogram import read_ethograms, write_ethograms
from bkind_model.behaviour.features import (
    SMOOTH_FRAMES,
    result_features,
    shape_of,
    window_lengths,
)
from bkind_model.behaviour.labels import (
    UNLABELLED,
    BehaviourLabels,
    labels_from_codes,
    read_labels,
)
from bkind_model.behaviour.motifs import MotifSettings, find_motifs
from bkind_model.behaviour.synthetic import ground_truth_labels, ground_truth_result
from bkind_model.io.results import KeypointResult

N = 600  # frames of the clips: every behaviour at least 34 times in the first sample


def _first(result: KeypointResult, n: int = N) -> KeypointResult:
    return replace(
        result,
        keypoints=result.keypoints[:n],
        confidence=result.confidence[:n],
        covariance=result.covariance[:n],
    )


def _with_keypoints(result: KeypointResult, keypoints: np.ndarray) -> KeypointResult:
    return replace(result, keypoints=keypoints.astype(np.float32))


@pytest.fixture(scope="module")
def clip(samples) -> KeypointResult:
    return _first(ground_truth_result(samples[0]))


@pytest.fixture(scope="module")
def labels(samples) -> BehaviourLabels:
    truth = ground_truth_labels(samples[0])
    codes = truth.codes(samples[0].name, 1500)[:N]
    return labels_from_codes(truth.names, {samples[0].name: codes})


@pytest.fixture(scope="module")
def holed(clip) -> KeypointResult:
    """The clip with every keypoint missing in frames 100-149."""
    keypoints = clip.keypoints.copy()
    keypoints[100:150] = np.nan
    return _with_keypoints(clip, keypoints)


@pytest.fixture(scope="module")
def model(holed, labels):
    """A classifier trained on the holed clip (its holes are never trained on)."""
    return train_classifier([holed], labels)


@pytest.mark.parametrize("value", [np.inf, -1e30, np.nan])
def test_one_damaged_keypoint_changes_only_the_frames_in_its_window(clip, model, value):
    """B-pr-inf / M-inf: one inf made every frame 'walk'; now only its window moves."""
    clean, _ = result_features(clip, 0.5, model.shape)
    keypoints = clip.keypoints.copy()
    keypoints[300, 2, 0] = value
    damaged_clip = _with_keypoints(clip, keypoints)
    damaged, _ = result_features(damaged_clip, 0.5, model.shape)
    # The long window's half, the smoothing's reach and one frame of velocity.
    reach = window_lengths(round(0.5 * clip.fps))[0] // 2 + round(4 * SMOOTH_FRAMES) + 1
    changed = np.flatnonzero(np.abs(damaged - clean).max(axis=1) > 1e-4)
    assert changed.size and 300 - reach <= changed.min() and changed.max() <= 300 + reach
    # Nor does it move the body frame's reference estimated from every frame.
    reference = shape_of([damaged_clip]).reference
    np.testing.assert_allclose(reference, shape_of([clip]).reference, atol=0.1)


def test_frames_without_keypoints_are_unknown_in_the_ethogram_and_its_csv(
    samples, model, tmp_path
):
    """B-pr-allnan: missing keypoints gave a confident behaviour; now they give none."""
    held_out = _first(ground_truth_result(samples[1]))
    keypoints = held_out.keypoints.copy()
    keypoints[200:260] = np.nan  # every keypoint missing
    keypoints[400:410, 1:] = np.nan  # one keypoint left: no heading
    path = _with_keypoints(held_out, keypoints).save(tmp_path / "holed.bkind.h5")
    ethogram = model.predict(KeypointResult.load(path))
    clean = model.predict(held_out)

    unknown = np.zeros(N, bool)
    unknown[200:260] = unknown[400:410] = True
    assert (ethogram.codes[unknown] == UNLABELLED).all()
    assert np.isnan(ethogram.probabilities[unknown]).all()
    assert (ethogram.codes[~unknown] >= 0).all()
    np.testing.assert_allclose(ethogram.probabilities[~unknown].sum(axis=1), 1.0, atol=1e-4)
    # Beyond the feature window and the smoothing, the predictions are the clean ones.
    far = ~ndimage.binary_dilation(unknown, iterations=45)
    np.testing.assert_array_equal(ethogram.codes[far], clean.codes[far])

    csv = write_ethograms(tmp_path / "ethogram.csv", [ethogram])
    (back,) = read_ethograms(csv)
    np.testing.assert_array_equal(back.codes, ethogram.codes)
    assert np.isnan(back.probabilities[unknown]).all()
    assert np.isfinite(back.probabilities[~unknown]).all()


def test_training_and_motifs_leave_out_frames_without_keypoints(holed, labels, model):
    assert model.trained_on == {labels.videos()[0]: N - 50}

    (motifs,) = find_motifs([holed], MotifSettings(n_motifs=3, iterations=5))
    assert (motifs.codes[100:150] == UNLABELLED).all()
    assert np.isnan(motifs.probabilities[100:150]).all()
    known = np.r_[0:100, 150:N]
    assert (motifs.codes[known] >= 0).all()
    np.testing.assert_allclose(motifs.probabilities[known].sum(axis=1), 1.0, atol=1e-4)


def test_keypoints_without_a_usable_frame_are_one_clear_error(clip, labels, model):
    """B-pr-allnan, B-tr-allnan, M-allnan, B-pr-zeroframes."""
    nothing = _with_keypoints(clip, np.full(clip.keypoints.shape, np.nan))
    message = "none of its 600 frames has 2 keypoints found"
    with pytest.raises(BehaviourError, match=message):
        model.predict(nothing)
    with pytest.raises(BehaviourError, match=message):
        train_classifier([nothing], labels)
    with pytest.raises(BehaviourError, match=message):
        find_motifs([nothing], MotifSettings(n_motifs=3))
    with pytest.raises(BehaviourError, match="holds no frames"):
        model.predict(_first(clip, 0))


def test_a_window_longer_than_the_video_or_no_frame_rate_is_refused(clip, model):
    """M-winhuge, B-pr-fpshuge, B-pr-fpsnan: MemoryError, OverflowError, ValueError before."""
    with pytest.raises(
        BehaviourError,
        match=r"a window of 1e\+09 s is 3e\+10 frames at 30 fps, longer than the video's "
        r"600 frames; use a window of at most 20 s",
    ):
        find_motifs([clip], MotifSettings(n_motifs=3, window_s=1e9))
    huge = replace(clip, metadata=clip.metadata | {"fps": 1e300})
    with pytest.raises(BehaviourError, match="frames at 1e\\+300 fps, longer than the video"):
        model.predict(huge)
    with pytest.raises(BehaviourError, match="frame rate nan fps is no frame rate"):
        result_features(replace(clip, metadata=clip.metadata | {"fps": float("nan")}), 1.0)


def test_labels_of_one_behaviour_cannot_train(clip, labels):
    """B-tr-oneclass: scikit-learn's traceback before."""
    one = BehaviourLabels(["walk"])
    one.label(labels.videos()[0], "walk", 0, 99)
    with pytest.raises(BehaviourError, match=r"only one behaviour \(walk\); a classifier needs"):
        train_classifier([clip], one)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a.mp4,walk,0.9,299.7", r"line 3: walk frames 0\.9-299\.7 of a\.mp4 are no interval"),
        ("a.mp4,walk,0,1e13", r"line 3: walk frames 0-10000000000000\.0 of a\.mp4 are no"),
        ("a.mp4,walk,five,9", r"line 3: walk frames five-9 of a\.mp4 are no interval"),
        (",walk,0,9", "line 3 has no video; fill it in"),
        ("a.mp4, ,0,9", "line 3 has no behaviour; fill it in"),
    ],
)
def test_rows_that_are_no_interval_are_refused_naming_their_line(tmp_path, row, message):
    """B-tr-float_frames (truncated silently), B-tr-huge_end, B-tr-empty_video (tracebacks)."""
    path = tmp_path / "intervals.csv"
    path.write_text(f"video,behaviour,start_frame,end_frame\na.mp4,rest,0,20\n{row}\n")
    with pytest.raises(BehaviourError, match=message):
        read_labels(path)


def test_a_frame_number_is_never_a_size(clip, labels):
    """B-tr-huge_end within the file's range: labelling allocates nothing per frame, and
    training names the interval that lies beyond the video."""
    video = labels.videos()[0]
    far = BehaviourLabels(labels.names, list(labels.intervals))
    far.label(video, "rest", 2**31 - 100, 2**31 - 1)
    assert far.frame_counts()["rest"] == labels.frame_counts()["rest"] + 100
    with pytest.raises(BehaviourError, match=r"rest frames 2147483548-2147483647 .* lie outside"):
        train_classifier([clip], far)


def test_a_frame_table_row_without_a_video_is_refused(tmp_path):
    path = tmp_path / "frames.csv"
    path.write_text("video,frame,walk,rest\na.mp4,0,1,0\n,1,0,1\n")
    with pytest.raises(BehaviourError, match="line 3 has no video"):
        read_labels(path)
