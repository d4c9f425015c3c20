"""Videos matched to cameras, and the checks that the views of a session are in step."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from bkind_model.errors import ConfigError
from bkind_model.io.video_writer import write_video
from bkind_model.multiview.calibration import write_calibration
from bkind_model.multiview.cameras import Camera, look_at
from bkind_model.multiview.views import Session, ViewsError, match_views, open_session

WIDTH, HEIGHT, N_FRAMES, FPS = 64, 48, 12, 30.0
NAMES = ["side", "top", "front"]
POSITIONS = [(600.0, 0.0, 250.0), (0.0, 650.0, 300.0), (-550.0, -100.0, 200.0)]


def camera(name: str, position=(600.0, 0.0, 250.0), size=(WIDTH, HEIGHT)) -> Camera:
    rotation, translation = look_at(np.asarray(position), np.zeros(3), np.array([0.0, 0, 1]))
    return Camera(
        name=name,
        size=size,
        matrix=np.array([[60.0, 0, (size[0] - 1) / 2], [0, 60.0, (size[1] - 1) / 2], [0, 0, 1]]),
        distortions=np.array([-0.1, 0.01, 0.0, 0.0, 0.0]),
        rotation=rotation,
        translation=translation,
    )


def rig(names) -> list[Camera]:
    rng = np.random.default_rng(len(names))
    positions = [np.array([600.0, 0, 250]) + rng.uniform(-300, 300, 3) for _ in names]
    return [camera(n, p) for n, p in zip(names, positions, strict=True)]


def video(path: Path, n: int = N_FRAMES, size=(WIDTH, HEIGHT), fps: float = FPS) -> Path:
    frames = np.random.default_rng(n).integers(0, 256, (n, size[1], size[0], 3), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, frames, fps)


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory) -> Path:
    """A session folder (three cameras, calibration.toml) and variants of the top view."""
    folder = tmp_path_factory.mktemp("session")
    cameras = [camera(n, p) for n, p in zip(NAMES, POSITIONS, strict=True)]
    write_calibration(folder / "calibration.toml", cameras)
    for name in NAMES:
        video(folder / f"{name}.mp4")
    variants = folder / "variants"
    video(variants / "fps25" / "top.mp4", fps=25.0)
    video(variants / "n10" / "top.mp4", n=10)
    video(variants / "n11" / "top.mp4", n=11)
    video(variants / "rotated" / "top.mp4", size=(HEIGHT, WIDTH))
    video(variants / "half" / "top.mp4", size=(WIDTH // 2, HEIGHT // 2))
    video(variants / "other" / "top.mp4", size=(WIDTH, 32))
    return folder


def views(folder: Path, top: str | None = None) -> list[Path]:
    """The session's three videos, the top view replaced by a variant."""
    paths = [folder / f"{n}.mp4" for n in NAMES]
    if top is not None:
        paths[1] = folder / "variants" / top / "top.mp4"
    return paths


@contextmanager
def raises(*needles: str) -> Iterator[None]:
    """A ViewsError (a ConfigError) whose message holds every needle."""
    with pytest.raises(ViewsError) as info:
        yield
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    assert isinstance(info.value, ConfigError) and info.value.fix


# --- matching by name ------------------------------------------------------------------


def test_videos_are_matched_by_name_in_camera_order():
    cameras = rig(NAMES)
    videos = ["rec/mouse3_top.mp4", "rec/mouse3_front.avi", "rec/mouse3_side.mp4"]
    assert match_views(videos, cameras) == [Path(videos[i]) for i in (2, 0, 1)]


def test_longer_names_are_tried_first():
    cameras = rig(["cam1", "cam10", "cam2"])
    videos = ["d/rec_cam10.mp4", "d/rec_cam2.mp4", "d/rec_cam1.mp4"]
    assert match_views(videos, cameras) == [Path(v) for v in (videos[2], videos[0], videos[1])]


def test_anipose_letters_match_at_the_end_of_the_stem():
    cameras = rig(["A", "B", "C"])
    videos = ["Arena-camB.mp4", "Arena-camA.mp4", "Arena-camC.mp4"]
    assert match_views(videos, cameras) == [Path(v) for v in (videos[1], videos[0], videos[2])]


def test_overrides_win():
    cameras = rig(NAMES)
    videos = ["side.mp4", "top.mp4", "lateral.mp4"]
    assert match_views(videos, cameras, {"front": "lateral.mp4"}) == [
        Path("side.mp4"),
        Path("top.mp4"),
        Path("lateral.mp4"),
    ]
    # an override may point outside the list, and displaces the video of that name
    videos = ["side.mp4", "top.mp4", "front.mp4", "front_old.mp4"]
    matched = match_views(videos, cameras, {"front": Path("elsewhere/front_new.mp4")})
    assert matched == [Path("side.mp4"), Path("top.mp4"), Path("elsewhere/front_new.mp4")]
    assert match_views(videos, cameras, {"front": "front_old.mp4"})[2] == Path("front_old.mp4")


def test_camera_without_video_is_named():
    with raises(
        "camera 'front' matches no video (videos: side.mp4, top.mp4, lateral.mp4)",
        "--views front=PATH (e.g. --views front=lateral.mp4)",
    ):
        match_views(["side.mp4", "top.mp4", "lateral.mp4"], rig(NAMES))
    with raises("camera 'front' matches no video", "Front.mp4 contain it in other letter case"):
        match_views(["side.mp4", "top.mp4", "Front.mp4"], rig(NAMES))


def test_video_without_camera_is_named():
    with raises("video notes.mp4 matches no camera (cameras: side, top, front)", "Leave it out"):
        match_views(["side.mp4", "top.mp4", "front.mp4", "notes.mp4"], rig(NAMES))


def test_video_matching_two_cameras_is_named():
    with raises("video side_top.mp4 matches cameras 'side' and 'top'", "--views side="):
        match_views(["side_top.mp4", "top2.mp4", "front.mp4"], rig(NAMES))


def test_two_videos_for_one_camera_are_named():
    with raises("camera 'front' matches 2 videos: front_1.mp4 and front_2.mp4", "--views front="):
        match_views(["side.mp4", "top.mp4", "front_1.mp4", "front_2.mp4"], rig(NAMES))


def test_override_naming_an_unknown_camera():
    with raises("--views back=b.mp4 names camera 'back'", "in cal.toml", "(cameras: side, top"):
        match_views(
            ["side.mp4", "top.mp4", "front.mp4"], rig(NAMES), {"back": "b.mp4"}, "cal.toml"
        )


def test_duplicates():
    with raises("video top.mp4 is given twice"):
        match_views(["side.mp4", "top.mp4", "./top.mp4", "front.mp4"], rig(NAMES))
    with raises("cameras 'side' and 'top' are all given video x.mp4"):
        match_views(["front.mp4"], rig(NAMES), {"side": "x.mp4", "top": "x.mp4"})


# --- opening a session -----------------------------------------------------------------


def test_open_session(session_dir):
    videos = [session_dir / f"{n}.mp4" for n in ("front", "top", "side")]
    session = open_session(videos, session_dir / "calibration.toml")
    assert isinstance(session, Session)
    assert session.names == NAMES and session.n_views == 3
    assert session.videos == views(session_dir)
    assert session.offsets == (0, 0, 0) and session.n_frames == N_FRAMES
    assert session.fps == pytest.approx(FPS)
    assert session.image_shapes == [(HEIGHT, WIDTH)] * 3
    assert session.calibration == session_dir / "calibration.toml"
    with pytest.raises(AttributeError):
        session.n_frames = 3  # type: ignore[misc]


def test_open_session_with_cameras_in_code(session_dir):
    cameras = [camera(n, p) for n, p in zip(NAMES, POSITIONS, strict=True)]
    session = open_session(views(session_dir), cameras, overrides={"top": views(session_dir)[1]})
    assert session.calibration is None and session.cameras == cameras


def test_offsets(session_dir):
    calibration = session_dir / "calibration.toml"
    session = open_session(views(session_dir), calibration, offsets=[1, 1, 1])
    assert session.offsets == (1, 1, 1) and session.n_frames == N_FRAMES - 1
    session = open_session(views(session_dir), calibration, offsets={"top": 1})
    assert session.offsets == (0, 1, 0) and session.n_frames == N_FRAMES - 1  # 1-frame tolerance
    session = open_session(views(session_dir), calibration, offsets=np.array([0, 2, 1]) // 2)
    assert session.offsets == (0, 1, 0) and all(type(o) is int for o in session.offsets)


@pytest.mark.parametrize(
    ("offsets", "needle"),
    [
        ([0, -1, 0], "offset of camera 'top' is -1"),
        ([0, 1.0, 0], "offset of camera 'top' is 1.0"),
        ([True, 0, 0], "offset of camera 'side' is True"),
        ([0, 0], "2 offsets for 3 cameras"),
        ({"back": 2}, "offsets name camera 'back'"),
        ([0, 0, N_FRAMES], "camera 'front': the offset of 12 frames skips all 12"),
    ],
    ids=["negative", "float", "bool", "length", "unknown", "too-many"],
)
def test_bad_offsets(session_dir, offsets, needle):
    with raises(needle):
        open_session(views(session_dir), session_dir / "calibration.toml", offsets=offsets)


def test_frame_rates_must_agree(session_dir):
    with raises(
        "camera 'side' runs at 30 fps (side.mp4) but camera 'top' at 25 fps (top.mp4)",
        "synchronised",
    ):
        open_session(views(session_dir, "fps25"), session_dir / "calibration.toml")


def test_frame_counts_must_agree(session_dir):
    calibration = session_dir / "calibration.toml"
    with raises(
        "camera 'side' has 12 frames after skipping 0 but camera 'top' has 10 frames after "
        "skipping 0",
        "Trim the videos",
        "offsets",
    ):
        open_session(views(session_dir, "n10"), calibration)
    # offsets line them up
    session = open_session(views(session_dir, "n10"), calibration, offsets={"side": 2, "front": 2})
    assert session.n_frames == 10
    # one frame apart: cut to the shortest
    session = open_session(views(session_dir, "n11"), calibration)
    assert session.n_frames == 11


@pytest.mark.parametrize(
    ("variant", "needles"),
    [
        ("rotated", ["is 48x64 pixels", "calibrated at 64x48", "swapped", "rotated by 90"]),
        ("half", ["is 32x24 pixels", "scaled by 0.5", "rescale the calibration"]),
        ("other", ["is 64x32 pixels", "calibrated at 64x48", "the videos the calibration"]),
    ],
)
def test_video_size_must_be_the_cameras(session_dir, variant, needles):
    with raises("camera 'top': its video", *needles):
        open_session(views(session_dir, variant), session_dir / "calibration.toml")


def test_session_checks_its_lengths():
    with raises("a session of 2 cameras, 1 videos and 2 offsets"):
        Session(rig(["a", "b"]), [Path("a.mp4")], (0, 0), 10, 30.0, None)
