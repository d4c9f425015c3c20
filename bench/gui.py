"""napari plugin responsiveness. Prints one JSON line.

Measured on the shared open-field video (640x480, 2330 frames), skipped when it is absent:

* ``step_ms_median`` / ``step_ms_p95``: stepping one frame forward
  (``viewer.dims.set_current_step`` + processing Qt events) with the video, keypoints,
  trajectories and heatmaps shown, from a results file made with a two-step checkpoint;
* ``train_start_ms``: pressing *Start* in the Train widget until control returns;
* ``hour_open_s`` / ``hour_memory_mb``: opening a one-hour video (the clip looped with
  ``ffmpeg -stream_loop -c copy``) with fake keypoints for 108000 frames (10 keypoints),
  and the resident memory this adds to an empty viewer (in a fresh process). The frame
  index of the hour-long file is built before the measurement (it is cached on disk),
  so ``hour_open_s`` is the time of a second opening.

Run it where napari can draw (``xvfb-run -a python bench/gui.py`` on a machine without a
screen): the viewer is then a shown napari window, and stepping includes vispy's upload
and drawing. Without any display Qt falls back to its offscreen platform, which has no
OpenGL; the viewer is then napari's ``ViewerModel`` (layers sliced as in the application,
nothing drawn) and ``"viewer"`` in the JSON says so.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
DRAWN = os.environ.get("QT_QPA_PLATFORM") != "offscreen"

SHARED_VIDEO = Path(__file__).resolve().parents[2] / "shared/data/dlc_openfield/videos/m3v1mp4.mp4"
HOUR_S = 3600
N_STEPS = 200
N_FAKE_KEYPOINTS = 10


def _process_events() -> None:
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()


def _viewer():
    """A napari window where Qt can draw; offscreen (no OpenGL) the same viewer model."""
    from npe2 import PluginManager
    from qtpy.QtWidgets import QApplication

    QApplication.instance() or QApplication([])
    PluginManager.instance().discover()
    if not DRAWN:
        from napari.components import ViewerModel

        return ViewerModel()
    import napari

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1280, 900)
    return viewer


def _close(viewer) -> None:
    """Close a napari window (a window left open at exit can crash the interpreter)."""
    if DRAWN:
        viewer.close()


def make_results(video: Path, folder: Path) -> Path:
    """A results file with heatmaps from a checkpoint trained for two steps."""
    from bkind_model.config import Config
    from bkind_model.infer.extraction import extract_to_result
    from bkind_model.train.loop import Trainer

    trainer = Trainer([video], folder / "run", Config(steps=2), resume=False)
    for _ in trainer.run():
        pass
    path = folder / "openfield.bkind.h5"
    extract_to_result(trainer.checkpoint_path, video, path, heatmaps=True)
    return path


def measure_stepping(results: Path) -> dict:
    """Median and 95th percentile of one-frame steps with every layer shown."""
    import numpy as np

    viewer = _viewer()
    viewer.open(str(results), plugin="napari-bkind")
    kinds = sorted(type(layer).__name__ for layer in viewer.layers)
    start = 1000
    viewer.dims.set_current_step(0, start)
    _process_events()
    times = []
    for t in range(start + 1, start + 1 + N_STEPS):
        begin = time.perf_counter()
        viewer.dims.set_current_step(0, t)
        _process_events()
        times.append((time.perf_counter() - begin) * 1000)
    _close(viewer)
    return {
        "step_ms_median": round(float(np.median(times)), 2),
        "step_ms_p95": round(float(np.percentile(times, 95)), 2),
        "step_layers": kinds,
    }


def measure_train_start(video: Path, folder: Path) -> dict:
    """Milliseconds from pressing Start until control returns to the event loop."""
    from napari_bkind._train_widget import TrainWidget

    viewer = _viewer()
    viewer.open(str(video), plugin="napari-bkind")
    widget = TrainWidget(viewer)
    widget.steps.value = 2
    widget.run_folder.value = folder / "start-run"
    begin = time.perf_counter()
    widget.start()
    elapsed = (time.perf_counter() - begin) * 1000
    widget.cancel()
    while widget.task.running:
        _process_events()
        time.sleep(0.01)
    _close(viewer)
    return {"train_start_ms": round(elapsed, 2)}


def make_hour(video: Path, folder: Path) -> tuple[Path, Path]:
    """A one-hour video (the clip looped, no re-encoding) and fake keypoints for it."""
    import imageio_ffmpeg
    import numpy as np

    from bkind_model.io.results import KeypointResult
    from bkind_model.io.video import open_video

    with open_video(video) as clip:
        loops = math.ceil(HOUR_S / (clip.n_frames / clip.fps))
        size = [clip.height, clip.width]
    hour = folder / "hour.mp4"
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    loop = ["-stream_loop", str(loops - 1), "-i", str(video), "-t", str(HOUR_S)]
    subprocess.run([ffmpeg, "-v", "error", "-y", *loop, "-c", "copy", str(hour)], check=True)
    with open_video(hour) as source:  # builds and caches the frame index
        n_frames, fps = source.n_frames, source.fps
    rng = np.random.default_rng(0)
    shape = (n_frames, N_FAKE_KEYPOINTS)
    keypoints = rng.uniform([0, 0], size[::-1], (*shape, 2)).astype(np.float32)
    covariance = np.broadcast_to(np.eye(2, dtype=np.float32) * 9, (*shape, 2, 2))
    metadata = {
        "video_path": str(hour),
        "fps": fps,
        "frame_size": size,
        "keypoint_names": [f"kp{i}" for i in range(N_FAKE_KEYPOINTS)],
    }
    results = KeypointResult(
        keypoints, rng.uniform(1, 50, shape).astype(np.float32), covariance, metadata
    )
    return hour, results.save(folder / "hour.bkind.h5")


def measure_hour_memory(results: Path) -> dict:
    """In this process: open the hour results (video + keypoints) in a viewer, memory added."""
    import psutil

    process = psutil.Process()
    viewer = _viewer()
    _process_events()
    empty = process.memory_info().rss
    begin = time.perf_counter()
    viewer.open(str(results), plugin="napari-bkind")
    viewer.dims.set_current_step(0, 54_000)
    _process_events()
    opened = time.perf_counter() - begin
    added = (process.memory_info().rss - empty) / 2**20
    n_frames = viewer.layers[0].data.shape[0]
    _close(viewer)
    return {
        "hour_frames": n_frames,
        "hour_open_s": round(opened, 2),
        "hour_memory_mb": round(added, 1),
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--hour-memory":
        print(json.dumps(measure_hour_memory(Path(sys.argv[2]))))
        return
    if not SHARED_VIDEO.exists():
        print(json.dumps({"skipped": f"{SHARED_VIDEO} not found"}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ.setdefault("BKIND_CACHE_DIR", str(folder / "cache"))
        out = measure_stepping(make_results(SHARED_VIDEO, folder))
        out |= measure_train_start(SHARED_VIDEO, folder)
        _, hour_results = make_hour(SHARED_VIDEO, folder)
        child = subprocess.run(
            [sys.executable, __file__, "--hour-memory", str(hour_results)],
            capture_output=True,
            text=True,
            check=True,
        )
        out |= json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(out | {"viewer": "napari window" if DRAWN else "ViewerModel (offscreen)"}))


if __name__ == "__main__":
    main()
