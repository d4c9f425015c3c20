"""Tests of the synthetic video generator and its ground truth."""

from __future__ import annotations

import dataclasses

import imageio_ffmpeg
import numpy as np
import pytest
from scipy import ndimage

from bkind_model.synthetic import (
    BEHAVIOUR_NAMES,
    BONES,
    JOINT_NAMES,
    SyntheticConfig,
    generate,
    ground_truth_path,
    iter_frames,
    load_ground_truth,
    write_sample,
)
from bkind_model.synthetic.skeleton import (
    HIP,
    LEFT_EAR,
    NECK,
    RIGHT_EAR,
    SNOUT,
    SPINE_MID,
    TAIL_BASE,
    Pose,
    joints_from_pose,
)

# A rectangular 20 s clip; this seed shows all five behaviours.
CLIP = SyntheticConfig(height=128, width=160, n_frames=600, seed=2, shadow=True)


@pytest.fixture(scope="module")
def clip():
    return generate(CLIP)


@pytest.fixture(scope="module")
def pair():
    return generate(dataclasses.replace(CLIP, n_animals=2, n_frames=300, seed=0))


def _pixel(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the pixels whose centres are nearest to points ``(..., 2)``."""
    return np.rint(xy[..., 1]).astype(int), np.rint(xy[..., 0]).astype(int)


def test_shapes_and_dtypes(clip):
    t, h, w = CLIP.n_frames, CLIP.height, CLIP.width
    assert clip.frames.shape == (t, h, w, 3) and clip.frames.dtype == np.uint8
    assert clip.joints.shape == (t, 1, len(JOINT_NAMES), 2) and clip.joints.dtype == np.float32
    assert clip.behaviour.shape == (t, 1) and clip.behaviour.dtype == np.int8
    assert clip.animal_labels.shape == (t, h, w) and clip.animal_labels.dtype == np.uint8
    assert clip.animal_mask.shape == (t, h, w) and clip.animal_mask.dtype == bool
    assert clip.shadow_mask.shape == (t, h, w) and clip.shadow_mask.dtype == bool
    assert clip.background.shape == (h, w, 3) and clip.background.dtype == np.uint8
    assert len(JOINT_NAMES) == 13 and clip.joint_names == JOINT_NAMES
    assert clip.bones == BONES and all(0 <= j < 13 for bone in BONES for j in bone)
    assert clip.behaviour_names == BEHAVIOUR_NAMES and clip.fps == CLIP.fps
    assert clip.n_frames == t and clip.config == CLIP


def test_same_seed_same_video_other_seed_other_video():
    config = SyntheticConfig(height=64, width=96, n_frames=20, seed=5, shadow=True, flicker=0.1)
    first, again = generate(config), generate(config)
    other = generate(dataclasses.replace(config, seed=6))
    for name in ("frames", "joints", "behaviour", "animal_labels", "shadow_mask", "background"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.frames, other.frames)
    assert not np.array_equal(first.joints, other.joints)
    assert not np.array_equal(first.background, other.background)


def test_chunks_equal_the_whole_video():
    config = SyntheticConfig(height=64, width=64, n_frames=23, seed=1, shadow=True)
    whole = generate(config)
    chunks = list(iter_frames(config, chunk=10))
    assert [c.start for c in chunks] == [0, 10, 20]
    for name in ("frames", "joints", "behaviour", "animal_labels", "shadow_mask"):
        joined = np.concatenate([getattr(c, name) for c in chunks])
        np.testing.assert_array_equal(joined, getattr(whole, name))
    bare = next(iter_frames(config, chunk=10, with_masks=False))
    assert bare.animal_labels is None and bare.shadow_mask is None
    np.testing.assert_array_equal(bare.frames, whole.frames[:10])
    with pytest.raises(ValueError, match="chunk"):
        iter_frames(config, chunk=0)


def test_every_joint_lies_on_its_animal(clip):
    mask = ndimage.binary_dilation(clip.animal_mask, structure=np.ones((1, 3, 3), dtype=bool))
    rows, cols = _pixel(clip.joints[:, 0])  # (T, J)
    frames = np.arange(CLIP.n_frames)[:, None]
    assert mask[frames, rows, cols].all()


def test_animal_stays_inside_the_frame(clip):
    x, y = clip.joints[..., 0], clip.joints[..., 1]
    assert x.min() >= 0 and y.min() >= 0
    assert x.max() <= CLIP.width - 1 and y.max() <= CLIP.height - 1


def test_all_behaviours_occur(clip):
    assert set(np.unique(clip.behaviour)) == set(range(len(BEHAVIOUR_NAMES)))


def test_behaviours_change_the_body_shape(clip):
    """Rearing foreshortens the body; walking moves it; resting keeps it nearly still."""
    joints, behaviour = clip.joints[:, 0], clip.behaviour[:, 0]
    spine = np.linalg.norm(joints[:, SNOUT] - joints[:, TAIL_BASE], axis=-1)
    walk, rear, rest = (behaviour == BEHAVIOUR_NAMES.index(n) for n in ("walk", "rear", "rest"))
    assert np.median(spine[rear]) < 0.8 * np.median(spine[walk])
    step = np.linalg.norm(np.diff(joints[:, SPINE_MID], axis=0), axis=-1)
    assert np.median(step[walk[1:]]) > 5 * np.median(step[rest[1:]])


def test_left_ear_is_on_the_animals_left():
    up_the_screen = Pose(x=50.0, y=50.0, heading=-np.pi / 2)
    joints = joints_from_pose(up_the_screen, length=40.0)
    assert joints[LEFT_EAR, 0] < joints[NECK, 0] < joints[RIGHT_EAR, 0]
    assert joints[SNOUT, 1] < joints[NECK, 1] < joints[HIP, 1]


def test_masks_agree_with_the_frames(clip):
    difference = np.abs(clip.frames.astype(np.int16) - clip.background).mean(axis=-1)
    assert difference[clip.animal_mask].mean() > 40
    empty = ~ndimage.binary_dilation(clip.animal_mask | clip.shadow_mask, iterations=2)
    assert difference[empty].mean() < 3  # sensor noise of sigma 2 only
    assert not (clip.animal_mask & clip.shadow_mask).any()


def test_shadow_darkens_the_floor_and_keeps_its_hue():
    config = dataclasses.replace(CLIP, n_frames=60, noise_sigma=0.0)
    video = generate(config)
    shadow = video.shadow_mask
    assert shadow.sum() > 20 * config.n_frames
    ratio = video.frames[shadow].astype(float) / video.background[np.nonzero(shadow)[1:]]
    assert ratio.mean() < 0.85
    assert np.percentile(np.ptp(ratio, axis=-1), 95) < 0.03  # R, G and B scaled alike
    no_shadow = generate(dataclasses.replace(config, shadow=False))
    assert not no_shadow.shadow_mask.any()
    np.testing.assert_array_equal(no_shadow.joints, video.joints)


def test_flicker_changes_the_brightness_over_time():
    config = SyntheticConfig(height=64, width=64, n_frames=90, noise_sigma=0.0)
    steady = generate(config).frames.mean(axis=(1, 2, 3))
    flickering = generate(dataclasses.replace(config, flicker=0.1)).frames.mean(axis=(1, 2, 3))
    assert flickering.std() > 3 * steady.std() + 1


def test_body_size_follows_animal_length():
    config = SyntheticConfig(height=192, width=192, n_frames=10)
    assert config.body_length == pytest.approx(0.2 * 192)
    small = generate(dataclasses.replace(config, animal_length=20.0)).animal_mask.sum()
    large = generate(dataclasses.replace(config, animal_length=40.0)).animal_mask.sum()
    assert 3 < large / small < 5


def test_two_animals_look_different_and_keep_apart(pair):
    config = pair.config
    assert pair.joints.shape == (config.n_frames, 2, 13, 2)
    x, y = pair.joints[..., 0], pair.joints[..., 1]
    assert x.min() >= 0 and y.min() >= 0
    assert x.max() <= config.width - 1 and y.max() <= config.height - 1
    labels = pair.animal_labels
    assert ((labels == 1).sum(axis=(1, 2)) > 0).all() and (
        (labels == 2).sum(axis=(1, 2)) > 0
    ).all()
    colour = [pair.frames[labels == k].mean(axis=0) for k in (1, 2)]
    assert np.abs(colour[0] - colour[1]).max() > 15
    axis = [SNOUT, NECK, SPINE_MID, HIP, TAIL_BASE]
    spines = pair.joints[:, :, axis]
    gap = np.linalg.norm(spines[:, 0, :, None] - spines[:, 1, None, :], axis=-1).min()
    assert gap > 0.3 * config.body_length
    mask = ndimage.binary_dilation(pair.animal_mask, structure=np.ones((1, 3, 3), dtype=bool))
    rows, cols = _pixel(pair.joints)  # (T, A, J)
    assert mask[np.arange(config.n_frames)[:, None, None], rows, cols].all()


def test_write_sample_round_trip(tmp_path):
    config = SyntheticConfig(height=96, width=128, n_frames=40, seed=4, shadow=True)
    path = tmp_path / "mouse.mp4"
    video = write_sample(path, config, chunk=16)
    assert ground_truth_path(path) == tmp_path / "mouse.groundtruth.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mouse.groundtruth.npz", "mouse.mp4"]
    np.testing.assert_array_equal(video.frames, generate(config).frames)

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert tuple(meta["size"]) == (config.width, config.height)
    decoded = np.stack(
        [np.frombuffer(f, np.uint8).reshape(config.height, config.width, 3) for f in reader]
    )
    assert len(decoded) == config.n_frames
    assert np.abs(decoded.astype(np.int16) - video.frames).mean() < 3

    loaded = load_ground_truth(path)
    assert loaded.frames is None
    for name in ("joints", "behaviour", "animal_labels", "shadow_mask", "background"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(video, name))
        assert getattr(loaded, name).dtype == getattr(video, name).dtype
    assert loaded.joint_names == JOINT_NAMES and loaded.bones == BONES
    assert loaded.behaviour_names == BEHAVIOUR_NAMES
    assert loaded.fps == config.fps and loaded.config == config


def test_write_sample_without_masks_or_frames(tmp_path):
    config = SyntheticConfig(height=64, width=64, n_frames=12)
    video = write_sample(tmp_path / "bare.mp4", config, with_masks=False, keep_frames=False)
    assert video.frames is None and video.animal_labels is None and video.animal_mask is None
    loaded = load_ground_truth(tmp_path / "bare.groundtruth.npz")
    assert loaded.animal_labels is None and loaded.shadow_mask is None
    np.testing.assert_array_equal(loaded.joints, video.joints)
    with pytest.raises(FileNotFoundError, match="write_sample"):
        load_ground_truth(tmp_path / "missing.mp4")


@pytest.mark.parametrize(
    "bad",
    [
        {"height": 16},
        {"n_frames": 0},
        {"n_animals": 0},
        {"fps": 0.0},
        {"animal_length": 200.0},
        {"shadow_gain": 1.5},
        {"noise_sigma": -1.0},
        {"flicker": 0.9},
    ],
)
def test_config_rejects_nonsense(bad):
    with pytest.raises(ValueError, match="SyntheticConfig"):
        SyntheticConfig(**bad)


def test_a_wheel_turns_behind_the_animal_and_leaves_the_ground_truth_alone():
    config = SyntheticConfig(height=96, width=96, n_frames=40, fps=250, seed=4)
    plain = generate(config, with_masks=True)
    wheel = generate(dataclasses.replace(config, wheel_hz=3.0), with_masks=True)
    np.testing.assert_array_equal(plain.joints, wheel.joints)
    corner = (slice(0, 30), slice(0, 30))
    changed = np.abs(wheel.frames.astype(int) - plain.frames).max(axis=-1) > 0
    assert changed[:, corner[0], corner[1]].mean() > 0.3  # the wheel is there
    assert not changed[:, 40:, 40:].any()  # and only there
    animal = wheel.animal_labels > 0
    np.testing.assert_array_equal(wheel.frames[animal], plain.frames[animal])  # behind it
    turning = np.abs(wheel.frames[1:].astype(int) - wheel.frames[:-1])[:, corner[0], corner[1]]
    assert turning.mean() > 5
