from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import f1_score

from bkind_model.behaviour import BehaviourError
from bkind_model.behaviour.classifier import (
    MIN_FRAMES,
    BehaviourClassifier,
    ClassifierSettings,
    train_classifier,
)
from bkind_model.behaviour.labels import BehaviourLabels
from bkind_model.behaviour.synthetic import ground_truth_labels, ground_truth_result
from bkind_model.io.outputs import ExistingFileError


@pytest.fixture(scope="module")
def trained(samples):
    """A classifier trained on the first sample's true joints and states."""
    result = ground_truth_result(samples[0])
    return train_classifier([result], ground_truth_labels(samples[0]))


def test_states_of_a_held_out_video_are_recognised(samples, trained):
    held_out = ground_truth_result(samples[1])
    ethogram = trained.predict(held_out)
    truth = ground_truth_labels(samples[1]).codes(samples[1].name, held_out.n_frames)
    assert ethogram.probabilities.shape == (held_out.n_frames, 5)
    assert ethogram.names == ["walk", "turn", "rear", "groom", "rest"]
    assert f1_score(truth, ethogram.codes, average="macro") >= 0.8


def test_a_saved_model_predicts_the_same(samples, trained, tmp_path):
    path = trained.save(tmp_path / "model.pkl")
    with pytest.raises(ExistingFileError):
        trained.save(path)
    loaded = BehaviourClassifier.load(path)
    result = ground_truth_result(samples[1])
    np.testing.assert_array_equal(loaded.probabilities(result), trained.probabilities(result))
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(BehaviourError, match=r"junk.pkl: cannot read as a behaviour model"):
        BehaviourClassifier.load(tmp_path / "junk.pkl")


def test_keypoints_of_another_kind_are_refused(samples, trained):
    result = ground_truth_result(samples[1])
    fewer = replace(
        result,
        keypoints=result.keypoints[:, :-1],
        confidence=result.confidence[:, :-1],
        metadata=result.metadata | {"keypoint_names": result.keypoint_names[:-1]},
    )
    with pytest.raises(BehaviourError, match="are not the model's"):
        trained.predict(fewer)


def test_labels_that_cannot_train_a_model_say_how_to_fix_them(samples):
    result = ground_truth_result(samples[0])
    labels = BehaviourLabels(["walk", "groom"])
    labels.label(samples[0].name, "walk", 0, 99)
    with pytest.raises(BehaviourError, match="'groom' is never labelled"):
        train_classifier([result], labels)
    labels.label(samples[0].name, "groom", 200, 200 + MIN_FRAMES - 2)
    with pytest.raises(BehaviourError, match=f"only {MIN_FRAMES - 1} frames are labelled 'groom'"):
        train_classifier([result], labels)
    labels.label(samples[0].name, "groom", 200, 300)
    with pytest.raises(
        BehaviourError, match=r"mouse12\.mp4 has no labels in labels .*mouse11\.mp4"
    ):
        train_classifier([ground_truth_result(samples[1])], labels)
    labels.label(samples[0].name, "walk", 1400, 1600)
    with pytest.raises(BehaviourError, match="lie outside its 1500 frames"):
        train_classifier([result], labels)


def test_corrected_predictions_train_again(samples, trained):
    """Predictions imported as labels, a bout corrected, retrained: the correction is learnt."""
    result = ground_truth_result(samples[1])
    predicted = trained.predict(result)
    labels = predicted.as_labels()
    truth = ground_truth_labels(samples[1]).codes(samples[1].name, result.n_frames)
    wrong = np.flatnonzero(predicted.codes != truth)
    for frame in wrong:
        labels.label(samples[1].name, labels.names[truth[frame]], int(frame), int(frame))
    retrained = train_classifier([result], labels, ClassifierSettings(smooth_s=0.0))
    again = retrained.predict(result)
    assert (again.codes != truth).sum() <= len(wrong)
    assert retrained.trained_on == {samples[1].name: result.n_frames}
