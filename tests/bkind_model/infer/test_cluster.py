"""Many videos on a real two-worker dask LocalCluster: same keypoints, resumable, one bar."""

import shutil

import numpy as np
import pytest

from bkind_model.infer.cluster import (
    chunk_folder,
    extract_chunk,
    extract_many,
    keep_chunks_of,
    plan_chunks,
    read_chunk,
    write_chunk,
)
from bkind_model.infer.extraction import extract_to_result
from bkind_model.io.checkpoint import file_hash, load_checkpoint, save_checkpoint
from bkind_model.io.results import KeypointResult
from bkind_model.io.video import open_video

distributed = pytest.importorskip("distributed")


def test_chunks_cover_every_frame_once(tmp_path):
    plan = plan_chunks(tmp_path / "v.mp4", 240, tmp_path / "v.bkind.h5", 100)
    assert [(c.start, c.stop) for c in plan] == [(0, 100), (100, 200), (200, 240)]
    assert {c.path.parent for c in plan} == {chunk_folder(tmp_path / "v.bkind.h5")}


@pytest.mark.slow
def test_many_videos_on_two_workers_match_one_pass_and_resume(checkpoint, tiny_video, tmp_path):
    videos = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for video in videos:
        shutil.copy(tiny_video, video)
    outs = [tmp_path / "a.bkind.h5", tmp_path / "b.bkind.h5"]
    # one chunk of a done before: a re-run keeps it (resumable)
    first = plan_chunks(videos[0], open_video(videos[0]).n_frames, outs[0], 100)[0]
    sha256 = file_hash(checkpoint)
    keep_chunks_of(first.folder, sha256)  # as a run that was stopped
    extract_chunk(checkpoint, first, sha256)
    marked = read_chunk(first, sha256)
    marked["keypoints"] = marked["keypoints"] + 1000.0  # to see that it is reused
    write_chunk(first, sha256, marked)
    seen = []
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        written = extract_many(
            checkpoint,
            videos,
            outs,
            client=client,
            chunk_frames=100,
            progress=lambda *a: seen.append(a),
        )
        reference = extract_to_result(checkpoint, tiny_video, tmp_path / "one.bkind.h5")
        reused = KeypointResult.load(written[0]).keypoints[:100]
        np.testing.assert_allclose(reused, reference.keypoints[:100] + 1000.0, atol=1e-3)
        for path in written[1:]:
            result = KeypointResult.load(path)
            np.testing.assert_array_equal(result.keypoints, reference.keypoints)
            np.testing.assert_array_equal(result.on_animal, reference.on_animal)
            np.testing.assert_allclose(result.likelihood, reference.likelihood, atol=1e-6)
        assert seen[0] == (0, 480) and seen[-1] == (480, 480)
        assert [a[0] for a in seen] == sorted(a[0] for a in seen)
        # finished videos are skipped: nothing is submitted again
        again = []
        extract_many(checkpoint, videos, outs, client=client, progress=lambda *a: again.append(a))
        assert again == [(480, 480)]
    assert not list(tmp_path.glob(".*.chunks"))  # every chunk folder merged and removed
    # the command line: finished videos are listed without starting a cluster
    from bkind_model.cli import main

    assert main(["extract", str(checkpoint), *map(str, videos)]) == 0
    assert main(["extract", str(checkpoint), *map(str, videos), "--heatmaps"]) == 2


@pytest.mark.slow
def test_a_worker_killed_mid_run_costs_no_frame(checkpoint, tiny_video, tmp_path):
    import os
    import signal
    import threading

    video = tmp_path / "v.mp4"
    shutil.copy(tiny_video, video)
    out = tmp_path / "v.bkind.h5"
    killed = threading.Event()
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.wait_for_workers(2)
        victim = sorted(client.run(os.getpid).values())[0]  # a worker process

        def kill_one(done, total):
            if 0 < done < total and not killed.is_set():
                killed.set()
                os.kill(victim, signal.SIGKILL)  # its nanny starts a new one

        extract_many(checkpoint, [video], [out], client=client, chunk_frames=30, progress=kill_one)
    assert killed.is_set()
    reference = extract_to_result(checkpoint, tiny_video, tmp_path / "one.bkind.h5")
    np.testing.assert_array_equal(KeypointResult.load(out).keypoints, reference.keypoints)
    assert not list(tmp_path.glob(".*.chunks"))


@pytest.mark.slow
def test_work_of_another_checkpoint_is_done_again(checkpoint, tiny_video, tmp_path):
    """After training again, no stale chunk or results file of the old model is kept."""
    state = load_checkpoint(checkpoint)
    state["model"] = {
        k: v * 1.5 if v.is_floating_point() else v for k, v in state["model"].items()
    }
    older = save_checkpoint(tmp_path / "older" / "checkpoint.pt", state)
    videos = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for video in videos:
        shutil.copy(tiny_video, video)
    outs = [tmp_path / "a.bkind.h5", tmp_path / "b.bkind.h5"]
    first = plan_chunks(videos[0], open_video(videos[0]).n_frames, outs[0], 100)[0]
    keep_chunks_of(first.folder, file_hash(older))  # a stopped run of the older model
    extract_chunk(older, first, file_hash(older))
    extract_to_result(older, videos[1], outs[1])  # a finished file of the older model
    extract_many(checkpoint, videos, outs, workers=1, chunk_frames=100)
    reference = extract_to_result(checkpoint, tiny_video, tmp_path / "one.bkind.h5")
    for out in outs:
        result = KeypointResult.load(out)
        assert result.metadata["checkpoint_sha256"] == file_hash(checkpoint)
        np.testing.assert_array_equal(result.keypoints, reference.keypoints)
