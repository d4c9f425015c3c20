"""Behaviour from keypoints: ethograms from a few labelled intervals, motifs without labels.

``features`` turns keypoints (discovered or named, NaN where missing) into per-frame
egocentric features summarised over a window of frames; ``labels`` holds behaviour names
and labelled intervals and reads and writes them (intervals CSV, frame x behaviour CSV);
``ethogram`` is what a classifier or the motif finder gives per frame (probabilities,
codes) and its CSV; ``classifier`` trains a temporal classifier on labelled frames and
predicts ethograms; ``motifs`` segments keypoint trajectories into recurring motifs with
a sticky hidden Markov model, without any label.
"""

from bkind_model.errors import BKindError


class BehaviourError(BKindError):
    """Labels, a behaviour model or an ethogram cannot be used: the message says why and how."""
