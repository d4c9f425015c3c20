"""Make the README's screenshots: the demo's keypoints, and every dock widget beside a video.

Usage (on a machine without a screen)::

    bkind demo --out bkind-demo             # trains and writes bkind-demo/*.bkind.h5
    xvfb-run -a python docs/screenshot.py bkind-demo docs/napari_screenshot.png
    xvfb-run -a python docs/screenshot.py --widgets VIDEO docs/widgets

The first opens the demo's results (video, keypoints, trajectories, heatmaps) with the
*Keypoints* and *Train* dock widgets, on a frame where the animal is in full view. The
second docks each widget in turn beside ``VIDEO`` in a 1280x900 window, as a first-time
user sees it, and writes ``docs/widgets/<widget>.png``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def dock_widgets() -> list[str]:
    """The dock widgets as the Plugins menu names them, from the plugin's manifest."""
    from npe2 import PluginManifest

    import napari_bkind

    manifest = PluginManifest.from_file(Path(napari_bkind.__file__).with_name("napari.yaml"))
    return [widget.display_name for widget in manifest.contributions.widgets or []]


def _settle() -> None:
    from qtpy.QtWidgets import QApplication

    for _ in range(50):
        QApplication.processEvents()


def main(demo: Path, out: Path, frame: int = 240) -> None:
    import napari

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
    _settle()
    viewer.screenshot(str(out), canvas_only=False, flash=False)
    print(f"wrote {out}")


def widgets(video: Path, folder: Path) -> None:
    """One screenshot per dock widget, docked beside ``video`` in a 1280x900 window."""
    import napari

    folder.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1280, 900)
    viewer.open(str(video), plugin="napari-bkind")
    for name in dock_widgets():
        dock, _ = viewer.window.add_plugin_dock_widget("napari-bkind", name)
        viewer.reset_view()
        _settle()
        out = folder / f"{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}.png"
        viewer.screenshot(str(out), canvas_only=False, flash=False)
        print(f"wrote {out}")
        viewer.window.remove_dock_widget(dock)
    viewer.close()


if __name__ == "__main__":
    if sys.argv[1] == "--widgets":
        widgets(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main(Path(sys.argv[1]), Path(sys.argv[2]))
