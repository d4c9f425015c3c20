"""A FIFO, a socket or a device given as the video is refused at once, never read."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

from bkind_model.cli.main import main
from bkind_model.errors import NotAVideoError
from bkind_model.io.results import KeypointResult
from bkind_model.io.video import open_video

#: Reading a FIFO without a writer blocks forever: a regression fails here, not hangs.
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "stream.mp4"
    os.mkfifo(path)
    return path


def test_a_fifo_is_refused_naming_it(fifo):
    with pytest.raises(NotAVideoError, match=r"stream\.mp4: it is a FIFO \(named pipe\)"):
        open_video(fifo)


def test_a_socket_and_a_device_are_refused(tmp_path):
    path = tmp_path / "s.mp4"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        with pytest.raises(NotAVideoError, match=r"s\.mp4: it is a socket"):
            open_video(path)
    finally:
        server.close()
    with pytest.raises(NotAVideoError, match=r"null: it is a device"):
        open_video("/dev/null")


def test_train_and_overlay_on_a_fifo_stop_with_one_line(fifo, tmp_path, capsys):
    assert main(["train", str(fifo), "--out", str(tmp_path / "run"), "--steps", "2"]) == 2
    shape = (4, 2)
    result = KeypointResult(
        np.zeros((*shape, 2)),
        np.ones(shape),
        np.zeros((*shape, 2, 2)),
        {"video_path": str(fifo), "fps": 25.0, "frame_size": [32, 32]},
    )
    results = result.save(tmp_path / "r.bkind.h5")
    out = tmp_path / "o.mp4"
    assert main(["overlay", str(results), "--video", str(fifo), "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"bkind: error: {fifo}: it is a FIFO") for line in lines)
    assert not out.exists()
