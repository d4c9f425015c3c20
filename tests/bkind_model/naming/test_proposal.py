from dataclasses import replace

import numpy as np
import pytest

from bkind_model.errors import ConfigError
from bkind_model.frames.sampling import evenly_spaced
from bkind_model.io.results import KeypointResult
from bkind_model.naming.features import body_features
from bkind_model.naming.proposal import CANDIDATES_PER_FRAME, propose_frames


def _worst_gap(x, chosen):
    """Largest distance of any frame's pose to the nearest chosen pose."""
    distance = np.linalg.norm(x[:, None] - x[None, chosen], axis=-1)
    return distance.min(axis=1).max()


def test_proposed_frames_cover_the_poses_better_than_even_spacing(sample):
    result = KeypointResult.load(sample.results)
    frames = propose_frames(result, 12)
    assert len(frames) == 12 and len(np.unique(frames)) == 12
    assert frames.min() >= 0 and frames.max() < result.n_frames
    _, x = body_features(sample.joints)  # the true poses, in the body frame
    assert _worst_gap(x, frames) < _worst_gap(x, evenly_spaced(result.n_frames, 12))


def test_same_seed_same_frames_and_labelled_frames_are_not_proposed_again(sample):
    result = KeypointResult.load(sample.results)
    first = propose_frames(result, 8)
    np.testing.assert_array_equal(first, propose_frames(result, 8))
    more = propose_frames(result, 8, exclude=first)
    assert not np.isin(more, first).any()


def test_bad_requests(sample):
    result = KeypointResult.load(sample.results)
    with pytest.raises(ConfigError, match="at least 1"):
        propose_frames(result, 0)
    with pytest.raises(ConfigError, match="no frame left"):
        propose_frames(result, 5, exclude=np.arange(result.n_frames))


def test_damaged_keypoints_are_never_proposed(sample):
    """P-inf: one inf keypoint stopped propose ("SVD did not converge")."""
    result = KeypointResult.load(sample.results)
    bad = evenly_spaced(result.n_frames, CANDIDATES_PER_FRAME * 6)[[3, 10]]
    keypoints = result.keypoints.copy()
    keypoints[bad[0], 1, 0] = np.inf
    keypoints[bad[1], 2, 1] = -1e30
    frames = propose_frames(replace(result, keypoints=keypoints), 6)
    assert len(frames) == 6 and not np.isin(frames, bad).any()


def test_keypoints_without_a_usable_frame_are_one_error(sample):
    """P-zero: a reshape traceback before."""
    result = KeypointResult.load(sample.results)
    empty = replace(
        result,
        keypoints=result.keypoints[:0],
        confidence=result.confidence[:0],
        covariance=result.covariance[:0],
    )
    with pytest.raises(ConfigError, match="none of its 0 frames has every keypoint found"):
        propose_frames(empty, 3)
    missing = replace(result, keypoints=np.full_like(result.keypoints, np.nan))
    with pytest.raises(ConfigError, match=f"none of its {result.n_frames} frames has every"):
        propose_frames(missing, 3)
