"""DeepLabCut ``.h5`` files: ours read by DeepLabCut's pandas 2, strangers' never run code.

DeepLabCut 3.0.2 installs pandas 2.3.3; our environment has pandas 3. The read-back runs in
a subprocess on pandas 2.3.3 installed once into pytest's cache folder (skipped when the
package registry cannot be reached).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from bkind_model.cli import main
from bkind_model.io.export import export_results
from bkind_model.io.labels import LabelsError, load_labels, write_labels
from bkind_model.io.results import KeypointResult

PANDAS_2 = "2.3.3"  # what DeepLabCut 3.0.2 installs
NAMES = ["snout", "left_ear", "tail_base"]
T = 40


@pytest.fixture(scope="session")
def pandas2(pytestconfig, tmp_path_factory) -> Path:
    """A folder holding pandas 2.3.3 (and pytz, which it needs), for ``PYTHONPATH``.

    Kept in pytest's cache folder, so only the first run installs it (a temporary folder
    when the cache is off).
    """
    name = f"pandas-{PANDAS_2}"
    cache = getattr(pytestconfig, "cache", None)
    folder = cache.mkdir(name) if cache is not None else tmp_path_factory.mktemp(name)
    if not (folder / "pandas" / "__init__.py").is_file():
        staging = folder.with_name(folder.name + f".{os.getpid()}")
        install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        install += ["--retries", "1", "--timeout", "20"]
        try:
            done = subprocess.run(
                [*install, "--target", str(staging), f"pandas=={PANDAS_2}", "pytz"],
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"pandas {PANDAS_2} could not be installed in 5 minutes")
        if done.returncode != 0:
            pytest.skip(f"pandas {PANDAS_2} could not be installed: {done.stderr[-300:]}")
        for item in staging.iterdir():
            if not (folder / item.name).exists():
                item.rename(folder / item.name)
    return folder


@pytest.fixture
def results(tmp_path) -> KeypointResult:
    rng = np.random.default_rng(1)
    keypoints = (100 + np.cumsum(rng.normal(0, 2, (T, len(NAMES), 2)), axis=0)).astype(np.float32)
    keypoints[5, 1] = np.nan
    confidence = rng.uniform(20, 200, keypoints.shape[:2]).astype(np.float32)
    covariance = np.broadcast_to(np.eye(2, dtype=np.float32), (*keypoints.shape[:2], 2, 2))
    metadata = {"video_path": str(tmp_path / "m.mp4"), "fps": 30.0, "keypoint_names": NAMES}
    path = KeypointResult(keypoints, confidence, covariance.copy(), metadata).save(
        tmp_path / "m.bkind.h5"
    )
    return KeypointResult.load(path)


def _collected_data(folder: Path) -> tuple[Path, np.ndarray, list[str]]:
    """A CollectedData file written by us: (path, (N, J, 2) joints, image paths)."""
    joints = np.array([[[10.0, 20.0], [30.0, 40.0], [5.5, 6.25]]] * 3)
    joints[1, 0] = np.nan
    images = [f"labeled-data/m/img{i:03d}.png" for i in (3, 17, 29)]
    path = write_labels(folder / "CollectedData_me.h5", joints, NAMES, images, "me")
    return path, joints, images


_PANDAS_2_READER = """
import json, sys
import numpy as np, pandas as pd
assert pd.__version__.startswith("2"), pd.__version__
out = {}
for path in sys.argv[1:3]:
    frame = pd.read_hdf(path)  # as DeepLabCut's load_analyzed_data: no key, one table
    same = pd.read_hdf(path, "df_with_missing")
    assert frame.equals(same)
    out[path] = {
        "version": pd.__version__,
        "names": list(frame.columns.names),
        "columns": [list(c) for c in frame.columns],
        "index": [list(i) if isinstance(i, tuple) else i for i in frame.index.tolist()],
        "values": np.where(np.isnan(frame.to_numpy()), None, frame.to_numpy()).tolist(),
    }
# What DeepLabCut itself writes: predictions as "table", labels as "fixed".
columns = pd.MultiIndex.from_product(
    [["DLC_resnet50"], ["snout", "tail_base"], ["x", "y", "likelihood"]],
    names=["scorer", "bodyparts", "coords"],
)
table = np.arange(30, dtype=float).reshape(5, 6)
pd.DataFrame(table, columns=columns).to_hdf(
    sys.argv[3], key="df_with_missing", format="table", mode="w"
)
print(json.dumps(out))
"""


def test_our_dlc_files_read_in_pandas_2_and_theirs_in_ours(pandas2, results, tmp_path):
    exported = export_results(results.path, "dlc")
    labels, joints, images = _collected_data(tmp_path / "labeled-data" / "m")
    theirs = tmp_path / "mDLC_resnet50.h5"
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PANDAS_2_READER), str(exported), str(labels),
         str(theirs)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(pandas2)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    read = json.loads(run.stdout)

    export = read[str(exported)]
    assert export["version"] == PANDAS_2
    assert export["names"] == ["scorer", "bodyparts", "coords"]
    assert export["columns"][:3] == [["bkind", "snout", c] for c in ("x", "y", "likelihood")]
    assert export["index"] == list(range(T))
    values = np.array(export["values"], dtype=float).reshape(T, len(NAMES), 3)
    np.testing.assert_allclose(values[..., :2], results.keypoints, atol=1e-4)
    likelihood = results.likelihoods()
    likelihood[5, 1] = np.nan
    np.testing.assert_allclose(values[..., 2], likelihood, atol=1e-6)

    collected = read[str(labels)]
    assert collected["index"] == [image.split("/") for image in images]
    assert collected["columns"][-1] == ["me", "tail_base", "y"]
    values = np.array(collected["values"], dtype=float).reshape(joints.shape)
    np.testing.assert_array_equal(values, joints)

    # A predictions table pandas 2 wrote (pickled plain-data attributes) passes our check.
    table = load_labels(theirs)
    assert table.names == ["snout", "tail_base"]
    np.testing.assert_array_equal(table.joints[2, 1], [15.0, 16.0])  # row 2: 12 ... 17


class _Payload:
    """Unpickled, it writes the file ``marker``: code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _plant(path: Path, place: str, marker: Path) -> None:
    """Put a pickle that runs code where PyTables unpickles: an attribute or object rows."""
    if place == "object rows":
        import tables

        with tables.open_file(str(path), "a") as f:
            f.remove_node("/df_with_missing", "block0_values")
            rows = f.create_vlarray("/df_with_missing", "block0_values", tables.ObjectAtom())
            rows.append(_Payload(marker))
        return
    group, name = {
        "fixed attribute": ("df_with_missing", "pandas_type"),
        "table attribute": ("df_with_missing/table", "values_block_0_kind"),
    }[place]
    with h5py.File(path, "a") as f:
        del f[group].attrs[name]
        f[group].attrs[name] = np.bytes_(pickle.dumps(_Payload(marker), 0))


@pytest.mark.parametrize("place", ["fixed attribute", "table attribute", "object rows"])
def test_a_pickle_planted_in_a_labels_file_never_runs(place, tmp_path):
    marker = tmp_path / "code-ran"
    path, _, images = _collected_data(tmp_path)
    if place == "table attribute":  # a predictions table, as DeepLabCut writes them
        frame = pd.read_hdf(path).set_axis(images, axis=0)
        frame.to_hdf(path, key="df_with_missing", format="table", mode="w")
        assert load_labels(path).frames == images
    _plant(path, place, marker)
    try:  # the payload is live: pandas alone runs it
        pd.read_hdf(path)
    except Exception:  # pandas may fail after running it
        pass
    assert marker.exists()
    marker.unlink()

    with pytest.raises(LabelsError) as refused:
        load_labels(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "pickled Python object that would run code" in message and "builtin" in message
    assert not marker.exists()


def test_every_command_reading_labels_refuses_the_planted_file(results, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "CollectedData_evil.h5"
    path, _, _ = _collected_data(tmp_path)
    path.rename(evil)
    _plant(evil, "fixed attribute", marker)
    commands = {
        "evaluate": ["evaluate", str(results.path), str(evil)],
        "name": ["name", str(results.path), str(evil), "--out", str(tmp_path / "n.bkind.h5")],
        "propose": ["propose", str(results.path), "-n", "3", "--exclude", str(evil)],
    }
    for command, argv in commands.items():
        assert main(argv) == 2, command
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"bkind: error: {evil}: attribute 'pandas_type'"), (command, err)
        assert "\n" not in err and not marker.exists(), command
    assert not (tmp_path / "n.bkind.h5").exists()


def test_links_and_foreign_files_are_refused_in_one_line(tmp_path):
    path, _, _ = _collected_data(tmp_path)
    with h5py.File(path, "a") as f:
        f["elsewhere"] = h5py.ExternalLink("other.h5", "/df_with_missing")
    with pytest.raises(LabelsError, match=r"/elsewhere is a link to another object or file"):
        load_labels(path)
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(LabelsError, match=r"notes\.h5: not an HDF5 file"):
        load_labels(text)
