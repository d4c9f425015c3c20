"""The synthetic multi-camera test bed: cameras, 3D ground truth, rendering, files."""

from __future__ import annotations

import dataclasses
import itertools

import h5py
import numpy as np
import pytest
from scipy import ndimage

from bkind_model.errors import ConfigError
from bkind_model.io.video import open_video
from bkind_model.multiview.calibration import read_calibration
from bkind_model.multiview.cameras import CameraRig
from bkind_model.multiview.synthetic import (
    CAMERA_NAMES,
    GroundTruthError,
    MultiViewConfig,
    generate_multiview,
    joints_in_3d,
    load_ground_truth_3d,
    write_multiview_sample,
)
from bkind_model.synthetic import JOINT_NAMES
from bkind_model.synthetic.skeleton import (
    FORE_LEFT,
    FORE_RIGHT,
    HIND_LEFT,
    HIND_RIGHT,
    HIP,
    NECK,
    SNOUT,
    SPINE_MID,
    TAIL_BASE,
)

SMALL = MultiViewConfig(n_frames=20, image_size=(96, 128), seed=3)
BODY = [SNOUT, NECK, SPINE_MID, HIP, TAIL_BASE]


@pytest.fixture(scope="module")
def video():
    return generate_multiview(SMALL)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_multiview_sample(tmp_path_factory.mktemp("session"), SMALL)


def test_shapes_and_dtypes(video):
    v, t, j = SMALL.n_cameras, SMALL.n_frames, len(JOINT_NAMES)
    h, w = SMALL.image_size
    assert video.frames.shape == (v, t, h, w, 3) and video.frames.dtype == np.uint8
    assert video.joints3d.shape == (t, j, 3) and video.joints3d.dtype == np.float64
    assert video.joints2d.shape == (t, v, j, 2) and video.joints2d.dtype == np.float64
    assert video.animal_masks.shape == (v, t, h, w) and video.animal_masks.dtype == bool
    assert video.joint_names == JOINT_NAMES
    assert [c.name for c in video.cameras] == list(CAMERA_NAMES[:v])
    assert all(c.size == (w, h) for c in video.cameras)


def test_joints2d_are_the_projections_of_the_3d_joints(video):
    projected = CameraRig(video.cameras).project_numpy(video.joints3d)
    np.testing.assert_allclose(video.joints2d, projected.transpose(0, 2, 1, 3), atol=1e-9)


def test_cameras_differ_and_all_distortion_terms_are_used(video):
    for a, b in itertools.combinations(video.cameras, 2):
        assert not a.same_parameters(b)
        assert a.name not in b.name and b.name not in a.name
    for camera in video.cameras:
        k1, k2, p1, p2, _ = camera.distortions
        assert k1 == SMALL.distortion and k2 != 0 and p1 != 0 and p2 != 0
        centre = camera.centre
        elevation = np.degrees(np.arctan2(centre[2], np.hypot(centre[0], centre[1])))
        assert 45 <= elevation <= 60


def test_the_whole_floor_is_in_every_view(video):
    half = SMALL.arena_mm / 2
    corners = np.array([[x, y, 0.0] for x in (-half, half) for y in (-half, half)])
    pixels = CameraRig(video.cameras).project_numpy(corners)  # (4, V, 2)
    h, w = SMALL.image_size
    assert (pixels >= 0).all() and (pixels[..., 0] <= w - 1).all()
    assert (pixels[..., 1] <= h - 1).all()


def test_joints_stay_on_or_above_the_floor_inside_the_arena(video):
    joints = video.joints3d
    assert (joints[..., 2] >= 0).all()
    assert (np.abs(joints[..., :2]) <= SMALL.arena_mm / 2).all()
    paws = [FORE_LEFT, FORE_RIGHT, HIND_LEFT, HIND_RIGHT]
    assert (joints[:, paws, 2] <= 0.4 * video.body_length_mm).all()
    assert (joints[:, SPINE_MID, 2] > 0.1 * video.body_length_mm).all()


def test_the_animal_is_drawn_where_its_joints_project(video):
    h, w = SMALL.image_size
    xy = np.rint(video.joints2d).astype(int)  # (T, V, J, 2)
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)
    t, v, _ = np.indices(inside.shape)
    covered = video.animal_masks[v, t, xy[..., 1].clip(0, h - 1), xy[..., 0].clip(0, w - 1)]
    assert inside[..., BODY].all()
    assert covered[inside].mean() > 0.95
    # a dark animal on the light floor around it, a small part of the image
    masks = video.animal_masks
    near = ndimage.binary_dilation(masks, np.ones((1, 1, 3, 3)), iterations=4)
    ring = near & ~ndimage.binary_dilation(masks, np.ones((1, 1, 3, 3)), iterations=2)
    grey = video.frames.mean(-1)
    assert grey[masks].mean() < grey[ring].mean() - 40
    assert 0.002 < masks.mean() < 0.1


def test_the_same_seed_gives_the_same_videos(video):
    again = generate_multiview(SMALL)
    np.testing.assert_array_equal(again.frames, video.frames)
    np.testing.assert_array_equal(again.joints3d, video.joints3d)
    other = generate_multiview(dataclasses.replace(SMALL, seed=4))
    assert not np.allclose(other.joints3d, video.joints3d)
    assert not other.cameras[0].same_parameters(video.cameras[0])


def test_four_cameras_without_distortion(video):
    four = generate_multiview(
        dataclasses.replace(SMALL, n_cameras=4, distortion=0.0, n_frames=2, noise_sigma=0)
    )
    assert [c.name for c in four.cameras] == list(CAMERA_NAMES)
    assert all(not c.distortions.any() for c in four.cameras)
    assert four.frames.shape[0] == 4 and four.animal_masks[:, 0].any(axis=(1, 2)).all()


def test_sample_files_read_back(sample, video):
    assert [p.name for p in sample.videos] == [f"{c.name}.mp4" for c in video.cameras]
    h, w = SMALL.image_size
    for path, frames in zip(sample.videos, video.frames, strict=True):
        source = open_video(path)
        assert source.n_frames == SMALL.n_frames and source.shape[1:3] == (h, w)
        decoded = np.asarray(source.frames[5], dtype=np.float32)
        assert np.abs(decoded - frames[5]).mean() < 4  # H.264 at crf 18
    cameras = read_calibration(sample.calibration)
    assert [c.name for c in cameras] == [c.name for c in video.cameras]
    truth = load_ground_truth_3d(sample.ground_truth)
    projected = CameraRig(cameras).project_numpy(truth.joints3d).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(truth.joints2d, projected, atol=1e-6)
    np.testing.assert_array_equal(truth.joints3d, video.joints3d)
    assert truth.joint_names == JOINT_NAMES
    assert truth.camera_names == tuple(c.name for c in video.cameras)
    assert truth.fps == SMALL.fps and truth.body_length_mm == SMALL.body_length_mm
    assert load_ground_truth_3d(sample.ground_truth.parent).joints3d.shape == (20, 13, 3)


def test_a_file_that_is_no_ground_truth_is_named(tmp_path, sample):
    with pytest.raises(GroundTruthError, match="not found"):
        load_ground_truth_3d(tmp_path / "missing.h5")
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(GroundTruthError, match=r"notes\.h5"):
        load_ground_truth_3d(text)
    with pytest.raises(GroundTruthError, match="mp4: cannot be read"):
        load_ground_truth_3d(sample.videos[0])
    foreign = tmp_path / "other.h5"
    with h5py.File(foreign, "w") as f:
        f["joints3d"] = np.zeros((2, 13, 3))
    with pytest.raises(GroundTruthError, match=r"other\.h5: not a synthetic multi-view"):
        load_ground_truth_3d(foreign)


def test_config_round_trips_and_accepts_a_list_size():
    config = MultiViewConfig(image_size=[64, 96], n_cameras=4, seed=7)
    assert config.image_size == (64, 96)
    assert MultiViewConfig.from_dict(config.to_dict() | {"unknown": 1}) == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_cameras": 2}, "n_cameras must be 3 or 4"),
        ({"image_size": (97, 128)}, "even and at least 32"),
        ({"image_size": (16, 16)}, "even and at least 32"),
        ({"image_size": 128}, "image_size must be"),
        ({"n_frames": 1}, "n_frames must be at least 2"),
        ({"fps": 0}, "fps must be positive"),
        ({"arena_mm": -1}, "arena_mm must be positive"),
        ({"body_length_mm": 150}, "at most a third of arena_mm"),
        ({"distortion": 0.5}, "distortion must be between"),
        ({"noise_sigma": -1}, "noise_sigma"),
        ({"seed": -1}, "seed must be 0 or more"),
    ],
)
def test_bad_values_are_refused_clearly(changes, message):
    with pytest.raises(ConfigError, match=message):
        MultiViewConfig(**changes)


def test_rearing_raises_the_head_and_forepaws_and_the_paws_stand_still():
    floor = np.zeros((3, len(JOINT_NAMES), 2))
    floor[:, NECK, 0], floor[:, HIP, 0] = 20.0, -20.0
    lift = np.array([0.0, 0.5, 1.0])
    joints = joints_in_3d(floor, lift, np.zeros(3), 80.0, 30.0)
    z = joints[..., 2] / 80.0
    assert np.all(np.diff(z[:, [SNOUT, NECK, FORE_LEFT, FORE_RIGHT]], axis=0) > 0)
    assert z[2, SNOUT] == pytest.approx(0.55) and z[0, SNOUT] == pytest.approx(0.10)
    assert (z[:, [HIND_LEFT, HIND_RIGHT]] == 0).all() and (
        z[0, [FORE_LEFT, FORE_RIGHT]] == 0
    ).all()
    np.testing.assert_array_equal(joints[..., :2], floor)
