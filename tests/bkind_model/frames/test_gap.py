"""The suggested frame gap follows how fast things move in the video."""

import subprocess
import sys

import numpy as np
import pytest

from bkind_model.frames.gap import measure_motion, suggest_frame_gap
from bkind_model.io.ffmpeg import run_ffmpeg
from bkind_model.io.video import open_video
from bkind_model.io.video_writer import write_video


def _moving_square(path, speed_px, n_frames=150, size=(96, 128)):
    rng = np.random.default_rng(0)
    floor = (rng.random((*size, 1)) * 40 + 150).astype(np.uint8).repeat(3, axis=2)

    def frames():
        for t in range(n_frames):
            frame = floor.copy()
            x = int(10 + (speed_px * t) % (size[1] - 40))
            frame[40:56, x : x + 16] = 30
            frame[44:52, x + 4 : x + 12] = 90  # some inner structure
            yield frame

    return write_video(path, frames(), fps=30)


@pytest.fixture(scope="module")
def slow_and_fast(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gap")
    return _moving_square(folder / "slow.mp4", 0.5), _moving_square(folder / "fast.mp4", 4.0)


def test_motion_grows_with_the_gap(slow_and_fast):
    gaps, motion = measure_motion(open_video(slow_and_fast[0]))
    assert gaps[0] == 1 and len(gaps) == len(motion) > 5
    assert motion[-1] > 2 * motion[0]


def test_faster_animals_get_shorter_gaps(slow_and_fast):
    slow, fast = (suggest_frame_gap(open_video(p)) for p in slow_and_fast)
    assert 1 <= fast < slow
    assert fast <= 4  # 4 px/frame: a 16 px square is well displaced within 4 frames


def _scene(path, fps, seconds=8.0, wheel_hz=0.0):
    """The synthetic animal at ``fps`` (its motion is in seconds), maybe beside a wheel."""
    from bkind_model.synthetic import SyntheticConfig, write_sample

    n_frames = round(seconds * fps)
    config = SyntheticConfig(96, 96, n_frames, fps, seed=3, wheel_hz=wheel_hz)
    write_sample(path, config)
    return path


@pytest.mark.parametrize("fps", [15, 250])
def test_the_gap_in_seconds_does_not_depend_on_the_frame_rate(tmp_path, fps):
    reference = suggest_frame_gap(open_video(_scene(tmp_path / "ref.mp4", 30))) / 30
    seconds = suggest_frame_gap(open_video(_scene(tmp_path / f"at{fps}.mp4", fps))) / fps
    assert reference / 1.6 <= seconds <= reference * 1.6


def test_a_spinning_background_object_does_not_set_the_gap(tmp_path):
    plain = suggest_frame_gap(open_video(_scene(tmp_path / "plain.mp4", 250)))
    # spokes pass every 3 frames: most of the wheel changes within a frame
    wheel = suggest_frame_gap(open_video(_scene(tmp_path / "wheel.mp4", 250, wheel_hz=10)))
    assert plain / 1.6 <= wheel <= plain * 1.6 and wheel > 4


#: Run in a fresh process: its peak resident memory (VmHWM, reset first) is the
#: measurement's, not the suite's.
_PEAK = """
import sys
from bkind_model.frames.gap import measure_motion
from bkind_model.io.video import open_video

def status(field):
    lines = open("/proc/self/status").read().splitlines()
    return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(field))

source = open_video(sys.argv[1])
open("/proc/self/clear_refs", "w").write("5")  # VmHWM starts again at VmRSS
before = status("VmRSS:")
gaps, motion = measure_motion(source, n_windows=2)
print(status("VmHWM:") - before, *gaps)
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_large_frames_are_measured_in_bounded_memory(tmp_path):
    video = tmp_path / "large.mp4"
    source = ["-f", "lavfi", "-i", "testsrc2=size=2000x2000:rate=25", "-frames:v", "10"]
    run_ffmpeg([*source, "-c:v", "libx264", "-preset", "ultrafast", str(video)], video)
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(video)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    grown, *gaps = (int(word) for word in done.stdout.split())
    assert gaps == [1, 2, 3]  # 4 frames of 2000x2000 a window: 470 MB at once before
    assert grown < 200 * 2**20, f"{grown / 2**20:.0f} MB"
