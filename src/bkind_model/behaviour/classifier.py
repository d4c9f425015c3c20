"""A temporal behaviour classifier: windowed keypoint features to per-frame probabilities.

Each frame is described by its egocentric features and their statistics over a window of
frames around it (:mod:`features`), so the classifier sees a second of context; a
scikit-learn estimator (a logistic regression on standardised features by default, or
histogram gradient boosting) maps them to one probability per behaviour, trained on the labelled frames
only, with classes weighted by their rarity. Probabilities are then smoothed over a few
frames and each frame gets the most probable behaviour (:mod:`ethogram`).

A model remembers the keypoints it was trained on (names, the B-KinD checkpoint that
discovered them, the body frame's reference shape), so it refuses keypoints that mean
other body parts. It is saved with skops (``.skops``, a zip of JSON and arrays), which
rebuilds only the types it is told to trust (:data:`TRUSTED_TYPES` beyond scikit-learn's
and numpy's own), so opening a model file runs no code from it; pickles, which can, are
refused.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import skops.io
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bkind_model.behaviour import BehaviourError
from bkind_model.behaviour.ethogram import Ethogram, ethogram_from_probabilities
from bkind_model.behaviour.features import BodyShape, known_frames, result_features, shape_of
from bkind_model.behaviour.labels import UNLABELLED, BehaviourLabels, video_key
from bkind_model.io.atomic import atomic_path
from bkind_model.io.outputs import check_output
from bkind_model.io.results import KeypointResult

FORMAT = "bkind-behaviour-2"
#: Types of a model file skops rebuilds beyond its defaults (scikit-learn's estimators,
#: numpy arrays, Python's plain data): the trees of gradient boosting.
TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
#: The suffix of model files (a name, not a check).
SUFFIX = ".skops"
#: Fewest labelled frames of each behaviour a model is trained with.
MIN_FRAMES = 10

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ClassifierSettings:
    """How a behaviour classifier is trained and applied.

    Attributes
    ----------
    window_s : float
        Length of the window of frames each frame's features summarise, seconds.
    smooth_s : float
        Length of the moving average over the probabilities before each frame's
        behaviour is chosen, seconds (0: none).
    threshold : float
        Smallest smoothed probability that gives a frame a behaviour (0: every frame
        gets its most probable one).
    heatmap_shape : bool
        Whether the features include each discovered keypoint's heatmap confidence and
        spread (on the synthetic benchmark's discovered keypoints 0.832 macro F1 with,
        0.819 without).
    estimator : {"logistic", "boosting"}
        A logistic regression on standardised features (the default: seconds to train,
        for labelling, training and correcting in turn) or histogram gradient boosting
        (nonlinear and more accurate, but about 50 times slower: on the synthetic
        benchmark's discovered keypoints 0.882 macro F1 against 0.832, trained in 4
        minutes against 5 seconds on two busy cores).
    """

    window_s: float = 1.0
    smooth_s: float = 0.5
    threshold: float = 0.0
    heatmap_shape: bool = True
    estimator: Literal["logistic", "boosting"] = "logistic"

    def __post_init__(self) -> None:
        if not (self.window_s > 0 and self.smooth_s >= 0 and 0 <= self.threshold <= 1):
            raise BehaviourError(
                f"classifier settings: window_s must be > 0, smooth_s >= 0 and threshold in "
                f"0-1 (got {self.window_s}, {self.smooth_s}, {self.threshold}); fix them."
            )
        if self.estimator not in ("boosting", "logistic"):
            raise BehaviourError(
                f"classifier settings: estimator {self.estimator!r} is unknown; use "
                "'boosting' or 'logistic'."
            )


def _estimator(settings: ClassifierSettings, seed: int) -> Any:
    """An untrained scikit-learn classifier of the kind ``settings`` asks for."""
    if settings.estimator == "logistic":
        return make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, max_iter=500, class_weight="balanced")
        )
    return HistGradientBoostingClassifier(
        max_iter=150, learning_rate=0.1, class_weight="balanced", random_state=seed
    )


@dataclass
class BehaviourClassifier:
    """A trained behaviour classifier and what it expects of keypoints.

    Attributes
    ----------
    names : list of str
        The behaviours, in the order of the probabilities' columns.
    settings : ClassifierSettings
        How it was trained and is applied.
    shape : BodyShape
        The body frame's reference shape of the training keypoints.
    keypoint_names : list of str
        Names of the ``K`` keypoints it was trained on.
    checkpoint_sha256 : str or None
        The B-KinD checkpoint that discovered them (None for named keypoints).
    estimator : Any
        The fitted scikit-learn classifier.
    trained_on : dict
        ``{video: labelled frames}`` of the training videos.
    """

    names: list[str]
    settings: ClassifierSettings
    shape: BodyShape
    keypoint_names: list[str]
    checkpoint_sha256: str | None
    estimator: Any
    trained_on: dict[str, int] = field(default_factory=dict)

    def check(self, result: KeypointResult) -> None:
        """Raise :class:`BehaviourError` when ``result``'s keypoints are not the model's."""
        where = result.path or video_key(result)
        if result.keypoint_names != self.keypoint_names:
            raise BehaviourError(
                f"{where}: keypoints {', '.join(result.keypoint_names)} are not the model's "
                f"({', '.join(self.keypoint_names)}); predict on results of the same "
                "keypoints, or train a model on these."
            )
        sha = _checkpoint(result)
        if (
            sha is not None
            and self.checkpoint_sha256 is not None
            and sha != self.checkpoint_sha256
        ):
            raise BehaviourError(
                f"{where}: keypoints discovered by another B-KinD checkpoint than the model's "
                "(the same names mean other body parts); extract with the model's checkpoint, "
                "or train a model on these."
            )

    def probabilities(self, result: KeypointResult) -> np.ndarray:
        """``(T, B)`` probability of each behaviour in every frame (not smoothed).

        NaN rows for unknown frames (:func:`~bkind_model.behaviour.features.known_frames`).

        Raises
        ------
        BehaviourError
            For keypoints that are not the model's, no frame with keypoints, or a
            window longer than the video.
        """
        self.check(result)
        known = known_frames(result)
        features, _ = result_features(
            result, self.settings.window_s, self.shape, self.settings.heatmap_shape
        )
        classes = np.asarray(self.estimator.classes_, dtype=int)
        out = np.full((len(features), len(self.names)), np.nan, np.float32)
        out[known] = 0.0
        out[np.ix_(known, classes)] = self.estimator.predict_proba(features[known])
        return out

    def predict(self, result: KeypointResult) -> Ethogram:
        """The ethogram of a video: smoothed probabilities and each frame's behaviour."""
        probabilities = self.probabilities(result)  # checks the frame rate first
        smooth = min(self.settings.smooth_s * result.fps, result.n_frames)
        return ethogram_from_probabilities(
            video_key(result),
            self.names,
            probabilities,
            smooth_frames=max(1, round(smooth)),
            threshold=self.settings.threshold,
        )

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the model atomically with skops; an existing file only if ``overwrite``.

        The file holds plain data (names, settings, the keypoints' names, checkpoint and
        reference shape) and the scikit-learn estimator, nothing :meth:`load` must not trust.
        """
        path = Path(path)
        check_output(path, overwrite=overwrite, option="overwrite=True (--overwrite)")
        content = {
            "format": FORMAT,
            "names": list(self.names),
            "settings": asdict(self.settings),
            "reference": np.asarray(self.shape.reference, np.float64),
            "rigidity": np.asarray(self.shape.rigidity, np.float64),
            "keypoint_names": list(self.keypoint_names),
            "checkpoint_sha256": self.checkpoint_sha256,
            "trained_on": dict(self.trained_on),
            "estimator": self.estimator,
        }
        with atomic_path(path) as tmp:
            skops.io.dump(content, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> BehaviourClassifier:
        """Read a model written by :meth:`save`.

        Raises
        ------
        BehaviourError
            For a missing, damaged or foreign file.
        """
        path = Path(path)
        retrain = (
            f"train it again (`bkind behaviour train RESULTS --labels LABELS --out model{SUFFIX}`)"
        )
        if not path.is_file():
            raise BehaviourError(
                f"{path}: behaviour model not found; train one first (`bkind behaviour train`)."
            )
        try:
            with open(path, "rb") as file:
                head = file.read(2)
            if head[:1] == b"\x80":  # pickle protocol 2 and later (behaviour-1 models)
                raise BehaviourError(
                    f"{path}: a pickle (as behaviour models were before skops); a pickle can "
                    f"run code, so it is not opened: {retrain}."
                )
            content = skops.io.load(path, trusted=TRUSTED_TYPES)
        except skops.io.exceptions.UntrustedTypesFoundException as exc:
            raise BehaviourError(
                f"{path}: holds types a behaviour model never holds "
                f"({', '.join(skops.io.get_untrusted_types(file=path))[:200]}); refused unread, "
                f"as they could run code: {retrain}."
            ) from exc
        except (
            OSError,
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
            zipfile.BadZipFile,
        ) as exc:
            raise BehaviourError(
                f"{path}: cannot read as a behaviour model ({type(exc).__name__}); {retrain}."
            ) from exc
        if not isinstance(content, dict) or content.get("format") != FORMAT:
            raise BehaviourError(
                f"{path}: not a behaviour model of this version ({FORMAT}); {retrain}."
            )
        try:
            model = cls(
                names=[str(name) for name in content["names"]],
                settings=ClassifierSettings(**content["settings"]),
                shape=BodyShape(
                    np.asarray(content["reference"], np.float64).reshape(-1, 2),
                    np.asarray(content["rigidity"], np.float64).reshape(-1),
                ),
                keypoint_names=[str(name) for name in content["keypoint_names"]],
                checkpoint_sha256=(
                    None
                    if content["checkpoint_sha256"] is None
                    else str(content["checkpoint_sha256"])
                ),
                estimator=content["estimator"],
                trained_on={str(k): int(v) for k, v in content["trained_on"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError, BehaviourError) as exc:
            raise BehaviourError(
                f"{path}: a damaged behaviour model ({type(exc).__name__}); {retrain}."
            ) from exc
        if not hasattr(model.estimator, "predict_proba") or len(model.shape.reference) != len(
            model.keypoint_names
        ):
            raise BehaviourError(
                f"{path}: a damaged behaviour model (its estimator or reference shape does not "
                f"fit its {len(model.keypoint_names)} keypoints); {retrain}."
            )
        return model


def _checkpoint(result: KeypointResult) -> str | None:
    """The checkpoint that discovered a result's keypoints; None for named keypoints."""
    if result.metadata.get("kind") == "named":
        return None
    sha = result.metadata.get("checkpoint_sha256")
    return str(sha) if sha else None


def labelled_codes(results: Sequence[KeypointResult], labels: BehaviourLabels) -> list[np.ndarray]:
    """Each result's ``(T,)`` behaviour codes from ``labels`` (-1: unlabelled), checked.

    Unknown frames (:func:`~bkind_model.behaviour.features.known_frames`: keypoints
    missing) count as unlabelled: a model never learns from them.

    Raises
    ------
    BehaviourError
        When the labels name fewer than two behaviours, a result's video has no labels
        (a results file of another video) or no frame with keypoints, an interval lies
        outside its video, a behaviour is never labelled or has fewer than
        :data:`MIN_FRAMES` labelled frames with keypoints.
    """
    if not results:
        raise BehaviourError(f"{labels.where}: no results to train on; give results files.")
    if len(labels.names) < 2:
        raise BehaviourError(
            f"{labels.where}: only one behaviour ({', '.join(labels.names) or 'none'}); a "
            "classifier needs at least two behaviours: label another one (e.g. 'other')."
        )
    videos = labels.videos()
    codes = []
    for result in results:
        video = video_key(result)
        if video not in videos:
            raise BehaviourError(
                f"{result.path or video}: its video {video} has no labels in {labels.where} "
                f"(which labels {', '.join(videos) or 'no video'}); pass the results of the "
                "labelled videos, or label this one."
            )
        video_codes = labels.codes(video, result.n_frames, result.path)
        video_codes[~known_frames(result)] = UNLABELLED
        codes.append(video_codes)
    every = np.concatenate(codes)
    counts = np.bincount(every[every != UNLABELLED], minlength=len(labels.names))
    for name, count in zip(labels.names, counts, strict=True):
        if count == 0:
            raise BehaviourError(
                f"{labels.where}: behaviour {name!r} is never labelled (on frames with "
                f"keypoints); label at least {MIN_FRAMES} frames of it, or remove it."
            )
        if count < MIN_FRAMES:
            raise BehaviourError(
                f"{labels.where}: only {count} frames are labelled {name!r} (on frames with "
                f"keypoints); label at least {MIN_FRAMES}."
            )
    return codes


def train_classifier(
    results: Sequence[KeypointResult],
    labels: BehaviourLabels,
    settings: ClassifierSettings | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> BehaviourClassifier:
    """Train a behaviour classifier on the labelled frames of one or more videos.

    Parameters
    ----------
    results : sequence of KeypointResult
        Keypoints of the labelled videos (the same keypoints in each).
    labels : BehaviourLabels
        Behaviour names and labelled intervals of those videos.
    settings : ClassifierSettings, optional
        Window, smoothing, threshold and estimator (the defaults when None).
    seed : int
        Seed of the estimator.
    progress : callable, optional
        ``progress(done, total, message)`` after each video's features and at the end.

    Returns
    -------
    BehaviourClassifier
        Ready to :meth:`~BehaviourClassifier.predict`.
    """
    settings = settings or ClassifierSettings()
    codes = labelled_codes(results, labels)
    first = results[0]
    model = BehaviourClassifier(
        names=list(labels.names),
        settings=settings,
        shape=shape_of(results),
        keypoint_names=first.keypoint_names,
        checkpoint_sha256=_checkpoint(first),
        estimator=_estimator(settings, seed),
    )
    inputs, targets = [], []
    for done, (result, video_codes) in enumerate(zip(results, codes, strict=True)):
        model.check(result)
        features, _ = result_features(
            result, settings.window_s, model.shape, settings.heatmap_shape
        )
        labelled = video_codes != UNLABELLED
        inputs.append(features[labelled])
        targets.append(video_codes[labelled])
        model.trained_on[video_key(result)] = int(labelled.sum())
        if progress is not None:
            progress(done + 1, len(results) + 1, f"features of {video_key(result)}")
    model.estimator.fit(np.concatenate(inputs), np.concatenate(targets))
    if progress is not None:
        progress(len(results) + 1, len(results) + 1, "trained")
    return model
