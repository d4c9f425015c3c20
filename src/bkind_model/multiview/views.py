"""The videos of one session matched to its calibrated cameras, checked to be in step.

:func:`match_views` pairs every camera of a calibration with one video by file name (the
video's stem contains the camera's name) or by an explicit ``--views name=path``;
:func:`open_session` also reads the calibration and each video's metadata and checks that
the views belong together: the same frame rate, the same number of frames after the
per-view offsets, and every video the size its camera was calibrated at. The result is a
:class:`Session`, what training and extraction need to know of the views.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bkind_model.errors import ConfigError
from bkind_model.io.video import open_video
from bkind_model.multiview.calibration import check_cameras, read_calibration
from bkind_model.multiview.cameras import Camera

#: Two views are synchronised when their frame rates differ by at most this fraction.
FPS_TOLERANCE = 0.005

#: Views whose frame counts (after the offsets) differ by at most this many frames are
#: cut to the shortest: recorders often add or drop one frame when stopped.
FRAME_COUNT_TOLERANCE = 1


class ViewsError(ConfigError):
    """The videos do not fit the cameras: which camera, what is wrong, the fix.

    Parameters
    ----------
    problem : str
        What is wrong, naming the camera(s) and video(s).
    fix : str
        What the user can do about it.
    """

    def __init__(self, problem: str, fix: str) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} {fix}")


@dataclass(frozen=True)
class Session:
    """The synchronised, calibrated views of one recording.

    Attributes
    ----------
    cameras : list of Camera
        The ``V`` cameras, in the calibration's order (the order of the views).
    videos : list of Path
        One video per camera, in the same order.
    offsets : tuple of int
        Frames to skip at the start of each view, so that frame ``t`` of the session is
        frame ``t + offsets[v]`` of video ``v``.
    n_frames : int
        Synchronised frames common to all views after the offsets.
    fps : float
        Frame rate of the session, frames per second.
    calibration : Path or None
        The ``calibration.toml`` the cameras come from (None for cameras built in code).
    """

    cameras: list[Camera]
    videos: list[Path]
    offsets: tuple[int, ...]
    n_frames: int
    fps: float
    calibration: Path | None

    def __post_init__(self) -> None:
        if not len(self.cameras) == len(self.videos) == len(self.offsets):
            raise ViewsError(
                f"a session of {len(self.cameras)} cameras, {len(self.videos)} videos and "
                f"{len(self.offsets)} offsets.",
                "Give one video and one offset per camera.",
            )

    @property
    def names(self) -> list[str]:
        """The cameras' names, in view order."""
        return [c.name for c in self.cameras]

    @property
    def n_views(self) -> int:
        """Number of views ``V``."""
        return len(self.cameras)

    @property
    def image_shapes(self) -> list[tuple[int, int]]:
        """``(height, width)`` of each view's frames in pixels, in view order."""
        return [c.image_shape for c in self.cameras]


def match_views(
    videos: Sequence[str | Path],
    cameras: Sequence[Camera],
    overrides: Mapping[str, str | Path] | None = None,
    calibration_path: str | Path | None = None,
) -> list[Path]:
    """One video per camera, in the cameras' order.

    A camera's video is the one whose file name without suffix (stem) contains the
    camera's name, case-sensitively. Longer names are matched first and their occurrence
    masked, so camera ``cam1`` does not claim ``cam10.mp4`` when there is a camera
    ``cam10``. When a stem contains several names, the whole stem wins over an occurrence
    as a word (touching no letter or digit: between ``_``, ``-``, spaces or the ends, or
    at the end of the stem, as in ``Arena-camA``), which wins over one inside a word
    (``A`` in ``Arena``); a tie is an error. ``overrides`` (``--views name=path``) win over file names: an overridden
    camera takes its given video (which need not be among ``videos``), and a video of
    ``videos`` that would only have matched overridden cameras is left out.

    Parameters
    ----------
    videos : sequence of str or Path
        The session's video files (or image folders).
    cameras : sequence of Camera
        The calibration's cameras.
    overrides : mapping of str to str or Path, optional
        ``{camera name: video}``.
    calibration_path : str or Path, optional
        Named in the messages.

    Returns
    -------
    list of Path
        The video of each camera, in the order of ``cameras``.

    Raises
    ------
    ViewsError
        An override naming no camera, a video given twice or given to two cameras, a
        video matching two cameras equally well or none, a camera matching no video or
        several; the message names the camera and the fix.
    """
    paths = [Path(v) for v in videos]
    names = [c.name for c in cameras]
    given = {str(k): Path(v) for k, v in (overrides or {}).items()}
    where = f" in {calibration_path}" if calibration_path is not None else ""
    listed = ", ".join(names)

    for name, video in given.items():
        if name not in names:
            raise ViewsError(
                f"--views {name}={video} names camera {name!r}, which the calibration{where} "
                f"does not have (cameras: {listed}).",
                "Use one of the calibration's camera names.",
            )
    _no_duplicates(paths, given, names)

    resolved = {p.resolve() for p in given.values()}
    free = [p for p in paths if p.resolve() not in resolved]
    free_cameras = [n for n in names if n not in given]
    claims: dict[str, list[Path]] = {n: [] for n in free_cameras}
    unmatched = []
    for video in free:
        scores = _scores(video.stem, names)
        best = max((scores[n] for n in free_cameras), default=0)
        if best == 0:
            if not any(scores[n] for n in given):  # else its camera got another video
                unmatched.append(video)
            continue
        top = [n for n in free_cameras if scores[n] == best]
        if len(top) > 1:
            raise ViewsError(
                f"video {video.name} matches cameras {_and(top, quote=True)}.",
                f"Rename it so that it names one camera, or pass --views {top[0]}={video}.",
            )
        claims[top[0]].append(video)

    for name in free_cameras:
        if not claims[name]:
            hint = [p.name for p in paths if name.lower() in p.stem.lower()]
            other_case = f"; {_and(hint)} contain it in other letter case" if hint else ""
            example = f" (e.g. --views {name}={unmatched[0]})" if unmatched else ""
            raise ViewsError(
                f"camera {name!r} matches no video (videos: "
                f"{', '.join(p.name for p in paths) or 'none'}){other_case}.",
                f"Name the file after the camera or pass --views {name}=PATH{example}.",
            )
        if len(claims[name]) > 1:
            raise ViewsError(
                f"camera {name!r} matches {len(claims[name])} videos: "
                f"{_and([p.name for p in claims[name]])}.",
                f"Pass one video per camera, or choose with --views {name}=PATH.",
            )
    if unmatched:
        raise ViewsError(
            f"video {unmatched[0].name} matches no camera (cameras{where}: {listed}).",
            "Leave it out, or, if it is a camera's video, name the file after that camera "
            f"or pass --views CAMERA={unmatched[0]}.",
        )
    return [given[n] if n in given else claims[n][0] for n in names]


def _no_duplicates(paths: list[Path], given: dict[str, Path], names: list[str]) -> None:
    """No video is listed twice and no override video serves two cameras."""
    seen: dict[Path, Path] = {}
    for path in paths:
        key = path.resolve()
        if key in seen:
            raise ViewsError(f"video {path} is given twice.", "Pass each camera's video once.")
        seen[key] = path
    users: dict[Path, list[str]] = {}
    for name in names:
        if name in given:
            users.setdefault(given[name].resolve(), []).append(name)
    for cams in users.values():
        if len(cams) > 1:
            raise ViewsError(
                f"cameras {_and(cams, quote=True)} are all given video {given[cams[0]]} with --views.",
                "Give each camera its own video.",
            )


def _scores(stem: str, names: Sequence[str]) -> dict[str, int]:
    """How well each camera name matches a video stem, ``{name: score}``.

    0 not at all, 1 inside a word, 2 as a word or at the end, 3 the whole stem. Longer
    names are tried first and their occurrences masked for the shorter ones.
    """
    text = stem
    scores = {}
    for name in sorted(set(names), key=len, reverse=True):
        if stem == name:
            scores[name] = 3
        elif name in text:
            word = rf"(?<![^\W_]){re.escape(name)}(?![^\W_])|{re.escape(name)}$"
            scores[name] = 2 if re.search(word, text) else 1
        else:
            scores[name] = 0
        text = text.replace(name, "\0") if scores[name] else text
    return scores


def _and(items: Sequence[str], quote: bool = False) -> str:
    """``a``, ``a and b``, ``a, b and c`` (each ``repr``-quoted when ``quote``)."""
    words = [repr(i) if quote else str(i) for i in items]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def open_session(
    videos: Sequence[str | Path],
    calibration: str | Path | Sequence[Camera],
    overrides: Mapping[str, str | Path] | None = None,
    offsets: Sequence[int] | Mapping[str, int] | None = None,
) -> Session:
    """Match a session's videos to its calibrated cameras and check they are in step.

    Parameters
    ----------
    videos : sequence of str or Path
        The session's videos (files or image folders), in any order.
    calibration : str, Path or sequence of Camera
        The anipose ``calibration.toml`` (read and checked with
        :func:`~bkind_model.multiview.calibration.read_calibration`), or cameras built
        in code (checked with :func:`~bkind_model.multiview.calibration.check_cameras`).
    overrides : mapping of str to str or Path, optional
        ``{camera name: video}`` (``--views``), see :func:`match_views`.
    offsets : sequence of int or mapping of str to int, optional
        Frames to skip at the start of each view: one non-negative integer per camera in
        the calibration's order, or ``{camera name: frames}`` (``--offsets``; cameras left
        out skip none). None skips none.

    Returns
    -------
    Session
        With ``n_frames`` the frames every view has after its offset. Counts that differ
        by at most :data:`FRAME_COUNT_TOLERANCE` frame are accepted and cut to the
        shortest (a recorder stopping one frame early or late); ``fps`` is that of the
        first view stating a rate (image folders state none and take the session's).

    Raises
    ------
    ViewsError
        The videos do not match the cameras (:func:`match_views`), bad offsets, a video
        whose size is not its camera's, frame rates differing by more than
        :data:`FPS_TOLERANCE`, or frame counts differing by more than the tolerance; the
        message names the cameras and the fix.
    CalibrationError
        The calibration cannot be used.
    VideoError
        A video cannot be opened.
    """
    if isinstance(calibration, str | Path):
        calibration_path: Path | None = Path(calibration)
        cameras = read_calibration(calibration)
    else:
        calibration_path = None
        cameras = list(calibration)
        first = Path(videos[0]).parent if len(videos) else Path()
        check_cameras(cameras, first)
    paths = match_views(videos, cameras, overrides, calibration_path)
    skips = _offsets(offsets, cameras)

    counts, rates, stated = [], [], []
    for camera, path in zip(cameras, paths, strict=True):
        with open_video(path) as source:
            _check_size(camera, path, (source.width, source.height))
            counts.append(int(source.n_frames))
            rates.append(float(source.fps))
            stated.append(not source.fps_assumed)

    fps = _check_rates(cameras, paths, rates, stated)
    n_frames = _common_frames(cameras, counts, skips)
    return Session(
        cameras=list(cameras),
        videos=paths,
        offsets=skips,
        n_frames=n_frames,
        fps=fps,
        calibration=calibration_path,
    )


def _offsets(
    offsets: Sequence[int] | Mapping[str, int] | None, cameras: Sequence[Camera]
) -> tuple[int, ...]:
    """One non-negative integer offset per camera, from a sequence, a mapping or None."""
    names = [c.name for c in cameras]
    fix = (
        "Give one whole number of frames, 0 or more, per camera, e.g. --offsets "
        f"{names[0]}=3 (cameras: {', '.join(names)})."
    )
    if offsets is None:
        return (0,) * len(cameras)
    if isinstance(offsets, Mapping):
        unknown = [str(k) for k in offsets if k not in names]
        if unknown:
            raise ViewsError(
                f"offsets name camera {unknown[0]!r}, which the calibration does not have.", fix
            )
        values = [offsets.get(n, 0) for n in names]
    else:
        values = list(offsets)
        if len(values) != len(names):
            raise ViewsError(f"{len(values)} offsets for {len(names)} cameras.", fix)
    for name, value in zip(names, values, strict=True):
        whole = isinstance(value, int | np.integer) and not isinstance(value, bool)
        if not whole or value < 0:
            raise ViewsError(f"offset of camera {name!r} is {value!r}.", fix)
    return tuple(int(v) for v in values)


def _check_size(camera: Camera, path: Path, size: tuple[int, int]) -> None:
    """The video's ``(width, height)`` is its camera's calibrated size."""
    width, height = camera.size
    if tuple(size) == (width, height):
        return
    problem = (
        f"camera {camera.name!r}: its video {path} is {size[0]}x{size[1]} pixels (width x "
        f"height), but the camera was calibrated at {width}x{height}"
    )
    if tuple(size) == (height, width):
        raise ViewsError(
            problem + ": width and height are swapped, the video is rotated by 90 degrees.",
            "Use the videos the calibration was made with (not rotated), or calibrate the "
            "rotated videos.",
        )
    scale = size[0] / width
    if abs(size[1] / height - scale) < 1e-3:
        raise ViewsError(
            problem + f": the video is scaled by {scale:.4g}.",
            "Use the videos the calibration was made with, or rescale the calibration by "
            f"{scale:.4g} (size, fx and fy times {scale:.4g}; cx becomes (cx + 0.5) * "
            f"{scale:.4g} - 0.5, cy likewise).",
        )
    raise ViewsError(
        problem + ".",
        "Use the videos the calibration was made with, or rescale or redo the calibration "
        "for these videos.",
    )


def _check_rates(
    cameras: Sequence[Camera], paths: list[Path], rates: list[float], stated: list[bool]
) -> float:
    """The session's frame rate; the views' stated rates agree within :data:`FPS_TOLERANCE`."""
    with_rate = [v for v, s in enumerate(stated) if s]
    if not with_rate:
        return rates[0]
    first = with_rate[0]
    for v in with_rate[1:]:
        if abs(rates[v] - rates[first]) > FPS_TOLERANCE * rates[first]:
            raise ViewsError(
                f"camera {cameras[first].name!r} runs at {rates[first]:.4g} fps "
                f"({paths[first].name}) but camera {cameras[v].name!r} at {rates[v]:.4g} fps "
                f"({paths[v].name}); the videos of a session must be synchronised "
                "recordings at one frame rate.",
                "Pass videos recorded together by synchronised cameras.",
            )
    return rates[first]


def _common_frames(cameras: Sequence[Camera], counts: list[int], offsets: tuple[int, ...]) -> int:
    """Frames common to all views after the offsets (within :data:`FRAME_COUNT_TOLERANCE`)."""
    left = [n - o for n, o in zip(counts, offsets, strict=True)]
    for camera, n, o in zip(cameras, counts, offsets, strict=True):
        if n - o < 1:
            raise ViewsError(
                f"camera {camera.name!r}: the offset of {o} frames skips all {n} frames of "
                "its video.",
                "Pass a smaller offset for this camera.",
            )
    short, long = int(np.argmin(left)), int(np.argmax(left))
    if left[long] - left[short] > FRAME_COUNT_TOLERANCE:

        def view(v: int) -> str:
            return f"camera {cameras[v].name!r} has {left[v]} frames after skipping {offsets[v]}"

        raise ViewsError(
            f"{view(long)} but {view(short)}; synchronised views have the same number of frames.",
            "Trim the videos to the same span, or pass offsets (--offsets NAME=FRAMES: "
            "frames to skip at the start of a view) that line them up.",
        )
    return left[short]
