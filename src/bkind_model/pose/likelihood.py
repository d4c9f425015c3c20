"""What a discovered keypoint's likelihood means, and how it is calibrated per video.

A heatmap's sharpness alone says little: a network can be sure of a point on the
background. The likelihood written to DeepLabCut, SLEAP, NWB and movement files is
therefore a calibrated probability of a stated event:

    **likelihood = P(the keypoint is stable)**, where *stable* means that, in the
    animal's body frame (:mod:`bkind_model.pose.body_frame`), the keypoint lies within
    ``STABLE_FRACTION`` (10%) of the animal's length of where its neighbouring frames
    (``NEIGHBOURS`` on each side) put it, and within ``DRIFT_LIMIT`` (one length) of its
    usual place on the body; and, where extraction could tell the animal from the
    background, it lies on the animal's foreground blob.

A keypoint that jumps, flickers between body parts, sits on the background while the
animal moves, or follows the animal at a distance off its body is not. Stability is measured on every frame of the video, then a
logistic regression learns it from what is known of each point *without* its neighbours:
the heatmap's confidence and spread, how far the point is from its usual place on the
body, and which keypoint it is. Its output is the probability, calibrated on this video
(:func:`calibration_report` measures how well on held-out frames). So the field's usual
cut-off of 0.6 drops points that are more likely than not to be off.

The animal's length here is twice the root-mean-square radius of the discovered keypoints'
reference shape (weighted by their rigidity), px. Frames are taken as consecutive; on fewer than ``MIN_FRAMES``
frames (a folder of unrelated labelled images) there are no neighbours, and the
likelihood falls back to the heatmap's peak probability.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from bkind_model.pose.body_frame import body_frame

#: Frames on each side whose median position predicts a keypoint.
NEIGHBOURS = 2
#: Share of the animal's length within which a keypoint counts as stable.
STABLE_FRACTION = 0.1
#: Animal lengths from its usual place on the body beyond which a keypoint is not stable.
DRIFT_LIMIT = 1.0
#: Below this share of keypoints on the foreground, the foreground does not tell the
#: animal apart (a head-fixed animal is part of the median background) and is not used.
MIN_ON_ANIMAL = 0.5
#: Fewer frames than this: no calibration, the heatmap's peak probability instead.
MIN_FRAMES = 30
#: What the likelihood means, stored with it (``likelihood_meaning`` of results files).
LIKELIHOOD_MEANING = (
    "probability that the keypoint is stable: within 10% of the animal's length of where "
    "its 2 neighbouring frames on each side put it in the animal's body frame, and within "
    "one length of its usual place on the body, and on the animal's foreground where the "
    "background tells it apart; calibrated "
    "per video by logistic regression on heatmap confidence, spread, drift from its usual "
    "place on the body and keypoint identity (bkind_model.pose.likelihood)"
)
#: Points used to fit the calibration (a random subset of longer videos).
MAX_FIT_POINTS = 40_000


@dataclass(frozen=True)
class Stability:
    """How stable every keypoint is, the quantity the likelihood predicts.

    Attributes
    ----------
    stable : ndarray
        ``(T, K)`` bool, the event of the module docstring (NaN jitter or drift: False).
    jitter : ndarray
        ``(T, K)`` distance to the neighbours' median in the body frame, px.
    drift : ndarray
        ``(T, K)`` distance from the keypoint's median place on the body, in animal
        lengths.
    length : float
        The animal's length, px.
    """

    stable: np.ndarray
    jitter: np.ndarray
    drift: np.ndarray
    length: float


def stability(
    keypoints: np.ndarray, confidence: np.ndarray | None = None, neighbours: int = NEIGHBOURS
) -> Stability:
    """Measure each keypoint's stability against its neighbouring frames.

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` px, consecutive frames; NaN where missing.
    confidence : ndarray, optional
        ``(T, K)`` weights of the body-frame fit.
    neighbours : int
        Frames on each side.

    Returns
    -------
    Stability
    """
    frame = body_frame(keypoints, confidence)
    body = frame.to_body(np.asarray(keypoints, np.float64))
    n = len(body)
    offsets = np.r_[-neighbours:0, 1 : neighbours + 1]
    index = np.clip(np.arange(n)[:, None] + offsets[None], 0, n - 1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN keypoints: NaN
        predicted = np.nanmedian(body[index], axis=1)  # (T, K, 2)
        jitter = np.linalg.norm(body - predicted, axis=-1)
        w = frame.rigidity / max(float(frame.rigidity.sum()), 1e-12)
        length = 2.0 * float(np.sqrt(np.sum(w * np.sum(frame.reference**2, axis=1))))
        length = max(length, 1e-6)
        drift = np.linalg.norm(body - np.nanmedian(body, axis=0), axis=-1) / length
    stable = (jitter < STABLE_FRACTION * length) & (drift < DRIFT_LIMIT)
    return Stability(stable=stable, jitter=jitter, drift=drift, length=length)


def _features(confidence: np.ndarray, covariance: np.ndarray, drift: np.ndarray) -> np.ndarray:
    """``(T*K, 3 + K)`` regressors: log confidence, log spread, drift, keypoint one-hot."""
    n, k = confidence.shape
    with np.errstate(all="ignore"):
        spread = 0.25 * np.log(np.clip(np.linalg.det(covariance), 1e-12, None))  # log px
        sharp = np.log(np.clip(confidence, 1e-6, None))
    one_hot = np.broadcast_to(np.eye(k), (n, k, k))
    columns = [sharp[..., None], spread[..., None], np.nan_to_num(drift, nan=10.0)[..., None]]
    return np.concatenate([*columns, one_hot], axis=-1).reshape(n * k, -1)


def peak_probability(confidence: np.ndarray, n_cells: int | None) -> np.ndarray:
    """The softmaxed heatmap's peak, ``confidence / n_cells``, in [0, 1].

    ``confidence`` is the peak relative to a uniform heatmap of ``n_cells`` cells; without
    ``n_cells`` the largest possible peak is unknown and ``1 - 1 / confidence`` (0 for a
    uniform heatmap) stands in.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if n_cells:
            return np.clip(confidence / n_cells, 0.0, 1.0)
        return np.clip(1.0 - 1.0 / confidence, 0.0, 1.0)


def calibrated_likelihood(
    keypoints: np.ndarray,
    confidence: np.ndarray,
    covariance: np.ndarray,
    n_cells: int | None = None,
    seed: int = 0,
    on_animal: np.ndarray | None = None,
) -> np.ndarray:
    """The likelihood of every keypoint: P(stable), calibrated on this video.

    Parameters
    ----------
    keypoints : ndarray
        ``(T, K, 2)`` px of consecutive frames; NaN where missing.
    confidence : ndarray
        ``(T, K)`` heatmap confidence (1 = uniform); NaN for points placed by hand.
    covariance : ndarray
        ``(T, K, 2, 2)`` px^2.
    n_cells : int, optional
        Cells of the heatmap (for the fallback on short sequences).
    seed : int
        Seed of the subset the calibration is fitted on.
    on_animal : ndarray, optional
        ``(T, K)`` bool, the keypoint lay on the animal's foreground (extraction); part of
        the event when at least :data:`MIN_ON_ANIMAL` of the points are.

    Returns
    -------
    ndarray
        ``(T, K)`` float64 in [0, 1]; 1 for points placed by hand (finite position, no
        confidence), NaN for missing points.
    """
    confidence = np.asarray(confidence, np.float64)
    finite = np.isfinite(keypoints).all(axis=-1)
    by_hand = finite & np.isnan(confidence)
    n, k = confidence.shape
    if n < MIN_FRAMES:
        values = peak_probability(confidence, n_cells)
    else:
        measured = stability(keypoints, np.where(by_hand, 1.0, confidence))
        features = _features(confidence, np.asarray(covariance, np.float64), measured.drift)
        usable = np.flatnonzero(
            (finite & ~by_hand).reshape(-1) & np.isfinite(features).all(axis=1)
        )
        values = np.full(n * k, np.nan)
        target = _event(measured, on_animal, finite).reshape(-1)
        values[usable] = _fit_predict(features, target, usable, usable, seed)
        values = values.reshape(n, k)
    values = np.where(by_hand, 1.0, values)
    return np.where(finite, values, np.nan)


def _event(measured: Stability, on_animal: np.ndarray | None, finite: np.ndarray) -> np.ndarray:
    """``(T, K)`` bool: stable, and on the animal when the foreground tells it apart."""
    if on_animal is None:
        return measured.stable
    on = np.asarray(on_animal, bool)
    if not finite.any() or on[finite].mean() < MIN_ON_ANIMAL:
        return measured.stable
    return measured.stable & on


def _fit_predict(
    features: np.ndarray, target: np.ndarray, train: np.ndarray, predict: np.ndarray, seed: int
) -> np.ndarray:
    """Logistic regression of ``target`` on standardised ``features``.

    Fitted on the rows ``train`` (at most :data:`MAX_FIT_POINTS` of them, at random) and
    evaluated on the rows ``predict``; a constant when ``train`` holds only one class.
    """
    from sklearn.linear_model import LogisticRegression

    if len(train) > MAX_FIT_POINTS:
        train = np.random.default_rng(seed).choice(train, MAX_FIT_POINTS, replace=False)
    if len(train) == 0:
        return np.full(len(predict), np.nan)
    if len(np.unique(target[train])) < 2:  # all stable or none: nothing to learn
        return np.full(len(predict), float(target[train].mean()))
    mean = features[train].mean(axis=0)
    scale = features[train].std(axis=0) + 1e-9
    model = LogisticRegression(C=1.0, max_iter=500)
    model.fit((features[train] - mean) / scale, target[train])
    return model.predict_proba((features[predict] - mean) / scale)[:, 1]


@dataclass(frozen=True)
class CalibrationReport:
    """How well the likelihood predicts stability on frames it was not fitted on.

    Attributes
    ----------
    expected_calibration_error : float
        Mean |predicted - observed| share of stable points over 10 likelihood bins,
        weighted by the bins' sizes (0 = perfectly calibrated).
    auc : float
        Area under the ROC curve of likelihood against stability.
    stable_share : float
        Share of points where the event happened (stable, and on the animal).
    below_cutoff : list of float
        Per keypoint, the share of points with likelihood < 0.6.
    """

    expected_calibration_error: float
    auc: float
    stable_share: float
    below_cutoff: list[float]

    def to_dict(self) -> dict:
        """JSON-ready figures."""
        return {
            "expected_calibration_error": round(self.expected_calibration_error, 4),
            "auc": round(self.auc, 4),
            "stable_share": round(self.stable_share, 4),
            "below_0.6": [round(v, 4) for v in self.below_cutoff],
        }


def calibration_report(
    keypoints: np.ndarray,
    confidence: np.ndarray,
    covariance: np.ndarray,
    on_animal: np.ndarray | None = None,
) -> CalibrationReport:
    """Fit the likelihood on the first half of the frames and test it on the second.

    Parameters
    ----------
    keypoints, confidence, covariance, on_animal : ndarray
        As for :func:`calibrated_likelihood`, ``T >= 2 * MIN_FRAMES``.

    Returns
    -------
    CalibrationReport
    """
    from sklearn.metrics import roc_auc_score

    n, k = confidence.shape
    half = n // 2
    measured = stability(keypoints, confidence)
    features = _features(confidence, covariance, measured.drift)
    usable = np.isfinite(features).all(axis=1).reshape(n, k)
    rows = np.arange(n * k).reshape(n, k)
    train, test = rows[:half][usable[:half]], rows[half:][usable[half:]]
    finite = np.isfinite(keypoints).all(axis=-1)
    target = _event(measured, on_animal, finite).reshape(-1)
    likelihood = _fit_predict(features, target, train, test, seed=0)
    stable = target[test]
    bins = np.clip((likelihood * 10).astype(int), 0, 9)
    ece = sum(
        abs(likelihood[bins == b].mean() - stable[bins == b].mean()) * (bins == b).mean()
        for b in range(10)
        if (bins == b).any()
    )
    auc = roc_auc_score(stable, likelihood) if len(np.unique(stable)) > 1 else float("nan")
    full = calibrated_likelihood(keypoints, confidence, covariance, on_animal=on_animal)
    below = [float(np.mean(full[:, j] < 0.6)) for j in range(full.shape[1])]
    return CalibrationReport(float(ece), float(auc), float(stable.mean()), below)
