import pickle
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import f1_score

from bkind_model.behaviour import BehaviourError, classifier
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
    path = trained.save(tmp_path / "model.skops")
    with pytest.raises(ExistingFileError):
        trained.save(path)
    loaded = BehaviourClassifier.load(path)
    result = ground_truth_result(samples[1])
    np.testing.assert_array_equal(loaded.probabilities(result), trained.probabilities(result))
    assert (loaded.names, loaded.settings, loaded.trained_on) == (
        trained.names, trained.settings, trained.trained_on,
    )  # fmt: skip
    (tmp_path / "junk.skops").write_bytes(b"not a model")
    with pytest.raises(BehaviourError, match=r"junk.skops: cannot read as a behaviour model"):
        BehaviourClassifier.load(tmp_path / "junk.skops")


def test_a_gradient_boosting_model_is_stored_without_pickle(samples, tmp_path, monkeypatch):
    result = ground_truth_result(samples[0])
    truth = ground_truth_labels(samples[0])
    labels = BehaviourLabels(truth.names)  # 15 frames of each behaviour: a quick fit
    for code, name in enumerate(truth.names):
        for frame in np.flatnonzero(truth.codes(samples[0].name, result.n_frames) == code)[:15]:
            labels.label(samples[0].name, name, int(frame), int(frame))
    real = classifier._estimator

    def few_trees(settings, seed):  # the real estimator, 2 small trees instead of 150
        return real(settings, seed).set_params(max_iter=2, max_leaf_nodes=4)

    monkeypatch.setattr(classifier, "_estimator", few_trees)
    model = train_classifier([result], labels, ClassifierSettings(estimator="boosting"))
    path = model.save(tmp_path / "boosting.skops")
    assert zipfile.is_zipfile(path)
    loaded = BehaviourClassifier.load(path)
    assert isinstance(loaded.estimator, HistGradientBoostingClassifier)
    held_out = ground_truth_result(samples[1])
    np.testing.assert_array_equal(loaded.probabilities(held_out), model.probabilities(held_out))


class _Payload:
    """Unpickled, it writes the file ``marker``: code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_pickles_and_foreign_types_are_refused_unread(trained, tmp_path):
    marker = tmp_path / "code-ran"
    old = tmp_path / "behaviour.pkl"  # a model as saved before skops, with a payload
    old.write_bytes(pickle.dumps({"format": "bkind-behaviour-1", "model": _Payload(marker)}))
    with pytest.raises(BehaviourError) as refused:
        BehaviourClassifier.load(old)
    message = str(refused.value)
    assert message.startswith(f"{old}: a pickle") and "\n" not in message
    assert "`bkind behaviour train RESULTS --labels LABELS --out model.skops`" in message

    foreign = tmp_path / "foreign.skops"
    skops.io.dump({"format": "bkind-behaviour-2", "model": _Payload(marker)}, foreign)
    with pytest.raises(BehaviourError, match=r"foreign\.skops: holds types .*_Payload"):
        BehaviourClassifier.load(foreign)
    assert not marker.exists()


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
