"""Many-video extraction refuses bad plans and addresses at once, and redoes bad chunks."""

from __future__ import annotations

import shutil
import socket

import numpy as np
import pytest

from bkind_model.cli.main import main
from bkind_model.errors import ConfigError
from bkind_model.infer import cluster
from bkind_model.infer.cluster import (
    Chunk,
    cluster_client,
    extract_chunk,
    extract_many,
    keep_chunks_of,
    read_chunk,
    write_chunk,
)
from bkind_model.io.checkpoint import file_hash

pytest.importorskip("distributed")

SHA = "ab" * 32
N, K = 30, 3


def _arrays(rng: np.random.Generator, n: int = N) -> dict[str, np.ndarray]:
    return {
        "keypoints": rng.uniform(0, 128, (n, K, 2)).astype(np.float32),
        "confidence": rng.uniform(0, 1, (n, K)).astype(np.float32),
        "covariance": rng.uniform(0, 4, (n, K, 2, 2)).astype(np.float32),
        "on_animal": rng.uniform(0, 1, (n, K)) > 0.5,
    }


@pytest.fixture
def chunk(tmp_path):
    return Chunk(tmp_path / "v.mp4", 60, 60 + N, tmp_path / ".v.bkind.h5.chunks")


def test_a_chunk_reads_back_only_whole(chunk):
    arrays = _arrays(np.random.default_rng(0))
    path = write_chunk(chunk, SHA, arrays)
    back = read_chunk(chunk, SHA)
    assert back is not None and all(np.array_equal(back[k], arrays[k]) for k in arrays)
    assert read_chunk(chunk, "cd" * 32) is None  # another checkpoint's
    moved = Chunk(chunk.video, 0, N, chunk.folder)
    shutil.copy(path, moved.path)
    assert read_chunk(moved, SHA) is None  # another frame range's
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # truncated (BadZipFile)
    assert read_chunk(chunk, SHA) is None
    path.write_bytes(b"\0" * len(whole))
    assert read_chunk(chunk, SHA) is None


@pytest.mark.parametrize(
    "damage",
    ["zeroed", "no digest", "nan", "short", "pickled", "extra"],
)
def test_a_crafted_chunk_is_refused(chunk, damage):
    arrays = _arrays(np.random.default_rng(1))
    write_chunk(chunk, SHA, arrays)
    with np.load(chunk.path) as data:
        saved = {name: data[name] for name in data.files}
    if damage == "zeroed":
        saved |= {name: np.zeros_like(arrays[name]) for name in arrays}
    elif damage == "no digest":
        del saved["digest"]
    elif damage == "nan":
        saved["keypoints"][3, 1, 0] = np.nan
    elif damage == "short":
        saved |= {name: value[:-1] for name, value in arrays.items()}
    elif damage == "pickled":
        saved["digest"] = np.array([{"a": 1}], dtype=object)
    else:
        saved["payload"] = np.zeros(3)
    np.savez(chunk.path, **saved)
    assert read_chunk(chunk, SHA) is None


def test_a_damaged_leftover_chunk_is_made_again(checkpoint, tiny_video, tmp_path):
    video = tmp_path / "v.mp4"
    shutil.copy(tiny_video, video)
    sha256 = file_hash(checkpoint)
    chunk = Chunk(video, 100, 130, tmp_path / ".v.bkind.h5.chunks")
    keep_chunks_of(chunk.folder, sha256)
    extract_chunk(checkpoint, chunk, sha256)
    made = read_chunk(chunk, sha256)
    assert made is not None
    chunk.path.write_bytes(chunk.path.read_bytes()[:200])  # a run killed as it wrote
    extract_chunk(checkpoint, chunk, sha256)
    again = read_chunk(chunk, sha256)
    assert again is not None and all(np.array_equal(again[k], made[k]) for k in made)


def test_a_plan_that_would_clash_is_refused_before_any_work(tmp_path):
    checkpoint = tmp_path / "no-run" / "checkpoint.pt"  # never opened: refused before
    a, b = tmp_path / "a" / "v.mp4", tmp_path / "b" / "v.mp4"
    outs = [tmp_path / "out" / "v.bkind.h5"] * 2
    with pytest.raises(ConfigError, match=r"v\.bkind\.h5: .*a/v\.mp4 and .*b/v\.mp4 would both"):
        extract_many(checkpoint, [a, b], outs)
    twice = [a, tmp_path / "a" / ".." / "a" / "v.mp4"]
    with pytest.raises(ConfigError, match=r"v\.mp4: this video is given twice"):
        extract_many(checkpoint, twice, [tmp_path / "1.h5", tmp_path / "2.h5"])
    with pytest.raises(ConfigError, match="chunk frames must be a whole number >= 1, not 0"):
        extract_many(checkpoint, [a], outs[:1], chunk_frames=0)
    with pytest.raises(ConfigError, match="workers must be a whole number >= 1, not -2"):
        extract_many(checkpoint, [a], outs[:1], workers=-2)
    assert not (tmp_path / "out").exists()


def test_bad_scheduler_addresses_are_one_line_at_once(monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 0.5)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never speaks
        quiet = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        for address, problem in [
            ("no such thing", "is not a scheduler address"),
            ("http://127.0.0.1:9/", "is not a scheduler address"),
            (dead, "no dask scheduler answered within 0.5 s"),
            (quiet, "no dask scheduler answered within 0.5 s"),
        ]:
            with pytest.raises(ConfigError, match=f"--scheduler '{address}'.? {problem}"):
                with cluster_client(address):
                    pass


def test_the_command_refuses_bad_values_and_clashes_in_one_line(
    checkpoint, tiny_video, tmp_path, capsys
):
    videos = [tmp_path / "a" / "v.mp4", tmp_path / "b" / "v.mp4"]
    for video in videos:
        video.parent.mkdir()
        shutil.copy(tiny_video, video)
    out = tmp_path / "out"
    command = ["extract", str(checkpoint), *map(str, videos), "--out", str(out)]
    for bad in (["--chunk-frames", "0"], ["--chunk-frames", "-5"], ["--workers", "-2"]):
        assert main([*command, *bad]) == 2
    assert main([*command, "--scheduler", "no such thing"]) == 2
    assert main([*command, "--workers", "2"]) == 2  # D-samename: before any cluster
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 5 and all(line.startswith("bkind: error: ") for line in lines)
    assert "must be a whole number >= 1, not -5" in lines[1]
    assert "would both write this results file" in lines[4]
    assert not out.exists() or not any(out.iterdir())
