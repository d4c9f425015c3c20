"""Synthetic lab videos of articulated animals seen from above, with exact ground truth.

A mouse-like animal (13 named joints) walks, turns, rears, grooms and rests in a textured
open-field arena, optionally with a cast shadow, sensor noise and lighting flicker. Every
frame comes with the joints, the behaviour and masks of the animals and their shadows, so
keypoint discovery can be tested without labelled data.

Examples
--------
>>> from bkind_model.synthetic import SyntheticConfig, generate
>>> video = generate(SyntheticConfig(n_frames=30, shadow=True))
>>> video.frames.shape, video.joints.shape
((30, 256, 256, 3), (30, 1, 13, 2))
"""

from bkind_model.synthetic.generator import (
    SyntheticChunk,
    SyntheticConfig,
    SyntheticVideo,
    generate,
    iter_frames,
)
from bkind_model.synthetic.motion import BEHAVIOUR_NAMES
from bkind_model.synthetic.sample import (
    ground_truth_path,
    load_ground_truth,
    save_ground_truth,
    write_sample,
)
from bkind_model.synthetic.skeleton import BONES, JOINT_NAMES

__all__ = [
    "BEHAVIOUR_NAMES",
    "BONES",
    "JOINT_NAMES",
    "SyntheticChunk",
    "SyntheticConfig",
    "SyntheticVideo",
    "generate",
    "ground_truth_path",
    "iter_frames",
    "load_ground_truth",
    "save_ground_truth",
    "write_sample",
]
