"""The engine must never pull in napari or a Qt binding."""

import subprocess
import sys

CHECK = """
import sys
import bkind_model, bkind_model.cli, bkind_model.train.loop, bkind_model.infer.extraction
import bkind_model.evaluate.regression, bkind_model.io.video, bkind_model.synthetic, bkind_model.cli.demo
bad = sorted(m for m in sys.modules
             if m.split('.')[0] in {'napari', 'magicgui', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'superqt'})
print(','.join(bad))
"""


def test_importing_the_engine_imports_no_gui_module():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"GUI modules imported: {out.stdout}"
