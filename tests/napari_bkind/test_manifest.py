"""The npe2 manifest is valid and its commands import."""

import shutil
import subprocess
import sys
from pathlib import Path


def test_npe2_validate_with_imports():
    npe2 = shutil.which("npe2") or str(Path(sys.executable).with_name("npe2"))
    out = subprocess.run(
        [npe2, "validate", "napari-bkind", "--imports"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in (out.stdout + out.stderr).lower()
