"""Cameras against OpenCV: projection, undistortion, Rodrigues, triangulation, gradients."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from bkind_model.multiview.cameras import Camera, CameraRig, look_at, rodrigues, rodrigues_vector

CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)

#: Lab-lens distortions, every coefficient non-zero (k1, k2, p1, p2, k3).
DISTORTIONS = [
    [-0.21, 0.08, 0.0012, -0.0009, -0.015],
    [0.12, -0.05, -0.0015, 0.0011, 0.01],
    [-0.05, 0.02, 0.0005, 0.0007, -0.004],
    [-0.3, 0.12, -0.001, -0.002, -0.03],
]


def make_camera(
    name: str,
    position,
    distortions,
    size=(640, 480),
    focal=(620.0, 615.0),
    centre=(322.5, 238.0),
    target=(0.0, 0.0, 0.0),
    up=(0.0, 0.0, 1.0),
) -> Camera:
    rotation, translation = look_at(
        np.asarray(position, float), np.asarray(target), np.asarray(up)
    )
    matrix = np.array([[focal[0], 0, centre[0]], [0, focal[1], centre[1]], [0, 0, 1.0]])
    return Camera(
        name=name,
        size=size,
        matrix=matrix,
        distortions=np.asarray(distortions, float),
        rotation=rotation,
        translation=translation,
    )


@pytest.fixture(scope="module")
def cameras() -> list[Camera]:
    positions = [(600, 0, 250), (0, 650, 300), (-550, -100, 200), (150, -600, 500)]
    return [
        make_camera(f"cam{i}", p, d, focal=(600 + 20 * i, 610 + 15 * i), centre=(318 + i, 241 - i))
        for i, (p, d) in enumerate(zip(positions, DISTORTIONS, strict=True))
    ]


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    """``(50, 3)`` points in a 160 mm cube around the origin, seen by every camera."""
    return np.random.default_rng(0).uniform(-80, 80, (50, 3))


def cv2_project(camera: Camera, points: np.ndarray) -> np.ndarray:
    pixels, _ = cv2.projectPoints(
        points.reshape(-1, 1, 3),
        camera.rotation.reshape(3, 1),
        camera.translation.reshape(3, 1),
        camera.matrix,
        camera.distortions,
    )
    return pixels.reshape(-1, 2)


def test_projection_equals_opencv(cameras, points):
    rig = CameraRig(cameras)
    batched = rig.project_numpy(points)
    assert batched.shape == (len(points), len(cameras), 2)
    for v, camera in enumerate(cameras):
        reference = cv2_project(camera, points)
        np.testing.assert_allclose(camera.project(points), reference, rtol=0, atol=1e-6)
        np.testing.assert_allclose(batched[:, v], reference, rtol=0, atol=1e-6)
        # the points are really in view, so the comparison covers the distorted image
        assert (reference > 0).all() and (reference < camera.size).all()


def test_projection_with_four_coefficients_equals_opencv(points):
    camera = make_camera("four", (500, 300, 200), [-0.2, 0.05, 0.001, -0.002])
    pixels = camera.project(points)
    reference = cv2_project(camera, points)  # OpenCV reads four coefficients as k3 = 0
    np.testing.assert_allclose(pixels, reference, rtol=0, atol=1e-6)


def test_skew_is_applied_and_undone(points):
    """OpenCV's projectPoints ignores the skew ``matrix[0, 1]``; the rig applies it."""
    camera = make_camera("skewed", (500, 300, 200), DISTORTIONS[0])
    camera.matrix[0, 1] = 1.5
    rig = CameraRig([camera])
    pixels = rig.project_numpy(points)
    plain = cv2_project(camera, points)
    cam = points @ camera.rotation_matrix.T + camera.translation
    distorted_y = (plain[:, 1] - camera.matrix[1, 2]) / camera.matrix[1, 1]
    np.testing.assert_allclose(pixels[:, 0, 0], plain[:, 0] + 1.5 * distorted_y, atol=1e-6)
    normalised = rig.undistort(torch.as_tensor(pixels)).numpy()[:, 0]
    np.testing.assert_allclose(normalised, cam[:, :2] / cam[:, 2:], rtol=0, atol=1e-9)


def test_undistort_equals_opencv(cameras, points):
    rig = CameraRig(cameras)
    pixels = rig.project_numpy(points)  # (N, V, 2)
    normalised = rig.undistort(torch.as_tensor(pixels)).numpy()
    for v, camera in enumerate(cameras):
        reference = cv2.undistortPoints(
            pixels[:, v].reshape(-1, 1, 2),
            camera.matrix,
            camera.distortions,
            R=np.eye(3),
            P=np.eye(3),
            criteria=CRITERIA,
        ).reshape(-1, 2)
        np.testing.assert_allclose(normalised[:, v], reference, rtol=0, atol=1e-9)
        # and both are the pinhole coordinates of the points
        cam = points @ camera.rotation_matrix.T + camera.translation
        np.testing.assert_allclose(normalised[:, v], cam[:, :2] / cam[:, 2:], rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    "vector",
    [
        np.zeros(3),
        np.array([1e-9, -2e-9, 0.5e-9]),
        np.array([0.3, -0.2, 0.1]),
        np.array([-1.2, 2.0, 0.4]),
        (np.pi - 1e-3) * np.array([0.0, 1.0, -1.0]) / np.sqrt(2),
        (np.pi - 1e-3) * np.array([-1.0, 2.0, -3.0]) / np.sqrt(14),
    ],
)
def test_rodrigues_equals_opencv(vector):
    matrix = rodrigues(vector)
    np.testing.assert_allclose(matrix, cv2.Rodrigues(vector)[0], rtol=0, atol=1e-12)
    # OpenCV rounds rotations below about 1e-8 rad to zero; the inverse here keeps them.
    np.testing.assert_allclose(
        rodrigues_vector(matrix), cv2.Rodrigues(matrix)[0].ravel(), rtol=0, atol=1e-8
    )
    np.testing.assert_allclose(rodrigues_vector(matrix), vector, rtol=0, atol=1e-12)


@pytest.mark.parametrize("gap", [0.0, 1e-7, 1e-5])
@pytest.mark.parametrize("axis", [(0, 1, -1), (0, 1, 1), (1, -1, 0), (-1, 2, -3), (0, 0, 1)])
def test_rodrigues_vector_at_a_half_turn(axis, gap):
    """At a half turn k and -k are the same rotation: compare the matrices."""
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    matrix = cv2.Rodrigues((np.pi - gap) * k)[0]
    vector = rodrigues_vector(matrix)
    assert np.linalg.norm(vector) == pytest.approx(np.pi - gap, abs=1e-9)
    np.testing.assert_allclose(rodrigues(vector), matrix, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cv2.Rodrigues(vector)[0], matrix, rtol=0, atol=1e-12)


def test_triangulation_equals_opencv_for_two_views(cameras, points):
    rig = CameraRig(cameras[:2])
    rng = np.random.default_rng(1)
    pixels = rig.project_numpy(points) + rng.normal(0, 0.3, (len(points), 2, 2))
    normalised = rig.undistort(torch.as_tensor(pixels)).numpy()
    projections = [
        np.concatenate([c.rotation_matrix, c.translation.reshape(3, 1)], 1) for c in cameras[:2]
    ]
    homogeneous = cv2.triangulatePoints(
        projections[0], projections[1], normalised[:, 0].T.copy(), normalised[:, 1].T.copy()
    )
    reference = (homogeneous[:3] / homogeneous[3]).T
    ours = rig.triangulate_numpy(pixels)
    # Both solve the same linear equations by least squares (OpenCV homogeneous with an
    # SVD, the rig inhomogeneous), so with 0.3 px of noise they differ far below the error.
    error = np.linalg.norm(ours - points, axis=-1)
    assert 0.01 < error.mean() < 5.0
    assert np.linalg.norm(ours - reference, axis=-1).max() < 0.02 * error.mean()
    # without noise both are exact
    clean = rig.project_numpy(points)
    np.testing.assert_allclose(rig.triangulate_numpy(clean), points, rtol=0, atol=1e-6)


def test_project_undistort_rays_round_trip(cameras, points):
    rig = CameraRig(cameras)
    origins, directions = rig.rays(torch.as_tensor(rig.project_numpy(points)))
    origins, directions = origins.numpy(), directions.numpy()  # (V, 3), (N, V, 3)
    np.testing.assert_allclose(origins, np.stack([c.centre for c in cameras]), atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(directions, axis=-1), 1.0, atol=1e-12)
    # the point lies on each ray: distance from the ray below 1e-6 mm
    offset = points[:, None, :] - origins[None]
    along = (offset * directions).sum(-1, keepdims=True)
    assert (along > 0).all()
    np.testing.assert_allclose(offset - along * directions, 0.0, atol=1e-6)


def test_zero_weight_ignores_a_corrupted_view(cameras, points):
    rig = CameraRig(cameras)
    pixels = rig.project_numpy(points)
    pixels[:, 2] += 40.0  # view 2 is wrong everywhere
    weights = np.ones(pixels.shape[:-1])
    corrupted = rig.triangulate_numpy(pixels, weights)
    assert np.abs(corrupted - points).max() > 1.0
    weights[:, 2] = 0.0
    np.testing.assert_allclose(rig.triangulate_numpy(pixels, weights), points, atol=1e-6)
    # the same with the view marked missing by NaN
    pixels[:, 2] = np.nan
    np.testing.assert_allclose(rig.triangulate_numpy(pixels), points, atol=1e-6)


def test_fewer_than_two_views_give_nan(cameras, points):
    rig = CameraRig(cameras[:3])
    pixels = rig.project_numpy(points[:4])
    weights = np.ones((4, 3))
    weights[0, 1:] = 0  # one view
    weights[1] = 0  # none
    pixels[2, :2] = np.nan  # one finite view
    result = rig.triangulate_numpy(pixels, weights)
    assert np.isnan(result[:3]).all()
    np.testing.assert_allclose(result[3], points[3], atol=1e-6)


def test_gradients_flow_through_triangulation_in_float32(cameras, points):
    rig = CameraRig(cameras, dtype=torch.float32)
    pixels = torch.tensor(
        CameraRig(cameras).project_numpy(points[:8]), dtype=torch.float32, requires_grad=True
    )
    weights = torch.full((8, len(cameras)), 0.7, requires_grad=True)
    triangulated = rig.triangulate(pixels, weights)
    assert triangulated.dtype == torch.float32
    assert torch.allclose(
        triangulated, torch.as_tensor(points[:8], dtype=torch.float32), atol=0.05
    )
    reprojected = rig.project(triangulated)
    loss = (reprojected - pixels.detach() - 1.0).square().mean() + triangulated.square().mean()
    loss.backward()
    assert pixels.grad is not None and weights.grad is not None
    assert torch.isfinite(pixels.grad).all() and torch.isfinite(weights.grad).all()
    assert pixels.grad.abs().sum() > 0


def test_rig_to_keeps_cameras_and_converts(cameras, points):
    rig = CameraRig(cameras).to(dtype=torch.float32)
    assert rig.names == [c.name for c in cameras]
    assert rig.rotations.dtype == torch.float32
    projected = rig.project(torch.as_tensor(points, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(projected, CameraRig(cameras).project_numpy(points), atol=1e-2)


def test_camera_geometry(cameras):
    camera = cameras[0]
    assert camera.image_shape == (480, 640)
    np.testing.assert_allclose(camera.centre, [600, 0, 250], atol=1e-9)
    # look_at: the target projects to the principal point
    centre = CameraRig([camera]).to_camera(torch.zeros(3, dtype=torch.float64)).numpy()[0]
    np.testing.assert_allclose(centre[:2], 0.0, atol=1e-9)
    assert centre[2] == pytest.approx(np.linalg.norm([600, 0, 250]))
    assert camera.same_parameters(camera)
    assert not camera.same_parameters(cameras[1])
