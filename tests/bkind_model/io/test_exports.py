"""Every export format read back by the tool its users open it with: values equal, fps kept."""

import numpy as np
import pandas as pd
import pytest

from bkind_model import __version__
from bkind_model.errors import ConfigError, MissingDependencyError
from bkind_model.io.export import (
    FORMATS,
    confidence_definition,
    default_export_path,
    export_results,
    skeleton,
    write_export,
)
from bkind_model.io.results import MOVEMENT_DIMENSIONS, KeypointResult
from bkind_model.pose.likelihood import LIKELIHOOD_MEANING

T, K = 90, 4
FPS = 25.0
NAMES = ["snout", "left_ear", "right_ear", "tail_base"]


@pytest.fixture
def results(tmp_path):
    rng = np.random.default_rng(0)
    keypoints = (200 + np.cumsum(rng.normal(0, 2, (T, K, 2)), axis=0)).astype(np.float32)
    keypoints[7, 2] = np.nan  # a missing keypoint
    confidence = rng.uniform(20, 200, (T, K)).astype(np.float32)
    covariance = np.broadcast_to(np.eye(2, dtype=np.float32) * 3, (T, K, 2, 2)).copy()
    metadata = {
        "video_path": str(tmp_path / "mouse.mp4"),
        "fps": FPS,
        "keypoint_names": NAMES,
        "frame_size": [480, 640],
        "likelihood_meaning": LIKELIHOOD_MEANING,
    }
    path = KeypointResult(keypoints, confidence, covariance, metadata).save(
        tmp_path / "mouse.bkind.h5"
    )
    return KeypointResult.load(path)


def _movement_arrays(ds):
    """movement's (time, space, keypoints, individuals) -> ours (T, K, 2), (T, K)."""
    ds = ds.sel(keypoints=NAMES)  # NWB files keep series by name, not in order
    position = ds.position.values[..., 0].transpose(0, 2, 1)
    return position, ds.confidence.values[..., 0]


def _check(position, confidence, result):
    np.testing.assert_allclose(position, result.keypoints, atol=1e-3)
    expected = result.likelihoods()
    finite = np.isfinite(result.keypoints).all(-1)
    np.testing.assert_allclose(confidence[finite], expected[finite], atol=1e-5)


def test_default_names_sit_beside_the_results(results):
    folder = results.path.parent
    assert {to: default_export_path(results.path, to).name for to in FORMATS} == {
        "dlc": "mouseDLC_bkind.h5",
        "sleap": "mouse.analysis.h5",
        "nwb": "mouse.nwb",
        "nc": "mouse.nc",
        "csv": "mouse.keypoints.csv",
    }
    assert default_export_path(results.path, "nc").parent == folder


def test_movement_dataset_holds_the_keypoints_and_their_likelihood(results):
    pytest.importorskip("movement")
    ds = results.to_movement()
    assert ds.position.dims == ("time", "space", "keypoints", "individuals")
    assert ds.attrs["dimension_names"] == MOVEMENT_DIMENSIONS
    assert list(ds.keypoints.values) == NAMES and ds.attrs["fps"] == FPS
    np.testing.assert_allclose(ds.time.values[:3], np.arange(3) / FPS)
    _check(*_movement_arrays(ds), results)
    assert np.isnan(ds.confidence.values[7, 2, 0])


def test_dlc_export_reads_back_in_movement(results):
    load_poses = pytest.importorskip("movement.io.load_poses")
    path = export_results(results.path, "dlc")
    ds = load_poses.from_dlc_file(path, fps=FPS)
    assert list(ds.keypoints.values) == NAMES
    _check(*_movement_arrays(ds), results)


def test_sleap_export_reads_back_in_sleap_io_and_movement(results):
    sio = pytest.importorskip("sleap_io")
    load_poses = pytest.importorskip("movement.io.load_poses")
    path = export_results(results.path, "sleap")
    labels = sio.load_file(str(path))
    assert [node.name for node in labels.skeletons[0].nodes] == NAMES
    assert len(labels.labeled_frames) == T
    frames = sorted(labels.labeled_frames, key=lambda lf: lf.frame_idx)
    points = np.stack([lf.instances[0].numpy() for lf in frames])
    visible = np.isfinite(results.keypoints).all(-1)
    np.testing.assert_allclose(points[visible], results.keypoints[visible], atol=1e-3)
    assert labels.videos[0].filename == str(results.video_path)
    edges = [(e.source.name, e.destination.name) for e in labels.skeletons[0].edges]
    assert edges == [(NAMES[i], NAMES[j]) for i, j in skeleton(results)]
    assert len(edges) == K - 1
    ds = load_poses.from_sleap_file(path, fps=FPS)
    _check(*_movement_arrays(ds), results)


def test_nwb_export_reads_back_in_pynwb_and_movement(results):
    pynwb = pytest.importorskip("pynwb")
    pytest.importorskip("ndx_pose")
    load_poses = pytest.importorskip("movement.io.load_poses")
    path = export_results(results.path, "nwb")
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        pose = next(iter(nwbfile.processing["behavior"].data_interfaces.values()))
        series = pose.pose_estimation_series
        assert sorted(series) == sorted(NAMES)
        snout = series["snout"]
        np.testing.assert_allclose(snout.data[:], results.keypoints[:, 0], atol=1e-3)
        assert snout.rate == FPS or np.allclose(np.diff(snout.timestamps[:]), 1 / FPS)
        assert pose.source_software == "bkind"
        assert pose.scorer == f"napari-bkind {__version__}"
        assert list(pose.original_videos[:]) == [str(results.video_path)]
        assert pose.dimensions[:].tolist() == [[640, 480]]
        assert pose.source_video.external_file[:].tolist() == [str(results.video_path)]
        assert list(pose.source_video.dimension[:]) == [640, 480]
        assert pose.device is pose.source_video.device is nwbfile.devices["camera"]
        assert snout.confidence_definition == LIKELIHOOD_MEANING
        edges = pose.skeleton.edges[:].tolist()
        assert edges == [list(edge) for edge in skeleton(results)] and len(edges) == K - 1
    ds = load_poses.from_nwb_file(path)
    assert ds.attrs["fps"] == pytest.approx(FPS)
    _check(*_movement_arrays(ds), results)


def test_netcdf_export_reads_back_with_xarray(results):
    xr = pytest.importorskip("xarray")
    path = export_results(results.path, "nc")
    with xr.open_dataset(path) as ds:
        assert ds.attrs["fps"] == FPS and ds.attrs["source_software"] == "bkind"
        assert ds.attrs["dimension_names"] == MOVEMENT_DIMENSIONS
        _check(*_movement_arrays(ds), results)


def test_tidy_csv_has_one_row_per_frame_and_keypoint(results):
    table = pd.read_csv(export_results(results.path, "csv"))
    assert list(table.columns) == [
        "frame", "time_s", "keypoint", "x", "y", "likelihood", "confidence",
    ]  # fmt: skip
    assert len(table) == T * K
    snout = table[table.keypoint == "snout"]
    np.testing.assert_allclose(snout.time_s, np.arange(T) / FPS)
    np.testing.assert_allclose(snout.x, results.keypoints[:, 0, 0], atol=1e-4)
    wide = table.pivot(index="frame", columns="keypoint", values="likelihood")[NAMES]
    np.testing.assert_allclose(wide.to_numpy(), results.likelihoods(), equal_nan=True)


def test_exports_replace_an_existing_file_whole_and_refuse_a_wrong_ending(results):
    target = results.path.parent / "keep.csv"
    target.write_text("old")
    write_export(results, target, "csv")
    assert len(pd.read_csv(target)) == T * K
    with pytest.raises(ConfigError, match=r"keep\.txt.*\.nwb"):
        write_export(results, results.path.parent / "keep.txt", "nwb")
    with pytest.raises(ConfigError, match="choose one of dlc, sleap, nwb, nc, csv"):
        write_export(results, target, "parquet")
    left = sorted(p.name for p in results.path.parent.iterdir())
    assert left == ["keep.csv", "mouse.bkind.h5"]


def test_without_movement_the_message_names_the_extra(results, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_movement(name, *args, **kwargs):
        if name.startswith("movement"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_movement)
    monkeypatch.setattr("importlib.import_module", lambda name: no_movement(name))
    with pytest.raises(MissingDependencyError, match=r"napari-bkind\[movement\]"):
        export_results(results.path, "sleap")
    assert not default_export_path(results.path, "sleap").exists()


def test_skeleton_and_likelihood_meaning_of_discovered_and_named_keypoints(results):
    line = np.zeros((T, K, 2), np.float32)
    line[..., 0] = np.array([0.0, 30.0, 10.0, 60.0])  # along x: 0, 2, 1, 3 in order
    line += np.random.default_rng(2).normal(0, 0.5, (T, 1, 2))  # the animal moves
    line[3, 1] = np.nan
    chain = KeypointResult(line, results.confidence, results.covariance, results.metadata)
    assert skeleton(chain) == [(0, 2), (1, 2), (1, 3)]
    named = KeypointResult(
        line, results.confidence, results.covariance,
        {**results.metadata, "kind": "named", "skeleton": [["snout", "tail_base"]],
         "likelihood_radius_px": 12.5, "likelihood_meaning": None},
    )  # fmt: skip
    assert skeleton(named) == [(0, 3)]
    assert confidence_definition(chain) == LIKELIHOOD_MEANING
    assert confidence_definition(named).startswith(
        "probability that the bodypart lies within 12.5 px of the prediction"
    )
