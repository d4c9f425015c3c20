"""anipose calibration.toml: round trip, a hand-written file, and every bad input named."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from bkind_model.multiview.calibration import (
    CalibrationError,
    attention_centre,
    check_cameras,
    read_calibration,
    write_calibration,
)
from bkind_model.multiview.cameras import Camera, look_at, rodrigues, rodrigues_vector

ANIPOSE_FILE = """\
# written by anipose calibrate (toml 0.10: trailing commas)
[cam_0]
name = "A"
size = [ 1280, 1024,]
matrix = [ [ 1384.91, 0.0, 639.5,], [ 0.0, 1384.91, 511.5,], [ 0.0, 0.0, 1.0,],]
distortions = [ -0.171, 0.032, 0.0, 0.0, 0.0,]
rotation = [ 1.665394, 1.665394, -0.832697,]
translation = [ 0.0, 0.0, 500.0,]

[cam_1]
name = "B"
size = [ 1280, 1024,]
matrix = [ [ 1402.3, 0.0, 641.2,], [ 0.0, 1402.3, 509.8,], [ 0.0, 0.0, 1.0,],]
distortions = [ -0.165, 0.021, 0.0, 0.0, 0.0,]
rotation = [ 0.0, 2.809926, -1.404963,]
translation = [ 0.0, 0.0, 500.0,]

[cam_2]
name = "C"
size = [ 1280, 1024,]
matrix = [ [ 1391.0, 0.0, 638.0,], [ 0.0, 1391.0, 512.3,], [ 0.0, 0.0, 1.0,],]
distortions = [ -0.18, 0.04, 0.0, 0.0, 0.0,]
rotation = [ 1.975906, -0.818447, 0.467696,]
translation = [ 0.0, -0.0, 492.4429,]

[metadata]
adjusted = false
error = 0.8712
"""

POSITIONS = [(600.0, 0.0, 250.0), (0.0, 650.0, 300.0), (-550.0, -100.0, 200.0)]


def camera(name: str, position, size=(640, 480), target=(0.0, 0.0, 0.0)) -> Camera:
    rotation, translation = look_at(
        np.asarray(position, float), np.asarray(target, float), np.array([0.0, 0.0, 1.0])
    )
    return Camera(
        name=name,
        size=size,
        matrix=np.array([[610.5, 0.0, 321.25], [0.0, 608.0, 239.5], [0.0, 0.0, 1.0]]),
        distortions=np.array([-0.21, 0.08, 0.0012, -0.0009, -0.015]),
        rotation=rotation,
        translation=translation,
    )


@pytest.fixture
def cameras() -> list[Camera]:
    return [camera(n, p) for n, p in zip(["side", "top", "front"], POSITIONS, strict=True)]


def tables(cameras: list[Camera]) -> dict:
    return {
        f"cam_{i}": {
            "name": c.name,
            "size": list(c.size),
            "matrix": c.matrix.tolist(),
            "distortions": c.distortions.tolist(),
            "rotation": c.rotation.tolist(),
            "translation": c.translation.tolist(),
        }
        for i, c in enumerate(cameras)
    }


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "calibration.toml"
    path.write_text(tomli_w.dumps(document))
    return path


def bad(tmp_path: Path, document: dict, *needles: str) -> CalibrationError:
    """Reading the document raises a CalibrationError whose message holds every needle."""
    with pytest.raises(CalibrationError) as info:
        read_calibration(write(tmp_path, document))
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    assert info.value.fix
    return info.value


def test_write_read_round_trip_is_exact(tmp_path, cameras):
    cameras[1] = Camera(
        name=cameras[1].name,
        size=(1280, 1024),
        matrix=np.array([[1384.917263, 0.0, 639.5001], [0.0, 1390.1 / 3, 511.2], [0, 0, 1.0]]),
        distortions=np.array([-0.1, 1e-17, np.pi * 1e-3, -2.5e-4, 0.03]),
        rotation=cameras[1].rotation,
        translation=cameras[1].translation,
    )
    path = write_calibration(tmp_path / "calibration.toml", cameras, {"units": "mm", "n": 3})
    read = read_calibration(path)
    assert [c.name for c in read] == [c.name for c in cameras]
    for mine, theirs in zip(cameras, read, strict=True):
        assert theirs.size == mine.size and all(type(s) is int for s in theirs.size)
        for field in ("matrix", "distortions", "rotation", "translation"):
            np.testing.assert_array_equal(getattr(theirs, field), getattr(mine, field))
            assert getattr(theirs, field).dtype == np.float64
    assert tomllib.loads(path.read_text())["metadata"] == {"units": "mm", "n": 3}
    # writing what was read gives the same file
    again = write_calibration(tmp_path / "again.toml", read, {"units": "mm", "n": 3})
    assert again.read_text() == path.read_text()


def test_anipose_file_written_by_hand_reads(tmp_path):
    path = tmp_path / "calibration.toml"
    path.write_text(ANIPOSE_FILE)
    cameras = read_calibration(path)
    assert [c.name for c in cameras] == ["A", "B", "C"]
    assert cameras[0].size == (1280, 1024) and cameras[0].image_shape == (1024, 1280)
    assert cameras[1].matrix[0, 0] == 1402.3
    np.testing.assert_array_equal(cameras[2].distortions, [-0.18, 0.04, 0, 0, 0])
    np.testing.assert_array_equal(cameras[0].rotation, [1.665394, 1.665394, -0.832697])
    # all three look at the origin, the centre of the arena
    np.testing.assert_allclose(attention_centre(cameras), 0.0, atol=1e-2)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CalibrationError, match="not found"):
        read_calibration(tmp_path / "nope.toml")
    (tmp_path / "junk.toml").write_text("this is [ not toml")
    with pytest.raises(CalibrationError, match="not a TOML file"):
        read_calibration(tmp_path / "junk.toml")
    (tmp_path / "empty.toml").write_text('[metadata]\nunits = "mm"\n')
    with pytest.raises(CalibrationError, match="no camera tables"):
        read_calibration(tmp_path / "empty.toml")


def test_missing_field_and_non_numbers_name_the_camera(tmp_path, cameras):
    document = tables(cameras)
    del document["cam_1"]["matrix"]
    bad(tmp_path, document, "'top'", "matrix")
    document = tables(cameras)
    document["cam_2"]["translation"] = ["a", "b", "c"]
    bad(tmp_path, document, "'front'", "translation is not numbers")
    document = tables(cameras)
    document["cam_2"]["translation"] = [1.0, 2.0]
    bad(tmp_path, document, "'front'", "translation has shape (2,)")


@pytest.mark.parametrize(
    "size", [[640.5, 480], [0, 480], [640, -480], [640], [640, 480, 3]], ids=str
)
def test_bad_size_names_the_camera(tmp_path, cameras, size):
    document = tables(cameras)
    document["cam_1"]["size"] = size
    bad(tmp_path, document, "'top'", "size")


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda m: m.__setitem__((0, 0), -610.0), "fx = -610"),
        (lambda m: m.__setitem__((1, 1), 0.0), "fy = 0"),
        (lambda m: m.__setitem__((2, 2), 2.0), "last row"),
        (lambda m: m.__setitem__((2, 0), 1e-3), "last row"),
        (lambda m: m.__setitem__((1, 0), 0.5), "matrix[1][0]"),
        (lambda m: m.__setitem__((0, 2), 700.0), "principal point at (700, 239.5)"),
        (lambda m: m.__setitem__((1, 2), -3.0), "principal point"),
    ],
    ids=["fx", "fy", "m22", "m20", "m10", "cx", "cy"],
)
def test_bad_matrix_names_the_camera(tmp_path, cameras, edit, needle):
    document = tables(cameras)
    matrix = np.array(document["cam_0"]["matrix"])
    edit(matrix)
    document["cam_0"]["matrix"] = matrix.tolist()
    bad(tmp_path, document, "'side'", needle)


def test_rotation_matrix_is_converted_to_rodrigues(tmp_path, cameras):
    document = tables(cameras)
    document["cam_1"]["rotation"] = rodrigues(cameras[1].rotation).tolist()
    document["cam_2"]["rotation"] = [[v] for v in cameras[2].rotation]  # OpenCV's 3x1
    read = read_calibration(write(tmp_path, document))
    assert read[1].rotation.shape == (3,)
    np.testing.assert_allclose(read[1].rotation, cameras[1].rotation, atol=1e-12)
    np.testing.assert_array_equal(read[2].rotation, cameras[2].rotation)
    points = np.random.default_rng(0).uniform(-50, 50, (10, 3))
    np.testing.assert_allclose(read[1].project(points), cameras[1].project(points), atol=1e-9)


@pytest.mark.parametrize(
    ("matrix", "needles"),
    [
        (np.diag([1.0, 1.0, -1.0]), ["det -1"]),  # a reflection
        (np.eye(3) * 1.01, ["det 1.0303", "off identity by 0.0201"]),
        (np.eye(3) + np.eye(3, k=1) * 1e-3, ["det 1"]),  # sheared
    ],
    ids=["reflection", "scaled", "sheared"],
)
def test_rotation_matrix_that_is_no_rotation_names_the_camera(tmp_path, cameras, matrix, needles):
    document = tables(cameras)
    document["cam_1"]["rotation"] = (matrix @ rodrigues(cameras[1].rotation)).tolist()
    bad(tmp_path, document, "rotation of camera 'top' is not a rotation", *needles)


def test_nearly_orthonormal_rotation_matrix_is_accepted(tmp_path, cameras):
    document = tables(cameras)
    document["cam_1"]["rotation"] = (rodrigues(cameras[1].rotation) + 1e-8).tolist()
    read = read_calibration(write(tmp_path, document))
    np.testing.assert_allclose(read[1].rotation, cameras[1].rotation, atol=1e-6)


@pytest.mark.parametrize("rotation", [[0.1, 0.2], [0.1, 0.2, 0.3, 0.4], [[1.0, 0.0], [0.0, 1.0]]])
def test_rotation_of_another_shape_names_the_camera(tmp_path, cameras, rotation):
    document = tables(cameras)
    document["cam_2"]["rotation"] = rotation
    bad(tmp_path, document, "rotation of camera 'front' has shape", "Rodrigues")


def test_distortion_coefficients(tmp_path, cameras):
    document = tables(cameras)
    document["cam_0"]["distortions"] = [-0.2, 0.05, 0.001, 0.002]
    document["cam_1"]["distortions"] = [-0.2, 0.05, 0.001, 0.002, 0.01, 0.0, 0.0, 0.0]
    read = read_calibration(write(tmp_path, document))
    np.testing.assert_array_equal(read[0].distortions, [-0.2, 0.05, 0.001, 0.002, 0.0])
    np.testing.assert_array_equal(read[1].distortions, [-0.2, 0.05, 0.001, 0.002, 0.01])
    document["cam_1"]["distortions"] = [-0.2, 0.05, 0.001, 0.002, 0.01, 0.3, 0.0, 0.0]
    bad(tmp_path, document, "camera 'top' uses OpenCV's rational")
    document["cam_1"]["distortions"] = [-0.2, 0.05, 0.001]
    bad(tmp_path, document, "camera 'top': 3 distortion coefficients")


def test_duplicate_names(tmp_path, cameras):
    document = tables(cameras)
    document["cam_2"]["name"] = "side"
    bad(tmp_path, document, "camera name 'side' is used 2 times", "0, 2")


def test_copied_entry_names_both_cameras(tmp_path, cameras):
    document = tables(cameras)
    document["cam_2"] = dict(document["cam_0"], name="front")
    error = bad(tmp_path, document, "cameras 'side' and 'front' have identical")
    assert "Re-export the calibration" in error.fix


def test_a_single_camera_is_not_enough(tmp_path, cameras):
    bad(tmp_path, tables(cameras[:1]), "1 camera ('side')", "at least two")


def test_camera_turned_around_is_named(tmp_path, cameras):
    flip = np.diag([-1.0, 1.0, -1.0])  # half turn about the camera's y axis, same centre
    turned = cameras[2]
    document = tables(cameras)
    document["cam_2"]["rotation"] = rodrigues_vector(flip @ turned.rotation_matrix).tolist()
    document["cam_2"]["translation"] = (flip @ turned.translation).tolist()
    error = bad(tmp_path, document, "camera 'front' looks away", "behind it")
    assert "'side'" not in error.problem and "'top'" not in error.problem


def test_camera_to_world_pose_is_caught(tmp_path, cameras):
    """A pose written camera-to-world (R^T, centre) instead of world-to-camera."""
    document = tables(cameras)
    inverted = cameras[1]
    document["cam_1"]["rotation"] = (-inverted.rotation).tolist()
    document["cam_1"]["translation"] = inverted.centre.tolist()
    error = bad(tmp_path, document, "camera 'top' looks away")
    assert "camera-to-world" in error.fix


def test_camera_looking_sideways_is_named(tmp_path, cameras):
    side = camera("top", POSITIONS[1], target=(900.0, 650.0, 300.0))  # looks along +x
    document = tables([cameras[0], side, cameras[2]])
    bad(tmp_path, document, "camera 'top' looks away")


def test_parallel_and_facing_rigs_pass(tmp_path):
    # a stereo pair looking the same way: the axes never meet
    left = camera("left", (-60.0, -800.0, 100.0), target=(-60.0, 0.0, 100.0))
    right = camera("right", (60.0, -800.0, 100.0), target=(60.0, 0.0, 100.0))
    check_cameras([left, right], tmp_path / "c.toml")
    centre = attention_centre([left, right])
    assert centre[1] > -800 and abs(centre[0]) < 1e-6
    # two cameras facing each other on one line
    north = camera("north", (0.0, 500.0, 100.0), target=(0.0, 0.0, 100.0))
    south = camera("south", (0.0, -500.0, 100.0), target=(0.0, 0.0, 100.0))
    check_cameras([north, south], tmp_path / "c.toml")
    np.testing.assert_allclose(attention_centre([north, south]), [0, 0, 100], atol=1e-6)
    # back to back: nothing is in front of both
    away_north = camera("away_north", (0.0, 500.0, 100.0), target=(0.0, 1000.0, 100.0))
    away_south = camera("away_south", (0.0, -500.0, 100.0), target=(0.0, -1000.0, 100.0))
    with pytest.raises(CalibrationError, match=r"'away_north' looks away.*'away_south' looks"):
        check_cameras([away_north, away_south], tmp_path / "c.toml")
    # one behind the other, both looking the same way, is a valid (if odd) rig
    ahead = camera("ahead", (0.0, 0.0, 100.0), target=(0.0, 500.0, 100.0))
    check_cameras([ahead, south], tmp_path / "c.toml")


def test_check_cameras_on_its_own(tmp_path, cameras):
    path = tmp_path / "in-memory.toml"
    check_cameras(cameras, path)
    np.testing.assert_allclose(attention_centre(cameras), 0.0, atol=1e-6)
    wrong = Camera(
        name="top",
        size=cameras[1].size,
        matrix=cameras[1].matrix,
        distortions=cameras[1].distortions,
        rotation=cameras[1].rotation_matrix,
        translation=cameras[1].translation,
    )
    with pytest.raises(CalibrationError, match=r"rotation of camera 'top' has shape \(3, 3\)"):
        check_cameras([cameras[0], wrong], path)
    nameless = Camera(
        "",
        (640, 480),
        cameras[0].matrix,
        cameras[0].distortions,
        cameras[0].rotation,
        cameras[0].translation,
    )
    with pytest.raises(CalibrationError, match="non-empty name"):
        check_cameras([nameless, cameras[1]], path)
    with pytest.raises(CalibrationError, match="holds 0 camera"):
        check_cameras([], path)


def test_a_fisheye_camera_is_refused_by_name(tmp_path, cameras):
    document = tables(cameras)
    document["cam_1"]["fisheye"] = False  # anipose writes it for every camera
    assert len(read_calibration(write(tmp_path, document))) == 3
    document["cam_1"]["fisheye"] = True
    bad(tmp_path, document, "camera 'top'", "fisheye", "fisheye = false")


@pytest.mark.parametrize(
    ("distortions", "needle"),
    [
        ([1e6, 1e6, 0.0, 0.0, 1e6], "cannot be undone"),  # the probe's dist_huge
        ([-2.0, 0.0, 0.0, 0.0, 0.0], "folds the image"),  # barrel turning back in the image
        ([0.0, 0.0, 5.0, 0.0, 0.0], "cannot be undone"),  # absurd tangential term
    ],
)
def test_absurd_lens_distortions_are_refused_by_name(tmp_path, cameras, distortions, needle):
    document = tables(cameras)
    document["cam_2"]["distortions"] = distortions
    bad(tmp_path, document, "camera 'front'", needle, "distortions")


def test_a_nesting_bomb_is_one_clear_error(tmp_path):
    path = tmp_path / "calibration.toml"
    path.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(CalibrationError, match="nests arrays or tables too deeply"):
        read_calibration(path)
