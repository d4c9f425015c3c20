import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from bkind_model.behaviour import BehaviourError
from bkind_model.behaviour.motifs import MotifSettings, find_motifs
from bkind_model.behaviour.synthetic import ground_truth_labels, ground_truth_result


def test_motifs_follow_the_behaviour_states(samples):
    results = [ground_truth_result(v) for v in samples]
    reports = []
    ethograms = find_motifs(
        results, MotifSettings(n_motifs=5, iterations=20), progress=lambda *a: reports.append(a)
    )
    assert [e.video for e in ethograms] == [v.name for v in samples]
    assert reports and reports[-1][0] <= reports[-1][1]
    codes = np.concatenate([e.codes for e in ethograms])
    truth = np.concatenate(
        [
            ground_truth_labels(v).codes(v.name, r.n_frames)
            for v, r in zip(samples, results, strict=True)
        ]
    )
    counts = np.bincount(codes, minlength=5)
    assert (np.diff(counts) <= 0).all()  # motif 1 is the most frequent
    assert ethograms[0].names[0] == "motif 1"
    np.testing.assert_allclose(ethograms[0].probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert adjusted_rand_score(truth, codes) > 0.2
    bouts = np.flatnonzero(np.diff(codes)).size
    assert bouts < len(codes) / 10  # sticky: bouts of frames, not flicker


def test_too_few_frames_for_the_motifs(samples):
    result = ground_truth_result(samples[0])
    short = type(result)(
        result.keypoints[:30], result.confidence[:30], result.covariance[:30], result.metadata
    )
    with pytest.raises(BehaviourError, match="30 frames with keypoints are too few for 8 motifs"):
        find_motifs([short])
    with pytest.raises(BehaviourError, match="n_motifs must be 2-50"):
        MotifSettings(n_motifs=1)
