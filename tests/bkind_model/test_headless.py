"""The engine and its command line work without napari, Qt, magicgui or npe2."""

import json
import subprocess
import sys

import pytest

from bkind_model.synthetic import ground_truth_path

GUI = ("napari", "magicgui", "npe2", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "superqt")

# Make every GUI package unimportable, as on a cluster that installed `napari-bkind` alone.
BLOCK = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {GUI!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
        return None
sys.meta_path.insert(0, Block())
"""

IMPORT_ALL = (
    BLOCK
    + """
import pkgutil, bkind_model
names = [m.name for m in pkgutil.walk_packages(bkind_model.__path__, "bkind_model.")]
for name in names:
    __import__(name)
print(len(names))
"""
)


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )


def test_every_engine_module_imports_without_gui_packages():
    out = _run(IMPORT_ALL)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 40  # every module of every room


@pytest.mark.slow
def test_the_command_line_runs_without_gui_packages(tiny_video, tmp_path):
    cli = BLOCK + "from bkind_model.cli import main; sys.exit(main(sys.argv[1:]))"
    assert "export" in _run(cli, "--help").stdout
    run = tmp_path / "run"
    train = _run(
        cli,
        "train",
        str(tiny_video),
        "--out",
        str(run),
        "--steps",
        "2",
        "--image-size",
        "64",
        "--gap",
        "4",
        "--keypoints",
        "3",
        "--threads",
        "2",
    )
    assert train.returncode == 0, train.stderr
    results = tmp_path / "tiny.bkind.h5"
    extract = _run(cli, "extract", str(run), str(tiny_video), "--out", str(results))
    assert extract.returncode == 0, extract.stderr
    exported = _run(cli, "export", str(results))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.strip().endswith("tinyDLC_bkind.h5")
    pytest.importorskip("movement")
    for to, ending in (("nwb", "tiny.nwb"), ("csv", "tiny.keypoints.csv")):
        exported = _run(cli, "export", str(results), "--to", to)
        assert exported.returncode == 0, exported.stderr
        assert exported.stdout.strip().endswith(ending)
    scores = _run(cli, "evaluate", str(results), str(ground_truth_path(tiny_video)))
    assert scores.returncode == 0, scores.stderr
    assert "ratio_to_blob" in json.loads(scores.stdout)
