import numpy as np

from bkind_model.pose.body_frame import body_frame


def _rotation(angles):
    c, s = np.cos(angles), np.sin(angles)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def _animal(n_frames=80, seed=0):
    rng = np.random.default_rng(seed)
    shape = np.array([[40.0, 0], [20, 6], [0, 0], [-20, -5], [-45, 0], [5, 12]])
    angles = rng.uniform(-np.pi, np.pi, n_frames)
    centres = rng.uniform(50, 400, (n_frames, 2))
    points = np.einsum("tij,kj->tki", _rotation(angles), shape) + centres[:, None]
    return points + rng.normal(0, 0.5, points.shape), angles, centres


def test_heading_follows_the_rotation_without_flips():
    points, angles, _ = _animal()
    frame = body_frame(points)
    offset = np.angle(np.exp(1j * (frame.heading - angles)))
    # One constant offset for every frame: no 180-degree flips between frames.
    assert np.abs(np.angle(np.exp(1j * (offset - offset[0])))).max() < 0.05


def test_body_coordinates_do_not_depend_on_position_or_heading():
    points, _, _ = _animal()
    frame = body_frame(points)
    body = frame.to_body(points)
    assert body.std(axis=0).max() < 1.5  # only the 0.5 px noise remains
    np.testing.assert_allclose(frame.to_image(body), points, atol=1e-9)


def test_a_given_reference_gives_new_frames_the_same_axes():
    points, _, _ = _animal(seed=1)
    fitted = body_frame(points[:40])
    again = body_frame(points[40:], reference=fitted.reference)
    np.testing.assert_allclose(again.to_body(points[40:]).mean(axis=0), fitted.reference, atol=1.0)


def test_missing_keypoints_get_no_weight():
    points, _, _ = _animal(seed=2)
    holed = points.copy()
    holed[::3, 1] = np.nan
    frame = body_frame(holed)
    body = frame.to_body(np.nan_to_num(holed))
    keep = np.ones(6, bool)
    keep[1] = False
    assert np.isfinite(frame.rotation).all()
    assert body[:, keep].std(axis=0).max() < 1.5
