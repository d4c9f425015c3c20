"""Every dock widget beside a video in a 1280x900 napari window: it fits, nothing is cut off."""

from pathlib import Path

import pytest
from conftest import has_opengl
from npe2 import PluginManifest
from qtpy.QtWidgets import QAbstractSpinBox, QApplication

import napari_bkind

MANIFEST = PluginManifest.from_file(Path(napari_bkind.__file__).with_name("napari.yaml"))
WIDGETS = [widget.display_name for widget in MANIFEST.contributions.widgets or []]
WINDOW = (1280, 900)


@pytest.fixture(scope="module")
def window_with_video(video, qapp):
    """One shown 1280x900 napari window with the video open, shared by the widgets in turn."""
    if not has_opengl():
        pytest.skip("napari windows need an X server (install Xvfb)")
    import napari
    from npe2 import PluginManager

    PluginManager.instance().discover()
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*WINDOW)
    viewer.open(str(video), plugin="napari-bkind")
    yield viewer
    viewer.close()


@pytest.mark.parametrize("name", WIDGETS)
def test_the_widget_fits_a_1280x900_window_beside_a_video(window_with_video, name):
    viewer = window_with_video
    window = viewer.window._qt_window
    dock, _ = viewer.window.add_plugin_dock_widget("napari-bkind", name)
    QApplication.processEvents()
    try:
        assert viewer.dims.axis_labels[0] == "frame"  # the time slider's name
        assert window.height() <= WINDOW[1], "the window had to grow"
        assert dock.minimumSizeHint().height() <= dock.height()
        assert dock.width() <= WINDOW[0] // 2, "the dock takes most of the window"
        for box in dock.findChildren(QAbstractSpinBox):
            if box.isVisible():  # its digits are not cut off
                edit = box.lineEdit()
                needed = edit.fontMetrics().horizontalAdvance(box.text())
                assert needed < edit.contentsRect().width(), (box.toolTip(), box.text())
    finally:
        viewer.window.remove_dock_widget(dock)
        window.resize(*WINDOW)
