"""Behaviour motifs without labels: a sticky hidden Markov model on egocentric features.

The field's reference for unsupervised motifs is keypoint-MoSeq (an autoregressive HMM
fitted by Gibbs sampling in JAX). It was tried first (``pip install keypoint-moseq``): it
pulls in about 150 packages (jax, jaxlib, panel, bokeh, ...) and the install alone did not
finish in the five minutes allowed, before any fitting on a CPU; so it is not used. This
module is a light stand-in in the same spirit, an "AR-HMM-lite":

1. every frame's egocentric features (:func:`~bkind_model.behaviour.features.frame_features`:
   pose in the body frame, its velocities, the centre's velocity, the heading's rate,
   distances, and the heatmaps' confidence and spread) with their mean and spread over a
   window (a second: oscillations such as grooming strokes become a state, not a flicker
   between two; on the benchmark's discovered keypoints a second matched the states
   better than a quarter second, 0.38 macro F1 against 0.32),
2. standardised and reduced by PCA to a few components (most of the variance),
3. a Gaussian HMM (hmmlearn) with one state per motif and *sticky* transitions: started
   with a strong diagonal and given a Dirichlet prior towards staying, as keypoint-MoSeq's
   stickiness ``kappa`` does, so motifs last for bouts of frames instead of flickering;
   the velocities in the features carry the dynamics an autoregressive model would.

Each frame's motif is the Viterbi path; its probabilities are the posteriors. Motifs are
numbered by how often they occur ("motif 1" the most frequent) and can be renamed.
Unknown frames (keypoints missing, :func:`~bkind_model.behaviour.features.known_frames`)
take no part in the fit and get no motif (-1, probabilities NaN); the runs of known
frames between them are separate sequences of the HMM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from hmmlearn.hmm import GaussianHMM
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from bkind_model.behaviour import BehaviourError
from bkind_model.behaviour.ethogram import Ethogram
from bkind_model.behaviour.features import known_frames, result_features, shape_of
from bkind_model.behaviour.labels import video_key
from bkind_model.io.results import KeypointResult

Progress = Callable[[int, int, str], None]
#: EM iterations between two progress reports (and chances to cancel).
ITERATIONS_PER_REPORT = 5


@dataclass(frozen=True)
class MotifSettings:
    """How motifs are found.

    Attributes
    ----------
    n_motifs : int
        Number of motifs (hidden states).
    window_s : float
        Window of the features' mean and spread, seconds.
    n_components : int
        Principal components of the standardised features the HMM sees.
    stickiness : float
        Prior expected fraction of frames that stay in their motif (0.5-1): the
        diagonal of the starting transition matrix and of the Dirichlet prior's mean.
    prior_frames : float
        Weight of that prior, in frames per motif (larger: stickier bouts).
    iterations : int
        Most EM iterations.
    heatmap_shape : bool
        Whether the features include the heatmaps' confidence and spread.
    """

    n_motifs: int = 8
    window_s: float = 1.0
    n_components: int = 20
    stickiness: float = 0.97
    prior_frames: float = 300.0
    iterations: int = 50
    heatmap_shape: bool = True

    def __post_init__(self) -> None:
        if not (
            2 <= self.n_motifs <= 50
            and self.window_s > 0
            and self.n_components >= 1
            and 0.5 <= self.stickiness < 1
            and self.prior_frames >= 0
            and self.iterations >= 1
        ):
            raise BehaviourError(
                f"motif settings {self}: n_motifs must be 2-50, window_s > 0, n_components "
                ">= 1, stickiness in 0.5-1, prior_frames >= 0 and iterations >= 1; fix them."
            )


def motif_features(
    results: Sequence[KeypointResult], window_s: float, heatmap_shape: bool
) -> list[np.ndarray]:
    """Per-frame features of each video for motifs: ``(T_i, 5F)`` float32 each.

    One body-frame reference for all videos (:func:`shape_of`), so the same pose
    gives the same features everywhere; with ``heatmap_shape`` the heatmaps' confidence
    and spread too (:func:`~bkind_model.behaviour.features.result_features`).
    """
    shape = shape_of(results)
    return [result_features(r, window_s, shape, heatmap_shape)[0] for r in results]


def known_runs(known: np.ndarray) -> list[int]:
    """Lengths of the runs of consecutive True in a ``(T,)`` bool mask, in order."""
    edges = np.flatnonzero(np.diff(np.r_[0, known.astype(np.int8), 0]))
    return [int(n) for n in edges[1::2] - edges[::2]]


def _sticky_hmm(settings: MotifSettings, seed: int) -> GaussianHMM:
    """An untrained Gaussian HMM whose transitions start and are pulled towards staying."""
    k = settings.n_motifs
    leave = (1 - settings.stickiness) / (k - 1)
    transmat = np.full((k, k), leave) + np.eye(k) * (settings.stickiness - leave)
    hmm = GaussianHMM(
        n_components=k,
        covariance_type="full",
        n_iter=ITERATIONS_PER_REPORT,
        tol=1e-3,
        random_state=seed,
        init_params="smc",
        transmat_prior=1.0 + settings.prior_frames * transmat,
    )
    hmm.transmat_ = transmat
    return hmm


def find_motifs(
    results: Sequence[KeypointResult],
    settings: MotifSettings | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[Ethogram]:
    """Segment the keypoint trajectories of one or more videos into recurring motifs.

    Parameters
    ----------
    results : sequence of KeypointResult
        Keypoints ``(T_i, K, 2)`` of each video, px (the same keypoints in each).
    settings : MotifSettings, optional
        Number of motifs, window, stickiness ... (the defaults when None).
    seed : int
        Seed of the model's initialisation (k-means of the means).
    progress : callable, optional
        ``progress(done, total, message)`` every few EM iterations; raising there
        stops the fit.

    Returns
    -------
    list of Ethogram
        One per video: motif posteriors ``(T_i, n_motifs)`` and each frame's motif
        (Viterbi), named ``motif 1`` (the most frequent) to ``motif n``.

    Raises
    ------
    BehaviourError
        With no results, keypoints that differ between videos, a video without a frame
        with keypoints, fewer known frames than ten per motif, or a window longer than
        a video.
    """
    settings = settings or MotifSettings()
    if not results:
        raise BehaviourError("find motifs: no results given; give results files.")
    names = results[0].keypoint_names
    for result in results:
        if result.keypoint_names != names:
            raise BehaviourError(
                f"{result.path or video_key(result)}: keypoints differ from "
                f"{results[0].path or video_key(results[0])}'s; find motifs in videos with "
                "the same keypoints."
            )
    known_each = [known_frames(r) for r in results]
    known = np.concatenate(known_each)
    if known.sum() < 10 * settings.n_motifs:
        raise BehaviourError(
            f"{results[0].path or video_key(results[0])}: {known.sum()} frames with keypoints "
            f"are too few for {settings.n_motifs} motifs; give at least "
            f"{10 * settings.n_motifs} frames or ask for fewer motifs."
        )
    features = np.concatenate(motif_features(results, settings.window_s, settings.heatmap_shape))
    # Each run of known frames is a sequence of its own (never across videos or gaps).
    lengths = [n for video_known in known_each for n in known_runs(video_known)]
    scaled = StandardScaler().fit_transform(features[known])
    n_components = min(settings.n_components, scaled.shape[1], len(scaled) - 1)
    reduced = PCA(n_components, random_state=seed).fit_transform(scaled)
    hmm = _sticky_hmm(settings, seed)
    rounds = -(-settings.iterations // ITERATIONS_PER_REPORT)
    for done in range(rounds):
        hmm.fit(reduced, lengths)
        hmm.init_params = ""  # the next rounds continue from here
        if progress is not None:
            progress(done + 1, rounds, "fitting motifs")
        if hmm.monitor_.converged:
            break
    found = hmm.predict(reduced, lengths)
    order = np.argsort(-np.bincount(found, minlength=settings.n_motifs), kind="stable")
    codes = np.full(len(known), -1, np.int16)
    codes[known] = np.argsort(order)[found]
    posteriors = np.full((len(known), settings.n_motifs), np.nan)
    posteriors[known] = hmm.predict_proba(reduced, lengths)[:, order]
    motif_names = [f"motif {i + 1}" for i in range(settings.n_motifs)]
    ethograms = []
    starts = np.cumsum([0] + [r.n_frames for r in results[:-1]])
    for result, start in zip(results, starts, strict=True):
        part = slice(int(start), int(start) + result.n_frames)
        ethograms.append(
            Ethogram(
                video_key(result),
                motif_names,
                posteriors[part].astype(np.float32),
                codes[part].astype(np.int16),
            )
        )
    return ethograms
