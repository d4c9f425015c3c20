"""``bkind overlay`` on a real synthetic video: default output, options, one-line errors."""

import numpy as np

from bkind_model.cli import main
from bkind_model.io.results import KeypointResult
from bkind_model.io.video import open_video
from bkind_model.synthetic import SyntheticConfig, write_sample


def test_overlay_command(tmp_path, capsys):
    video = tmp_path / "mouse.mp4"
    write_sample(
        video, SyntheticConfig(height=64, width=96, n_frames=12, seed=4), with_masks=False
    )
    keypoints = np.tile(np.float32([[20, 30], [60, 30]]), (12, 1, 1))
    metadata = {"video_path": str(video), "frame_size": [64, 96], "fps": 30.0}
    results = KeypointResult(keypoints, np.ones((12, 2)), np.zeros((12, 2, 2, 2)), metadata).save(
        tmp_path / "mouse.bkind.h5"
    )
    options = ["--skeleton", "kp0-kp1", "--trail", "3", "--start", "2", "--stop", "9"]
    assert main(["overlay", str(results), *options]) == 0
    out = tmp_path / "mouse.bkind.overlay.mp4"
    assert capsys.readouterr().out.strip() == str(out)
    assert open_video(out).n_frames == 7

    assert main(["overlay", str(results)]) == 2  # the first overlay is kept
    err = capsys.readouterr().err
    assert "mouse.bkind.overlay.mp4: already exists" in err and "Traceback" not in err
    assert open_video(out).n_frames == 7
    assert main(["overlay", str(results), "--overwrite", "--no-names", "--scale", "0.5"]) == 0
    assert (open_video(out).n_frames, open_video(out).width) == (12, 48)

    elsewhere = ["--out", str(tmp_path / "x.mp4"), "--skeleton", "kp0-nose"]
    assert main(["overlay", str(results), *elsewhere]) == 2
    assert "'nose' is not one of the 2 keypoints (kp0, kp1)" in capsys.readouterr().err
    assert main(["overlay", str(tmp_path / "none.h5")]) == 2
    assert "none.h5: results file not found" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
