"""Make the README's screenshot: napari with keypoints discovered on the synthetic sample.

Usage (on a machine without a screen)::

    bkind demo --out bkind-demo             # trains and writes bkind-demo/*.bkind.h5
    xvfb-run -a python docs/screenshot.py bkind-demo docs/napari_screenshot.png

It opens the demo's results (video, keypoints, trajectories, heatmaps) with the
*Keypoints* and *Train* dock widgets, on a frame where the animal is in full view.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(demo: Path, out: Path, frame: int = 240) -> None:
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    viewer.open(str(demo / "synthetic_test.bkind.h5"), plugin="napari-bkind")
    for widget in ("Keypoints", "Train"):
        viewer.window.add_plugin_dock_widget("napari-bkind", widget)
    for layer in viewer.layers:
        if layer.name.endswith("heatmaps"):
            layer.opacity = 0.45
    viewer.layers.selection.active = next(
        layer for layer in viewer.layers if layer.name.endswith("keypoints")
    )
    viewer.dims.set_current_step(0, frame)
    viewer.reset_view()
    for _ in range(50):
        QApplication.processEvents()
    viewer.screenshot(str(out), canvas_only=False, flash=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
