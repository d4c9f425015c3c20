"""Results files (HDF5) and their DeepLabCut export, written and read back for real."""

import h5py
import numpy as np
import pandas as pd
import pytest

from bkind_model.config import Config
from bkind_model.errors import ConfigError
from bkind_model.io.export import default_export_path, export_results, write_dlc
from bkind_model.io.results import FORMAT, KeypointResult, ResultsError, ResultsWriter

T, K = 12, 3
LETTERBOX = {"source_size": [128, 96], "input_size": [64, 64], "scale": 0.5, "pad": [0, 8]}


def _result(n_frames=T, seed=0, **metadata):
    rng = np.random.default_rng(seed)
    keypoints = rng.uniform(0, 96, (n_frames, K, 2)).astype(np.float32)
    confidence = rng.uniform(1, 20, (n_frames, K)).astype(np.float32)
    a = rng.normal(size=(n_frames, K, 2, 2))
    covariance = (a @ np.swapaxes(a, -1, -2)).astype(np.float32)
    return KeypointResult(keypoints, confidence, covariance, metadata)


def _metadata(**changes):
    return {
        "video_path": "/videos/mouse.mp4",
        "fps": 25.0,
        "frame_size": [128, 96],
        "config": Config(n_keypoints=K, image_size=64).to_dict(),
        "checkpoint": "/runs/a/checkpoint.pt",
        "checkpoint_sha256": "ab" * 32,
        "version": "1.2.3",
        "keypoint_names": ["nose", "tail", "paw"],
    } | changes


def _heatmaps(n_frames=T, seed=1):
    maps = np.random.default_rng(seed).random((n_frames, K, 4, 4)).astype(np.float32)
    return (maps / maps.sum((-1, -2), keepdims=True)).astype(np.float16)


# --- KeypointResult -----------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    original = _result(**_metadata(letterbox=LETTERBOX))
    path = original.save(tmp_path / "mouse.bkind.h5")
    assert path == tmp_path / "mouse.bkind.h5"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mouse.bkind.h5"]  # no temp file
    loaded = KeypointResult.load(path)
    assert np.array_equal(loaded.keypoints, original.keypoints)
    assert np.array_equal(loaded.confidence, original.confidence)
    assert np.array_equal(loaded.covariance, original.covariance)
    assert loaded.keypoints.dtype == np.float32
    meta = loaded.metadata
    for key, value in _metadata().items():
        assert meta[key] == value, key
    assert isinstance(meta["config"], dict)  # JSON back to a dict
    assert Config.from_dict(meta["config"]) == Config(n_keypoints=K, image_size=64)
    assert meta["letterbox"] == LETTERBOX
    assert meta["keypoint_names"] == ["nose", "tail", "paw"]  # list of str, not bytes
    assert meta["frame_size"] == [128, 96] and isinstance(meta["fps"], float)
    assert meta["format"] == FORMAT and meta["n_frames"] == meta["frames_done"] == T
    assert (loaded.n_frames, loaded.n_keypoints, loaded.fps) == (T, K, 25.0)
    assert loaded.keypoint_names == ["nose", "tail", "paw"]


def test_nan_keypoints_and_missing_metadata_survive(tmp_path):
    result = _result(video_path="v.mp4", checkpoint=None)  # None values are left out
    result.keypoints[3, 1] = np.nan
    loaded = KeypointResult.load(result.save(tmp_path / "r.h5"))
    assert np.isnan(loaded.keypoints[3, 1]).all()
    assert np.isfinite(np.delete(loaded.keypoints.reshape(-1, 2), 3 * K + 1, axis=0)).all()
    assert "checkpoint" not in loaded.metadata
    assert loaded.keypoint_names == ["kp0", "kp1", "kp2"]  # default names
    assert loaded.fps == 30.0  # default when unknown


def test_heatmaps_are_loaded_only_when_asked(tmp_path):
    result = _result(**_metadata())
    result.heatmaps = _heatmaps()
    path = result.save(tmp_path / "r.h5")
    assert KeypointResult.load(path).heatmaps is None
    maps = KeypointResult.load(path, heatmaps=True).heatmaps
    assert maps.dtype == np.float16 and maps.shape == (T, K, 4, 4)
    assert np.array_equal(maps, result.heatmaps)
    no_maps = _result().save(tmp_path / "plain.h5")
    assert KeypointResult.load(no_maps, heatmaps=True).heatmaps is None


def test_saving_over_a_file_replaces_it(tmp_path):
    path = tmp_path / "r.h5"
    _result(n_frames=30, seed=1).save(path)
    _result(n_frames=T, seed=2).save(path)
    loaded = KeypointResult.load(path)
    assert loaded.n_frames == T
    assert np.array_equal(loaded.keypoints, _result(seed=2).keypoints)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]


def _extracted(path, n_frames=T, metadata=None, heatmaps=True):
    """A results file as extraction writes it: heatmaps, windows and letterbox."""
    metadata = metadata or _metadata(letterbox=LETTERBOX)
    source = _result(n_frames=n_frames, seed=5)
    writer = ResultsWriter(path, n_frames, K, metadata, (4, 4) if heatmaps else None)
    windows = np.arange(n_frames * 2, dtype=np.float32).reshape(n_frames, 2)
    writer.write(
        0,
        source.keypoints,
        source.confidence,
        source.covariance,
        _heatmaps(n_frames) if heatmaps else None,
        windows if heatmaps else None,
    )
    return writer.finish()


def test_save_copies_heatmaps_of_a_source_with_the_same_frames(tmp_path):
    source = _extracted(tmp_path / "extracted.h5")
    edited = KeypointResult.load(source)
    edited.keypoints[0, 0] = [1.0, 2.0]
    out = edited.save(tmp_path / "edited.h5", heatmaps_from=source)
    with h5py.File(out, "r") as f, h5py.File(source, "r") as g:
        assert np.array_equal(f["heatmaps"][()], g["heatmaps"][()])
        assert np.array_equal(f["windows"][()], g["windows"][()])
    loaded = KeypointResult.load(out, heatmaps=True)
    assert loaded.keypoints[0, 0].tolist() == [1.0, 2.0]
    assert np.array_equal(loaded.heatmaps, _heatmaps())
    assert loaded.metadata["letterbox"] == LETTERBOX


def test_saving_edits_over_their_source_keeps_its_heatmaps(tmp_path):
    path = _extracted(tmp_path / "mouse.h5")
    edited = KeypointResult.load(path)
    edited.keypoints += 1.0
    edited.save(path, heatmaps_from=path)
    loaded = KeypointResult.load(path, heatmaps=True)
    assert np.allclose(loaded.keypoints, _result(seed=5).keypoints + 1.0)
    assert np.array_equal(loaded.heatmaps, _heatmaps())
    with h5py.File(path, "r") as f:
        assert f["windows"].shape == (T, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mouse.h5"]


def test_save_ignores_heatmaps_of_other_frames_or_a_missing_source(tmp_path):
    other = _extracted(tmp_path / "other.h5", n_frames=T + 5)
    result = _result(**_metadata())
    out = result.save(tmp_path / "a.h5", heatmaps_from=other)
    with h5py.File(out, "r") as f:
        assert "heatmaps" not in f and "windows" not in f
    assert KeypointResult.load(out, heatmaps=True).heatmaps is None
    result.save(tmp_path / "b.h5", heatmaps_from=tmp_path / "missing.h5")
    assert KeypointResult.load(tmp_path / "b.h5").n_frames == T


def test_save_keeps_its_own_heatmaps_over_a_sources(tmp_path):
    source = _extracted(tmp_path / "src.h5")
    result = _result(**_metadata())
    result.heatmaps = np.full((T, K, 4, 4), 1 / 16, np.float16)
    out = result.save(tmp_path / "own.h5", heatmaps_from=source)
    assert np.array_equal(KeypointResult.load(out, heatmaps=True).heatmaps, result.heatmaps)


# --- ResultsWriter --------------------------------------------------------------------


def _write_half(path, metadata, heatmaps=False):
    full = _result(seed=7)
    writer = ResultsWriter(path, T, K, metadata, (4, 4) if heatmaps else None)
    assert writer.frames_done == 0
    writer.write(0, full.keypoints[:6], full.confidence[:6], full.covariance[:6])
    assert writer.frames_done == 6
    writer.close()
    return full


def test_writer_resumes_an_interrupted_file(tmp_path):
    path = tmp_path / "r.h5"
    full = _write_half(path, _metadata())
    part = tmp_path / ".r.h5.part"
    assert part.is_file() and not path.exists()
    with pytest.raises(ResultsError, match="stopped after 6 of 12") as caught:
        KeypointResult.load(part)
    assert str(part) in str(caught.value)

    writer = ResultsWriter(path, T, K, _metadata())
    assert writer.frames_done == 6
    writer.write(6, full.keypoints[6:], full.confidence[6:], full.covariance[6:])
    assert writer.finish() == path
    writer.close()  # harmless after finish
    assert not part.exists()
    loaded = KeypointResult.load(path)
    assert np.array_equal(loaded.keypoints, full.keypoints)  # first half kept
    assert np.array_equal(loaded.covariance, full.covariance)
    assert loaded.metadata["keypoint_names"] == ["nose", "tail", "paw"]
    # the finished file states its likelihood and what it means
    assert loaded.likelihood is not None and loaded.likelihood.shape == (T, K)
    assert np.array_equal(loaded.likelihoods(), loaded.likelihood)
    assert "stable" in loaded.metadata["likelihood_meaning"]


def test_a_stored_likelihood_round_trips_and_older_files_get_one(tmp_path):
    result = _result(**_metadata())
    older = KeypointResult.load(result.save(tmp_path / "old.h5"))
    assert older.likelihood is None
    computed = older.likelihoods()
    assert computed.shape == (T, K) and ((computed >= 0) & (computed <= 1)).all()
    result.likelihood = np.linspace(0, 1, T * K).reshape(T, K)
    named = KeypointResult.load(result.save(tmp_path / "named.h5"))
    np.testing.assert_allclose(named.likelihoods(), result.likelihood, atol=1e-6)


@pytest.mark.parametrize(
    "changes",
    [
        {"metadata": {"checkpoint_sha256": "cd" * 32}},
        {"metadata": {"video_path": "/videos/other.mp4"}},
        {"n_frames": T + 1},
        {"heatmaps": True},
    ],
    ids=["other-checkpoint", "other-video", "other-length", "heatmaps-now"],
)
def test_writer_starts_over_for_another_run(tmp_path, changes):
    path = tmp_path / "r.h5"
    _write_half(path, _metadata())
    n_frames = changes.get("n_frames", T)
    size = (4, 4) if changes.get("heatmaps") else None
    writer = ResultsWriter(path, n_frames, K, _metadata(**changes.get("metadata", {})), size)
    assert writer.frames_done == 0
    assert np.all(writer.file["keypoints"][()] == 0)  # nothing of the old run
    writer.close()


def test_writer_starts_over_on_a_damaged_part_file(tmp_path):
    path = tmp_path / "r.h5"
    (tmp_path / ".r.h5.part").write_bytes(b"\x89HDF garbage")
    writer = ResultsWriter(path, T, K, _metadata())
    assert writer.frames_done == 0
    writer.close()


# --- errors ---------------------------------------------------------------------------


def test_non_results_files_are_refused_naming_the_file(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(ResultsError, match="HDF5") as caught:
        KeypointResult.load(text)
    assert str(text) in str(caught.value)

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["keypoints"] = np.zeros((2, 1, 2))
        f.attrs["format"] = "something-else"
    with pytest.raises(ResultsError, match="not a bkind results file") as caught:
        KeypointResult.load(other)
    assert str(other) in str(caught.value)

    missing = tmp_path / "missing.h5"
    with pytest.raises(ResultsError, match="not found") as caught:
        KeypointResult.load(missing)
    assert str(missing) in str(caught.value)


# --- DeepLabCut export ----------------------------------------------------------------


def _with_gaps():
    result = _result(**_metadata())
    result.keypoints[2, 0] = np.nan  # a missing keypoint
    result.confidence[4, 1] = np.nan  # a point placed by hand: no confidence
    result.confidence[5, 2] = 1.0  # a uniform heatmap
    return result


def _check_dlc_table(table, result, scorer="bkind"):
    assert list(table.columns.names) == ["scorer", "bodyparts", "coords"]
    assert table.columns.get_level_values("scorer").unique().tolist() == [scorer]
    assert table.columns.get_level_values("bodyparts").unique().tolist() == result.keypoint_names
    assert table.columns.get_level_values("coords").unique().tolist() == ["x", "y", "likelihood"]
    assert table.index.tolist() == list(range(result.n_frames))
    for k, name in enumerate(result.keypoint_names):
        part = table[scorer][name]
        assert np.allclose(part["x"], result.keypoints[:, k, 0], equal_nan=True, atol=1e-4)
        assert np.allclose(part["y"], result.keypoints[:, k, 1], equal_nan=True, atol=1e-4)
    values = table.xs("likelihood", axis=1, level="coords").to_numpy()
    finite = values[np.isfinite(values)]
    assert ((finite >= 0) & (finite <= 1)).all()
    missing = ~np.isfinite(result.keypoints).all(-1)
    assert np.isnan(values[missing]).all() and np.isfinite(values[~missing]).all()
    assert values[4, 1] == 1.0 and values[5, 2] < 0.01  # by hand; a uniform heatmap


def test_dlc_h5_reads_back_with_pandas(tmp_path):
    result = _with_gaps()
    path = write_dlc(result, tmp_path / "mouseDLC_bkind.h5")
    table = pd.read_hdf(path, "df_with_missing")
    _check_dlc_table(table, result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mouseDLC_bkind.h5"]


def test_dlc_csv_reads_back_with_pandas(tmp_path):
    result = _with_gaps()
    path = write_dlc(result, tmp_path / "mouseDLC_bkind.csv", scorer="me")
    table = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    _check_dlc_table(table, result, scorer="me")


def test_dlc_refuses_another_extension(tmp_path):
    with pytest.raises(ConfigError, match=r"\.h5 or \.csv"):
        write_dlc(_result(), tmp_path / "out.json")
    assert list(tmp_path.iterdir()) == []


def test_export_writes_beside_the_results_with_dlc_naming(tmp_path):
    result = _with_gaps()
    results = result.save(tmp_path / "mouse.bkind.h5")
    assert default_export_path(results, "dlc") == tmp_path / "mouseDLC_bkind.h5"
    assert default_export_path(tmp_path / "rat.h5", "dlc") == tmp_path / "ratDLC_bkind.h5"
    out = export_results(results)
    assert out == tmp_path / "mouseDLC_bkind.h5"
    _check_dlc_table(pd.read_hdf(out, "df_with_missing"), result)
    chosen = export_results(results, "dlc", tmp_path / "sub.csv")
    _check_dlc_table(pd.read_csv(chosen, header=[0, 1, 2], index_col=0), result)


def test_export_refuses_an_unknown_format_or_a_non_results_file(tmp_path):
    results = _result().save(tmp_path / "mouse.bkind.h5")
    with pytest.raises(ConfigError, match="sleap"):
        export_results(results, "slp")
    with pytest.raises(ConfigError, match=r"\.h5 or \.csv"):
        export_results(results, "dlc", tmp_path / "out.txt")
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(ResultsError, match=r"notes\.h5"):
        export_results(text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mouse.bkind.h5", "notes.h5"]
