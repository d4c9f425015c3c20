"""A full disk never replaces a good file: real small filesystems (tmpfs), filled up."""

from __future__ import annotations

import errno
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bkind_model.config import Config
from bkind_model.errors import DiskFullError, WriteError
from bkind_model.infer.extraction import extract_to_result
from bkind_model.io.export import write_dlc
from bkind_model.io.results import KeypointResult, ResultsWriter
from bkind_model.io.video import open_video
from bkind_model.train.loop import Trainer

#: The disks are sized for the small encoder's checkpoints.
TINY = dict(
    encoder="small", image_size=64, batch_size=4, frame_gap=4, n_keypoints=3, width=16, threads=2
)


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs (skipped where this process may not mount)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root); the fault tests cover it")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path, leave_kb: int = 0) -> None:
    """Fill ``folder``'s filesystem, leaving about ``leave_kb`` KiB free."""
    free = shutil.disk_usage(folder).free - leave_kb * 1024
    with open(folder / "filler", "wb") as handle:
        while free > 0:
            chunk = min(free, 1 << 20)
            try:
                handle.write(b"\0" * chunk)
                handle.flush()
            except OSError:
                break
            free -= chunk


@pytest.fixture(scope="module")
def trained(tiny_video, tmp_path_factory):
    run = tmp_path_factory.mktemp("good-run")
    trainer = Trainer([tiny_video], run, Config(steps=2, **TINY))
    for _ in trainer.run():
        pass
    trainer.close()
    results = extract_to_result(run, tiny_video, run / "good.bkind.h5")
    return run / "checkpoint.pt", results


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.slow
def test_extraction_onto_a_full_disk_keeps_the_previous_results(small_disk, trained, tiny_video):
    checkpoint, results = trained
    good = small_disk / "res.h5"
    shutil.copy(results.path, good)
    before = good.read_bytes()
    _fill(small_disk)
    with pytest.raises(DiskFullError, match=r"disk full at .*(res\.h5|disk): free"):
        extract_to_result(checkpoint, tiny_video, good)
    assert good.read_bytes() == before and _leftovers(small_disk) == []
    np.testing.assert_array_equal(KeypointResult.load(good).keypoints, results.keypoints)


@pytest.mark.slow
def test_results_that_fill_the_disk_midway_keep_the_previous_file(small_disk, trained):
    _, results = trained
    good = small_disk / "res.h5"
    results.save(good)
    before = good.read_bytes()
    _fill(small_disk, leave_kb=3500)
    metadata = {"checkpoint_sha256": "x", "video_path": "v.mp4"}
    writer = ResultsWriter(good, 40_000, 3, metadata)
    block = np.zeros((2000, 3, 2), np.float32)
    with pytest.raises(DiskFullError, match=r"disk full at .*res\.h5: free \d+ MB"):
        for start in range(0, 40_000, 2000):
            writer.write(start, block, block[..., 0], np.zeros((2000, 3, 2, 2), np.float32))
        writer.finish()
    assert good.read_bytes() == before
    stored = writer.frames_done
    (small_disk / "filler").unlink()  # space again: the partial file resumes where it stopped
    again = ResultsWriter(good, 40_000, 3, metadata)
    assert again.frames_done == stored > 0
    again.close()


@pytest.mark.slow
def test_a_checkpoint_onto_a_full_disk_keeps_the_last_one(small_disk, trained, tiny_video):
    checkpoint, _ = trained
    run = small_disk / "run"
    run.mkdir()
    shutil.copy(checkpoint, run / "checkpoint.pt")
    before = (run / "checkpoint.pt").read_bytes()
    trainer = Trainer([tiny_video], run, Config(steps=4, **TINY))  # resumes at step 2
    _fill(small_disk, leave_kb=8)  # room for the write test, not for a checkpoint
    with pytest.raises(DiskFullError, match=r"checkpoint\.pt"):
        for _ in trainer.run():
            pass
    trainer.close()
    assert (run / "checkpoint.pt").read_bytes() == before
    assert _leftovers(run) == []


@pytest.mark.slow
def test_a_run_folder_on_a_full_disk_is_refused_before_any_work(small_disk, tiny_video):
    _fill(small_disk)
    with pytest.raises(WriteError, match=r"run folder|disk full"):
        Trainer([tiny_video], small_disk / "run", Config(steps=2, **TINY))


def test_frame_cache_and_export_on_a_full_disk(small_disk, trained, tiny_video, monkeypatch):
    _, results = trained
    export = small_disk / "keypoints.h5"
    write_dlc(results, export)
    before = export.read_bytes()
    _fill(small_disk)
    with pytest.raises(DiskFullError):
        write_dlc(results, export)
    assert export.read_bytes() == before
    monkeypatch.setenv("BKIND_CACHE_DIR", str(small_disk / "cache"))
    from bkind_model.frames.cache import FrameCache

    with pytest.warns(UserWarning, match="not cached: disk full"):
        source = open_video(tiny_video)  # the frame index cannot be cached either
    with source, pytest.raises(WriteError):
        FrameCache.build(source, (64, 64))
    assert not list((small_disk / "cache").rglob("*.tmp*"))


def test_a_write_error_anywhere_becomes_a_clear_error(tmp_path, trained, monkeypatch):
    """Where no small filesystem can be mounted: the same path with the error injected."""
    _, results = trained
    target = tmp_path / "res.h5"
    results.save(target)
    before = target.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("bkind_model.io.atomic.os.fsync", full)
    with pytest.raises(DiskFullError, match=r"disk full at .*res\.h5: free"):
        results.save(target)
    assert target.read_bytes() == before and _leftovers(tmp_path) == []
