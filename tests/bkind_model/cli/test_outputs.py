"""No command writes over one of its inputs, nor over an existing file without --overwrite.

Each refusal is tried on real files whose bytes are compared afterwards. The refusals come
before any work, so most inputs need not even be valid: that is the point.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bkind_model.cli import main
from bkind_model.io.labels import image_name, write_images
from bkind_model.io.outputs import ExistingFileError, OutputIsInputError, check_output
from bkind_model.io.results import KeypointResult
from bkind_model.io.video import open_video

N_FRAMES = 40


def _file(path: Path, data: bytes = b"precious bytes") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _refused(capsys, argv: list[str], kept: list[Path], says: str) -> str:
    """Run ``bkind argv``: status 2, one line saying ``says``, every ``kept`` file unchanged."""
    before = {path: path.read_bytes() for path in kept}
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bkind: error:") and len(err.splitlines()) == 1, err
    assert says in err, err
    for path, data in before.items():
        assert path.read_bytes() == data, f"{path} was changed"
    return err


INPUT = "input of this command"
EXISTS = "already exists and would be replaced. Pass --overwrite"


@pytest.fixture
def results(tmp_path) -> Path:
    """A real results file of two keypoints over 40 frames (no video needed to export it)."""
    rng = np.random.default_rng(0)
    keypoints = (rng.random((N_FRAMES, 2, 2)) * 60).astype(np.float32)
    metadata = {"frame_size": [64, 96], "fps": 30.0}
    result = KeypointResult(
        keypoints, np.ones((N_FRAMES, 2)), np.tile(np.eye(2), (N_FRAMES, 2, 1, 1)), metadata
    )
    return result.save(tmp_path / "r.bkind.h5")


def test_extract_never_writes_over_its_model_video_or_labels(tmp_path, capsys):
    run = tmp_path / "run"
    checkpoint = _file(run / "checkpoint.pt", b"trained weights")
    video = _file(tmp_path / "v.mp4", b"the recording")
    labels = _file(tmp_path / "CollectedData_me.h5", b"hours of labelling")
    extract = ["extract", run, video, "--out"]
    _refused(capsys, [*extract, checkpoint, "--overwrite"], [checkpoint], INPUT)
    _refused(capsys, [*extract, video, "--overwrite"], [video], INPUT)
    _refused(capsys, [*extract, tmp_path / "run" / ".." / "v.mp4"], [video], INPUT)
    os.link(video, tmp_path / "alias.mp4")  # another name of the same file
    _refused(capsys, [*extract, tmp_path / "alias.mp4", "--overwrite"], [video], INPUT)
    _refused(capsys, [*extract, labels], [labels], EXISTS)
    # many videos: each output is checked before a cluster starts
    other = _file(tmp_path / "w.mp4", b"another recording")
    old = _file(tmp_path / "out" / "w.bkind.h5", b"not results")
    many = ["extract", run, video, other, "--out", tmp_path / "out"]
    _refused(capsys, many, [old], EXISTS)


def test_extract_resumes_from_a_partial_file(tmp_path):
    """An unfinished extraction leaves ``.<name>.part``, not the output: a rerun may go on."""
    _file(tmp_path / ".v.bkind.h5.part", b"half the frames")
    assert check_output(tmp_path / "v.bkind.h5", [tmp_path / "v.mp4"]) == tmp_path / "v.bkind.h5"


def test_extract3d_never_writes_over_its_checkpoint_videos_or_calibration(tmp_path, capsys):
    run = tmp_path / "run3d"
    checkpoint = _file(run / "checkpoint.pt", b"trained 3D weights")
    views = [_file(tmp_path / f"cam_{c}.mp4", f"camera {c}".encode()) for c in "ab"]
    calibration = _file(tmp_path / "calibration.toml", b"[cam_0]\nname = 'a'\n")
    truth = _file(tmp_path / "ground_truth_3d.h5", b"measured joints")
    done = _file(run / "keypoints3d.h5", b"an earlier extraction")
    base = ["extract3d", run, *views, "--calibration", calibration]
    for target in (checkpoint, views[0], calibration):
        _refused(capsys, [*base, "--out", target, "--overwrite"], [target], INPUT)
    other = _file(tmp_path / "elsewhere" / "side.mp4", b"side view")
    swapped = [*base, "--views", f"side={other}", "--out", other, "--overwrite"]
    _refused(capsys, swapped, [other], INPUT)
    _refused(capsys, [*base, "--out", truth], [truth], EXISTS)
    _refused(capsys, base, [done], EXISTS)  # the default output, in the run folder


def test_export_refuses_its_input_and_existing_files(results, tmp_path, capsys):
    labels = _file(tmp_path / "CollectedData_copy.csv", b"scorer,me\n")
    _refused(capsys, ["export", results, "--out", results, "--overwrite"], [results], INPUT)
    _refused(capsys, ["export", results, "--to", "csv", "--out", labels], [labels], EXISTS)
    assert main(["export", str(results), "--to", "csv", "--out", str(labels), "--overwrite"]) == 0
    assert capsys.readouterr().out.strip() == str(labels)
    assert len(pd.read_csv(labels)) == N_FRAMES * 2
    default = results.with_name("rDLC_bkind.h5")
    assert main(["export", str(results)]) == 0
    _refused(capsys, ["export", results], [default], EXISTS)  # the default name, again


def test_the_old_force_still_replaces_with_a_note(results, tmp_path, capsys):
    out = _file(tmp_path / "k.csv", b"old export")
    assert main(["export", str(results), "--to", "csv", "--out", str(out), "--force"]) == 0
    assert "--force is now --overwrite" in capsys.readouterr().err
    assert len(pd.read_csv(out)) == N_FRAMES * 2


def test_export3d_refuses_its_input_and_existing_files(tmp_path, capsys):
    keypoints3d = _file(tmp_path / "k3.h5", b"3D keypoints")
    labels = _file(tmp_path / "cd2.csv", b"scorer,me\n")
    export = ["export3d", keypoints3d, "--out"]
    _refused(
        capsys, [*export, keypoints3d, "--to", "anipose", "--overwrite"], [keypoints3d], INPUT
    )
    _refused(capsys, [*export, labels, "--to", "csv"], [labels], EXISTS)


def test_overlay_name_propose_and_behaviour_refuse_their_inputs(results, tmp_path, capsys):
    labels = _file(tmp_path / "CollectedData_me.csv", b"scorer,me\n")
    model = _file(tmp_path / "behaviour.model", b"a trained classifier")
    intervals = _file(tmp_path / "bouts.csv", b"video,behaviour,start_frame,end_frame\n")
    kept = [results, labels, model, intervals]
    commands = [
        ["overlay", results, "--out", results],
        ["name", results, labels, "--out", labels],
        ["name", results, labels, "--out", results],
        ["propose", results, "--out", results],
        ["propose", results, "--exclude", labels, "--out", labels],
        ["behaviour", "train", results, "--labels", intervals, "--out", intervals],
        ["behaviour", "predict", model, results, "--out", model],
        ["behaviour", "predict", model, results, "--out", results],
        ["motifs", results, "--out", results],
    ]
    for command in commands:
        _refused(capsys, [*command, "--overwrite"], kept, INPUT)


def test_name_and_propose_refuse_existing_outputs_before_the_work(results, tmp_path, capsys):
    labels = _file(tmp_path / "CollectedData_me.csv", b"scorer,me\n")
    named = _file(tmp_path / "r.named.bkind.h5", b"an earlier naming")
    _refused(capsys, ["name", results, labels], [named], EXISTS)
    folder = tmp_path / "labeled-data" / "v"
    machine = _file(folder / "machinelabels-iter0.h5", b"corrections in progress")
    out = ["--out", tmp_path / "new.named.bkind.h5", "--machinelabels", folder]
    _refused(capsys, ["name", results, labels, *out], [machine], EXISTS)
    assert not (tmp_path / "new.named.bkind.h5").exists()
    frames = _file(tmp_path / "frames.csv", b"frame,time_s\n1,0.03\n")
    _refused(capsys, ["propose", results, "--out", frames], [frames], EXISTS)
    csv_out = _file(tmp_path / "ethogram.csv", b"frame,walk\n")
    _refused(capsys, ["motifs", results, "--out", csv_out], [csv_out], EXISTS)


def test_extracted_pngs_keep_a_different_image_of_the_same_name(tiny_video, tmp_path):
    folder = tmp_path / "labeled-data" / "tiny"
    first = write_images(tiny_video, np.array([3, 5]), folder)
    n_frames = open_video(tiny_video).n_frames
    assert [p.name for p in first] == [image_name(3, n_frames), image_name(5, n_frames)]
    same = first[1].stat().st_mtime_ns
    Image.new("RGB", (128, 128), "red").save(first[0])  # another image under that name
    before = first[0].read_bytes()
    with pytest.raises(ExistingFileError, match=r"img003\.png: already exists"):
        write_images(tiny_video, np.array([5, 3, 7]), folder)
    assert first[0].read_bytes() == before  # nothing written, the new frame neither
    assert not (folder / image_name(7, n_frames)).exists()
    write_images(tiny_video, np.array([5, 3]), folder, overwrite=True)
    assert np.array_equal(np.asarray(Image.open(first[0])), open_video(tiny_video)[3])
    assert first[1].stat().st_mtime_ns == same  # it held the frame already: left as it is


def test_check_output_in_python(tmp_path):
    video = _file(tmp_path / "v.mp4")
    with pytest.raises(OutputIsInputError, match=r"v\.mp4: is an input"):
        check_output(tmp_path / "." / "v.mp4", [None, video], overwrite=True)
    with pytest.raises(ExistingFileError, match=r"a tick in 'Replace'"):
        check_output(video, option="a tick in 'Replace'")
    with pytest.raises(ExistingFileError, match="is a folder"):
        check_output(tmp_path, overwrite=True)
    assert check_output(video, [tmp_path / "w.mp4"], overwrite=True) == video
